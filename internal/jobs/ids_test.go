package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/demodata"
	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/training"
	"github.com/adtech/scorer/writers/table"
)

// idsSpec reads the demo dumps' position (1..6) as a categorical of ids
// 0..6 that rejects any other id, as an exported model's integer input
// would.
const idsSpec = `
label: clicked
features:
  - {name: bid_price, kind: numeric, clip: [0, 100], log1p: true, standardize: true}
  - {name: slot, column: position, kind: categorical, ids: 7, out_of_range: reject}
  - {name: site, column: site_domain, kind: categorical, hash_buckets: 100}
`

// colPosition is the position column's place in demodata.Columns.
var colPosition = slices.Index(demodata.Columns, "position")

// idsDemoLines are n demo rows of month as CSV lines, header first.
func idsDemoLines(t *testing.T, prefix, month string, n int) []string {
	t.Helper()
	from, err := time.Parse("2006-01", month)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := demodata.WriteCSV(&buf, demodata.New(11).Rows(prefix, n, from, from.AddDate(0, 1, 0)), false); err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
}

// withPosition sets the position field of lines[i], data row i (lines[0]
// is the header).
func withPosition(lines []string, i int, v string) {
	f := strings.Split(lines[i], ",")
	f[colPosition] = v
	lines[i] = strings.Join(f, ",")
}

func writeLines(t *testing.T, path string, lines []string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A categorical of ids trains (cardinality N, nothing to fit) and scores;
// a row whose id is not an integer, or out of range with out_of_range:
// reject, is a bad row: counted against max_bad_rows and sent to the
// rejects table with its file, row, column and reason.
func TestIDsFeatureTrainAndReject(t *testing.T) {
	ctx := context.Background()
	spec, err := features.ParseSpec([]byte(idsSpec))
	if err != nil {
		t.Fatal(err)
	}
	in := t.TempDir()
	train := idsDemoLines(t, "ads", "2020-08", 3000)
	withPosition(train, 100, "9") // out of range: training refuses it too
	writeLines(t, filepath.Join(in, "dumps/2020-08/a.csv"), train)

	cfg := training.DefaultConfig()
	cfg.Arch = bundle.Architecture{Kind: bundle.WideDeep, EmbeddingDim: 4, Hidden: []int{8}}
	cfg.Epochs, cfg.Seed = 2, 1
	job := TrainJob{
		Input: store.NewFileBucket(in), Dir: "dumps", Month: "2020-08", Spec: spec,
		Name: "ctr-ids", Version: "1", Config: cfg, ValidationFraction: 0.2, BatchSize: 1024,
		CSV: readers.CSVOptions{Header: true},
	}
	if _, err := Train(ctx, job); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), `dumps/2020-08/a.csv: row 100 (line 101): column "position": feature "slot" id 9 out of range [0, 7)`) {
		t.Fatalf("Train with an id out of range and no max_bad_rows: %v, want the bad row named", err)
	}
	job.BadRows = BadRowLimit{Count: 1}
	bu, err := Train(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if got := bu.Inputs.Cardinalities; !slices.Equal(got, []int{7, 101}) {
		t.Fatalf("cardinalities %v, want [7 101]: the ids feature's is its N", got)
	}
	if bu.Training.Rows != 2999 {
		t.Errorf("trained on %d rows, want 2999", bu.Training.Rows)
	}
	// Through the bundle format, as a run loads it.
	models := t.TempDir()
	if err := bu.Save(ctx, store.NewFileBucket(models), "ids"); err != nil {
		t.Fatal(err)
	}
	if bu, err = bundle.Load(ctx, store.NewFileBucket(models), "ids"); err != nil {
		t.Fatal(err)
	}

	month := idsDemoLines(t, "ads", "2020-09", 200)
	withPosition(month, 10, "12.5") // not an integer
	withPosition(month, 20, "abc")  // not a number
	withPosition(month, 30, "7")    // out of range: ids are 0..6
	withPosition(month, 40, "-1")   // out of range
	withPosition(month, 50, "")     // missing: missing_id, scored
	withPosition(month, 60, "0")    // in range, though the data never had it
	writeLines(t, filepath.Join(in, "dumps/2020-09/a.csv"), month)

	score := func(out string, limit int64) (*Summary, error) {
		return Score(ctx, ScoreJob{
			Job: BackfillJob("2020-09"), Input: store.NewFileBucket(in), Output: store.NewFileBucket(out), Bundle: bu,
			Dir: "dumps/2020-09", Table: demoTable, Partition: "month=2020-09", Mode: table.Replace,
			IDColumns: []string{"ad_id"}, BatchSize: 64, ReadConcurrency: 1, CSV: readers.CSVOptions{Header: true},
			BadRows: BadRowLimit{Count: limit}, RawMaxBytes: 1024, LeaseTTL: time.Minute,
		})
	}

	t.Run("over max_bad_rows", func(t *testing.T) {
		out := t.TempDir()
		_, err := score(out, 3)
		if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "more than 3 bad rows") {
			t.Fatalf("Score: %v, want ErrBadInput over max_bad_rows", err)
		}
		for _, tbl := range []string{demoTable, RejectsTable(demoTable)} {
			if _, err := os.Stat(filepath.Join(out, tbl)); !os.IsNotExist(err) {
				t.Errorf("a failed run published %s (stat: %v)", tbl, err)
			}
		}
	})

	t.Run("rejects", func(t *testing.T) {
		out := t.TempDir()
		sum, err := score(out, 4)
		if err != nil {
			t.Fatal(err)
		}
		if sum.RowsRead != 196 || sum.RowsRejected != 4 {
			t.Errorf("rows read %d, rejected %d; want 196 and 4", sum.RowsRead, sum.RowsRejected)
		}
		rows, err := duck(t).Query(fmt.Sprintf(`SELECT file, "row", line, "column", value, reason, ad_id, raw FROM %s ORDER BY "row"`,
			parquetOf(t, out, RejectsTable(demoTable), "month=2020-09")))
		if err != nil {
			t.Fatal(err)
		}
		defer closeRows(t, rows)
		var got []string
		for rows.Next() {
			var file, col, value, reason, id, raw string
			var row, line int64
			if err := rows.Scan(&file, &row, &line, &col, &value, &reason, &id, &raw); err != nil {
				t.Fatal(err)
			}
			if want := strings.Split(month[row], ",")[0]; id != want || raw != month[row] {
				t.Errorf("row %d: ad_id %q raw %q, want %q and its line", row, id, raw, want)
			}
			got = append(got, fmt.Sprintf("%s|%d|%d|%s|%s|%s", file, row, line, col, value, reason))
		}
		want := []string{
			`dumps/2020-09/a.csv|10|11|position|12.5|not an integer`,
			`dumps/2020-09/a.csv|20|21|position|abc|not an integer`,
			`dumps/2020-09/a.csv|30|31|position|7|feature "slot" id 7 out of range [0, 7)`,
			`dumps/2020-09/a.csv|40|41|position|-1|feature "slot" id -1 out of range [0, 7)`,
		}
		if !slices.Equal(got, want) {
			t.Errorf("rejects:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		db := duck(t)
		if n := queryInt(t, db, "SELECT count(*) FROM "+parquetOf(t, out, demoTable, "month=2020-09")); n != 196 {
			t.Errorf("ad_scores has %d rows, want 196", n)
		}
	})
}
