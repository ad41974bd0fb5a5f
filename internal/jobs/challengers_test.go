package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/writers/table"
)

// The demo store and bundle of the repository.
const (
	demoStoreDir  = "../../testdata/store"
	demoBundleDir = "../../testdata/models/ctr-demo"
	demoMonth     = "2020-09"
	demoPartition = "month=" + demoMonth
	demoTable     = "ad_scores"
	queueTable    = "request_scores"
	queueDate     = "date=2020-09-02"
)

// demoCSV is the glob of the demo month's dumps, for DuckDB.
var demoCSV = filepath.Join(demoStoreDir, "dumps", demoMonth, "*.csv.gz")

func loadDemoBundle(t *testing.T) *bundle.Bundle {
	t.Helper()
	bu, err := bundle.Load(context.Background(), store.NewFileBucket(demoBundleDir), "")
	if err != nil {
		t.Fatal(err)
	}
	return bu
}

// sortedWeightNames are a bundle's tensor names in a fixed order.
func sortedWeightNames(bu *bundle.Bundle) []string {
	names := make([]string, 0, len(bu.Weights))
	for name := range bu.Weights {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// perturbedBundle is a copy of bu (same feature spec and statistics) with
// noise added to every weight, under another version: a challenger that
// needs no training. bu is left as it is.
func perturbedBundle(t *testing.T, bu *bundle.Bundle, version string, seed uint64) *bundle.Bundle {
	t.Helper()
	c := *bu
	c.Version = version
	c.Weights = make(map[string]*bundle.Param, len(bu.Weights))
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, name := range sortedWeightNames(bu) {
		p := bu.Weights[name]
		q := &bundle.Param{Shape: slices.Clone(p.Shape), Data: slices.Clone(p.Data)}
		for i := range q.Data {
			q.Data[i] += float32(0.05 * rng.NormFloat64())
		}
		c.Weights[name] = q
	}
	c.Weights["wide.bias"].Data[0] += 0.3
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return &c
}

// noSiteBundle is bu without its first categorical feature, "site" (a
// different feature spec): its rows of the embedding tables and its
// embedding's rows of the first deep layer are cut out, so that it scores
// like bu would with the site's contribution left out.
func noSiteBundle(t *testing.T, bu *bundle.Bundle, name, version string) *bundle.Bundle {
	t.Helper()
	full, err := features.NewPipeline(bu.Features, bu.Stats)
	if err != nil {
		t.Fatal(err)
	}
	if full.CatNames()[0] != "site" || bu.Arch.Kind != bundle.WideDeep {
		t.Fatalf("demo bundle: first categorical input %q, arch %s; the test expects site and wide_deep", full.CatNames()[0], bu.Arch.Kind)
	}
	siteRows, e := full.Cardinalities()[0], bu.Arch.EmbeddingDim

	c := *bu
	c.Name, c.Version = name, version
	c.Features.Features = slices.DeleteFunc(slices.Clone(bu.Features.Features), func(f features.Feature) bool { return f.Name == "site" })
	fx, err := features.NewPipeline(c.Features, c.Stats)
	if err != nil {
		t.Fatal(err)
	}
	c.Inputs = bundle.Inputs{Dense: fx.Dense(), Cardinalities: fx.Cardinalities()}
	cut := func(p *bundle.Param, rows int) *bundle.Param {
		cols := p.Size() / p.Shape[0]
		return &bundle.Param{Shape: append([]int{p.Shape[0] - rows}, p.Shape[1:]...), Data: slices.Clone(p.Data[rows*cols:])}
	}
	c.Weights = map[string]*bundle.Param{}
	for _, n := range sortedWeightNames(bu) {
		p := bu.Weights[n]
		switch n {
		case "wide.emb", "deep.emb":
			c.Weights[n] = cut(p, siteRows)
		case "deep.l0.w":
			c.Weights[n] = cut(p, e) // the first E inputs are the site's embedding
		default:
			c.Weights[n] = &bundle.Param{Shape: slices.Clone(p.Shape), Data: slices.Clone(p.Data)}
		}
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return &c
}

// backfillDemo is `scorer backfill --month 2020-09` on the demo store into
// the store at out, with the label column clicked.
func backfillDemo(t *testing.T, out string, champion *bundle.Bundle, challengers ...*bundle.Bundle) *Summary {
	t.Helper()
	return backfill(t, demoStoreDir, out, demoMonth, champion, challengers...)
}

// backfill scores the month's dumps (CSV with a header) of the store at in
// into the ad_scores table of the store at out, with the label column
// clicked.
func backfill(t *testing.T, in, out, month string, champion *bundle.Bundle, challengers ...*bundle.Bundle) *Summary {
	t.Helper()
	sum, err := Score(context.Background(), ScoreJob{
		Job: BackfillJob(month), Input: store.NewFileBucket(in), Output: store.NewFileBucket(out),
		Bundle: champion, Challengers: challengers,
		Dir: "dumps/" + month, Table: demoTable, Partition: "month=" + month, Mode: table.Replace,
		IDColumns: []string{"ad_id"}, LabelColumns: []string{"clicked"}, RequireRows: true,
		BatchSize: 4096, ReadConcurrency: 2, CSV: readers.CSVOptions{Header: true}, LeaseTTL: time.Minute,
	})
	if err != nil {
		t.Fatalf("backfill %s: %v", month, err)
	}
	return sum
}

// scoreDemoQueue is `scorer run` on the demo queue (JSONL requests, which
// have no clicked column) into the store at out.
func scoreDemoQueue(t *testing.T, out string, champion *bundle.Bundle) *Summary {
	t.Helper()
	sum, err := Score(context.Background(), ScoreJob{
		Job: JobQueue, Input: store.NewFileBucket(demoStoreDir), Output: store.NewFileBucket(out), Bundle: champion,
		Dir: "queue", Table: queueTable, Partition: queueDate, Mode: table.Append,
		IDColumns: []string{"request_id"}, LabelColumns: []string{"clicked"}, SkipConsumed: true,
		BatchSize: 4096, ReadConcurrency: 2, LeaseTTL: time.Minute,
	})
	if err != nil {
		t.Fatalf("queue run: %v", err)
	}
	return sum
}

func duck(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

// publishedFiles are the files of a partition as its manifest lists them
// (paths for DuckDB), and the rows the manifest counts.
func publishedFiles(t *testing.T, out, tbl, partition string) ([]string, int64) {
	t.Helper()
	pub, err := table.NewPublisher(store.NewFileBucket(out), table.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	m, err := pub.Manifest(context.Background(), tbl, partition)
	if err != nil {
		t.Fatalf("%s/%s: %v", tbl, partition, err)
	}
	var files []string
	for _, f := range m.Files {
		files = append(files, filepath.Join(out, tbl, partition, f.Name))
	}
	return files, m.TotalRows
}

// parquetOf is a DuckDB relation over the published files of a partition.
func parquetOf(t *testing.T, out, tbl, partition string) string {
	t.Helper()
	return "read_parquet(" + publishedList(t, out, tbl, partition) + ", hive_partitioning = false)"
}

// publishedList is the published files of a partition as a DuckDB list of
// paths.
func publishedList(t *testing.T, out, tbl, partition string) string {
	t.Helper()
	files, _ := publishedFiles(t, out, tbl, partition)
	if len(files) == 0 {
		t.Fatalf("%s/%s: no published files", tbl, partition)
	}
	quoted := make([]string, len(files))
	for i, f := range files {
		quoted[i] = "'" + strings.ReplaceAll(f, "'", "''") + "'"
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// columnsOf are a relation's column names and types, in order.
func columnsOf(t *testing.T, db *sql.DB, rel string) ([]string, map[string]string) {
	t.Helper()
	rows, err := db.Query("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM " + rel + ")")
	if err != nil {
		t.Fatal(err)
	}
	defer closeRows(t, rows)
	var names []string
	types := map[string]string{}
	for rows.Next() {
		var n, ty string
		if err := rows.Scan(&n, &ty); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
		types[n] = ty
	}
	return names, types
}

func closeRows(t *testing.T, rows *sql.Rows) {
	t.Helper()
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		t.Error(err)
	}
}

func queryInt(t *testing.T, db *sql.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestScoreLabelColumns: a backfill copies each dump row's clicked value
// into its score row; the queue's requests have no such column, and their
// rows get null.
func TestScoreLabelColumns(t *testing.T) {
	bu := loadDemoBundle(t)
	out := t.TempDir()
	sum := backfillDemo(t, out, bu)
	db := duck(t)
	scores := parquetOf(t, out, demoTable, demoPartition)
	csv := fmt.Sprintf("read_csv('%s', header = true, all_varchar = true)", demoCSV)

	names, types := columnsOf(t, db, scores)
	if len(names) < 3 || names[0] != "ad_id" || names[1] != "clicked" || names[2] != "score" {
		t.Errorf("ad_scores columns %v, want ad_id, clicked, score first", names)
	}
	if types["clicked"] != "DOUBLE" {
		t.Errorf("clicked is %s, want DOUBLE", types["clicked"])
	}
	inputRows := queryInt(t, db, "SELECT count(*) FROM "+csv)
	if inputRows == 0 || sum.RowsRead != inputRows {
		t.Fatalf("scored %d rows; the dumps hold %d", sum.RowsRead, inputRows)
	}
	if n := queryInt(t, db, "SELECT count(*) FROM "+scores); n != inputRows {
		t.Errorf("ad_scores holds %d rows, want %d", n, inputRows)
	}
	// Every score row joins its dump row and carries its value: 0 or 1,
	// compared as the text of the dump.
	var joined, same, clicks int64
	if err := db.QueryRow(`SELECT count(*),
			count(*) FILTER (WHERE s.clicked IS NOT NULL AND s.clicked = c.clicked::DOUBLE),
			count(*) FILTER (WHERE s.clicked = 1)
		FROM `+scores+` s JOIN `+csv+` c ON s.ad_id = c.ad_id`).Scan(&joined, &same, &clicks); err != nil {
		t.Fatal(err)
	}
	if joined != inputRows || same != inputRows {
		t.Errorf("%d score rows join a dump row, %d of them with the dump's clicked; want %d of each", joined, same, inputRows)
	}
	wantClicks := queryInt(t, db, "SELECT count(*) FROM "+csv+" WHERE clicked = '1'")
	if clicks != wantClicks || clicks == 0 || clicks == inputRows {
		t.Errorf("%d score rows clicked, the dumps %d", clicks, wantClicks)
	}

	// A month of CSV dumps, one with the clicked column and one without
	// it (as a file of unlabelled rows may be): the rows of the first carry
	// their value, those of the second null; the run succeeds.
	in := t.TempDir()
	if err := os.MkdirAll(filepath.Join(in, "dumps", "2020-10"), 0o755); err != nil {
		t.Fatal(err)
	}
	with, without := filepath.Join(in, "dumps", "2020-10", "a.csv"), filepath.Join(in, "dumps", "2020-10", "b.csv")
	for _, q := range []string{
		fmt.Sprintf("COPY (SELECT * FROM %s ORDER BY ad_id LIMIT 300) TO '%s' (HEADER)", csv, with),
		fmt.Sprintf("COPY (SELECT * EXCLUDE (clicked) FROM %s ORDER BY ad_id LIMIT 200 OFFSET 300) TO '%s' (HEADER)", csv, without),
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if msum := backfill(t, in, out, "2020-10", bu); msum.RowsRead != 500 {
		t.Fatalf("2020-10: scored %d rows, want 500", msum.RowsRead)
	}
	var mrows, fromWith, sameWith, fromWithout, nullWithout int64
	if err := db.QueryRow(fmt.Sprintf(`SELECT count(*),
			count(a.ad_id), count(*) FILTER (WHERE s.clicked = a.clicked::DOUBLE),
			count(b.ad_id), count(*) FILTER (WHERE b.ad_id IS NOT NULL AND s.clicked IS NULL)
		FROM %s s
		LEFT JOIN read_csv('%s', header = true, all_varchar = true) a USING (ad_id)
		LEFT JOIN read_csv('%s', header = true, all_varchar = true) b USING (ad_id)`,
		parquetOf(t, out, demoTable, "month=2020-10"), with, without)).Scan(&mrows, &fromWith, &sameWith, &fromWithout, &nullWithout); err != nil {
		t.Fatal(err)
	}
	if mrows != 500 || fromWith != 300 || sameWith != 300 || fromWithout != 200 || nullWithout != 200 {
		t.Errorf("2020-10: %d rows; %d from the file with clicked, %d of them with its value; %d from the file without, %d of them null; want 500, 300, 300, 200, 200",
			mrows, fromWith, sameWith, fromWithout, nullWithout)
	}

	// The queue: no clicked column in the requests, a null in every row.
	qsum := scoreDemoQueue(t, out, bu)
	reqs := queryInt(t, db, fmt.Sprintf("SELECT count(*) FROM read_json('%s/queue/*.jsonl')", demoStoreDir))
	if qsum.RowsRead != reqs || reqs == 0 {
		t.Fatalf("queue run scored %d rows, the queue holds %d", qsum.RowsRead, reqs)
	}
	qscores := parquetOf(t, out, queueTable, queueDate)
	_, qtypes := columnsOf(t, db, qscores)
	if qtypes["clicked"] != "DOUBLE" {
		t.Errorf("request_scores.clicked is %q, want DOUBLE", qtypes["clicked"])
	}
	var qrows, qlabelled int64
	if err := db.QueryRow("SELECT count(*), count(clicked) FROM "+qscores).Scan(&qrows, &qlabelled); err != nil {
		t.Fatal(err)
	}
	if qrows != reqs || qlabelled != 0 {
		t.Errorf("request_scores: %d rows, %d with clicked; want %d and 0", qrows, qlabelled, reqs)
	}
}

// TestScoreChallengers scores two challengers beside the champion, one with
// the champion's feature spec and one with another, and checks them against
// runs that score each alone as the champion.
func TestScoreChallengers(t *testing.T) {
	champ := loadDemoBundle(t)
	pert := perturbedBundle(t, champ, "2020-09.perturbed", 7)
	nosite := noSiteBundle(t, champ, "ctr-nosite", "1")

	alone, both, pertOut, nositeOut := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	backfillDemo(t, alone, champ)
	sum := backfillDemo(t, both, champ, pert, nosite)
	if want := []table.Model{{Name: pert.Name, Version: pert.Version}, {Name: nosite.Name, Version: nosite.Version}}; !slices.Equal(sum.Challengers, want) {
		t.Errorf("Summary.Challengers = %v, want %v", sum.Challengers, want)
	}
	backfillDemo(t, pertOut, pert)
	backfillDemo(t, nositeOut, nosite)

	db := duck(t)
	inputRows := queryInt(t, db, fmt.Sprintf("SELECT count(*) FROM read_csv('%s', header = true)", demoCSV))
	champAlone := parquetOf(t, alone, demoTable, demoPartition)
	champBoth := parquetOf(t, both, demoTable, demoPartition)
	chs := parquetOf(t, both, ChallengersTable(demoTable), demoPartition)

	// The champion's table is the same with or without challengers.
	var n, diff int64
	var maxDiff sql.NullFloat64
	if err := db.QueryRow(`SELECT count(*), count(*) FILTER (WHERE a.clicked IS DISTINCT FROM b.clicked
			OR a.model_name <> b.model_name OR a.model_version <> b.model_version), max(abs(a.score - b.score))
		FROM `+champAlone+` a JOIN `+champBoth+` b USING (ad_id)`).Scan(&n, &diff, &maxDiff); err != nil {
		t.Fatal(err)
	}
	if nb := queryInt(t, db, "SELECT count(*) FROM "+champBoth); n != inputRows || nb != inputRows || diff != 0 || !maxDiff.Valid || maxDiff.Float64 != 0 {
		t.Errorf("champion table with challengers: %d rows, %d joined to the run without, %d differ in labels or model, max score diff %v",
			nb, n, diff, maxDiff)
	}
	names, _ := columnsOf(t, db, chs)
	if want := []string{"ad_id", "clicked", "model_name", "model_version", "score", "scored_at", "run_id"}; !slices.Equal(names, want) {
		t.Errorf("challengers columns %v, want %v", names, want)
	}
	// Both tables' id columns are PLAIN (unique values), their other
	// strings dictionary-encoded (docs/store.md).
	for _, tbl := range []string{demoTable, ChallengersTable(demoTable)} {
		meta := "parquet_metadata(" + publishedList(t, both, tbl, demoPartition) + ")"
		rows, err := db.Query(`SELECT DISTINCT path_in_schema, encodings FROM ` + meta + ` WHERE type = 'BYTE_ARRAY' ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var col, enc string
			if err := rows.Scan(&col, &enc); err != nil {
				t.Fatal(err)
			}
			got = append(got, col+": "+enc)
		}
		closeRows(t, rows)
		for _, g := range got {
			col, enc, _ := strings.Cut(g, ": ")
			if dict := strings.Contains(enc, "DICTIONARY"); dict == (col == "ad_id") || (col == "ad_id" && enc != "PLAIN") {
				t.Errorf("%s: %s; want ad_id PLAIN, the other strings dictionary-encoded", tbl, g)
			}
		}
		if len(got) == 0 {
			t.Errorf("%s: no string columns in parquet_metadata", tbl)
		}
	}

	for _, c := range []struct {
		bu  *bundle.Bundle
		out string
	}{{pert, pertOut}, {nosite, nositeOut}} {
		t.Run(c.bu.Name+"_"+c.bu.Version, func(t *testing.T) {
			// One row per input row, each id once, labels as the champion's.
			var rows, ids, badLabels int64
			if err := db.QueryRow(`SELECT count(*), count(DISTINCT ch.ad_id),
					count(*) FILTER (WHERE ch.clicked IS DISTINCT FROM m.clicked)
				FROM `+chs+` ch JOIN `+champBoth+` m USING (ad_id)
				WHERE ch.model_name = ? AND ch.model_version = ?`, c.bu.Name, c.bu.Version).Scan(&rows, &ids, &badLabels); err != nil {
				t.Fatal(err)
			}
			if rows != inputRows || ids != inputRows || badLabels != 0 {
				t.Errorf("%d rows, %d ids (want %d of each), %d with another label than the champion's row", rows, ids, inputRows, badLabels)
			}
			// The same scores as the challenger scored alone, as a champion.
			solo := parquetOf(t, c.out, demoTable, demoPartition)
			var joined int64
			var maxDiff, meanDiffChamp float64
			if err := db.QueryRow(`SELECT count(*), max(abs(ch.score - s.score)), avg(abs(ch.score - m.score))
				FROM `+chs+` ch JOIN `+solo+` s USING (ad_id) JOIN `+champBoth+` m USING (ad_id)
				WHERE ch.model_name = ? AND ch.model_version = ?`, c.bu.Name, c.bu.Version).Scan(&joined, &maxDiff, &meanDiffChamp); err != nil {
				t.Fatal(err)
			}
			t.Logf("max abs diff to the solo run %g; mean abs diff to the champion %g", maxDiff, meanDiffChamp)
			if joined != inputRows || maxDiff > 1e-6 {
				t.Errorf("%d rows joined to the solo run (want %d), max abs score diff %g (want <= 1e-6)", joined, inputRows, maxDiff)
			}
			// A challenger that scored like the champion would prove nothing.
			if meanDiffChamp < 1e-3 {
				t.Errorf("challenger's scores are within %g of the champion's on average: not another model", meanDiffChamp)
			}
		})
	}
	if n := queryInt(t, db, "SELECT count(*) FROM "+chs); n != 2*inputRows {
		t.Errorf("challengers table: %d rows, want %d (2 challengers × %d)", n, 2*inputRows, inputRows)
	}

	// The month again without challengers: the challengers' partition is
	// replaced by an empty one, in the manifest and on disk.
	backfillDemo(t, both, champ)
	files, rows := publishedFiles(t, both, ChallengersTable(demoTable), demoPartition)
	t.Logf("challengers partition after the second backfill: %d files, %d rows", len(files), rows)
	var fileRows int64
	if len(files) > 0 {
		fileRows = queryInt(t, db, "SELECT count(*) FROM "+parquetOf(t, both, ChallengersTable(demoTable), demoPartition))
	}
	if rows != 0 || fileRows != 0 {
		t.Errorf("after a backfill without challengers, the challengers partition holds %d rows (manifest) in %d files holding %d rows; want 0", rows, len(files), fileRows)
	}
	// As an analyst would read it: every Parquet file in the folder.
	glob := filepath.Join(both, ChallengersTable(demoTable), demoPartition, "*.parquet")
	if matches, _ := filepath.Glob(glob); len(matches) > 0 {
		if n := queryInt(t, db, fmt.Sprintf("SELECT count(*) FROM read_parquet('%s')", glob)); n != 0 {
			t.Errorf("%d stale challenger rows still in %s", n, glob)
		}
	}
}
