package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adtech/scorer/internal/demodata"
)

// demoCSV returns n demo rows of September as CSV lines (header first).
func demoCSV(t *testing.T, prefix string, n int) []string {
	t.Helper()
	var buf bytes.Buffer
	from := time.Date(2020, 9, 1, 0, 0, 0, 0, time.UTC)
	if err := demodata.WriteCSV(&buf, demodata.New(7).Rows(prefix, n, from, from.AddDate(0, 1, 0)), false); err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
}

// setField replaces column col (0-based) of a CSV line.
func setField(line string, col int, v string) string {
	f := strings.Split(line, ",")
	f[col] = v
	return strings.Join(f, ",")
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func gz(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// storedGz gzips data in stored (uncompressed) blocks.
func storedGz(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.NoCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Column positions in demodata.Columns.
const (
	colAdID = 0
	colSite = 2
	colBid  = 8
)

// listTree returns every file under dir with its size, for comparing a
// store before and after a failed run. Leases, run records and the local
// store's temporary folder are left out: a failed run does renew and release
// its job's lease, and records how it ended.
func listTree(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if fi.IsDir() && (rel == ".tmp" || rel == filepath.Join("_scorer", "leases") || rel == filepath.Join("_scorer", "runs")) {
			return filepath.SkipDir
		}
		if !fi.IsDir() {
			out[rel] = fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBadInput(t *testing.T) {
	good := demoCSV(t, "good", 50)
	join := func(lines []string) []byte { return []byte(strings.Join(lines, "\n") + "\n") }
	withLine := func(i int, line string) []byte {
		l := append([]string(nil), good...)
		l[i] = line
		return join(l)
	}
	var noSite []string
	for _, l := range good {
		f := strings.Split(l, ",")
		noSite = append(noSite, strings.Join(append(f[:colSite:colSite], f[colSite+1:]...), ","))
	}
	full := gz(t, join(good))
	// Damage inside the stream: stored blocks keep the text readable, so a
	// comma put into row 30 makes it ragged before the checksum fails.
	midStream := storedGz(t, join(good))
	midStream[bytes.Index(midStream, []byte(good[30]))+3] = ','

	tests := []struct {
		name  string
		files map[string][]byte // under dumps/2020-09/
		want  []string          // the error names these
	}{
		{
			"not a number",
			map[string][]byte{"a.csv": withLine(3, setField(good[3], colBid, "abc"))},
			[]string{"a.csv", "row 3", "column \\\"bid_price", "abc"},
		},
		{
			"missing id",
			map[string][]byte{"a.csv": withLine(5, setField(good[5], colAdID, ""))},
			[]string{"a.csv", "row 5", "column \\\"ad_id"},
		},
		{
			"ragged row",
			map[string][]byte{"a.csv": withLine(7, good[7]+",extra")},
			[]string{"a.csv", "row 7"},
		},
		{
			"missing column",
			map[string][]byte{"a.csv": join(noSite)},
			[]string{"a.csv", "site_domain"},
		},
		{
			"truncated gzip",
			map[string][]byte{"a.csv.gz": full[:len(full)/2]},
			[]string{"a.csv.gz"},
		},
		{
			"gzip corrupted mid-stream",
			map[string][]byte{"a.csv.gz": midStream},
			[]string{"a.csv.gz", "corrupt gzip", "compressed byte"},
		},
		{
			"empty month",
			map[string][]byte{"a.csv": join(good[:1])},
			[]string{"no rows"},
		},
		{
			"no files",
			map[string][]byte{"README.txt": []byte("not data")},
			[]string{"no input files"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, out := t.TempDir(), t.TempDir()
			// A previous good partition that a failed run must leave alone.
			writeFile(t, filepath.Join(in, "dumps/2020-08/ok.csv"), join(good))
			for name, data := range tt.files {
				writeFile(t, filepath.Join(in, "dumps/2020-09", name), data)
			}
			args := []string{"--input", in, "--model", demoModel, "--output", out}
			mustSucceed(t, scorer(t, nil, append([]string{"backfill", "--month", "2020-08"}, args...)...))
			before := listTree(t, out)

			r := scorer(t, nil, append([]string{"backfill", "--month", "2020-09"}, args...)...)
			if r.code != exitBadInput {
				t.Fatalf("exit code %d, want %d\nstderr:\n%s", r.code, exitBadInput, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("error does not name %q:\n%s", w, r.stderr)
				}
			}
			after := listTree(t, out)
			if fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("output store changed by a failed run:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

func TestMaxBadRowsSendsRowsToRejects(t *testing.T) {
	good := demoCSV(t, "rej", 200)
	lines := append([]string(nil), good...)
	lines[10] = setField(lines[10], colBid, "ten")
	lines[20] = setField(lines[20], colAdID, "")
	in := t.TempDir()
	writeFile(t, filepath.Join(in, "dumps/2020-09/a.csv"), []byte(strings.Join(lines, "\n")+"\n"))

	for _, tt := range []struct {
		limit string
		code  int
	}{{"1", exitBadInput}, {"2", exitOK}, {"1%", exitOK}, {"0.5%", exitBadInput}} {
		t.Run(tt.limit, func(t *testing.T) {
			out := t.TempDir()
			r := scorer(t, nil, "backfill", "--month", "2020-09", "--input", in, "--model", demoModel,
				"--output", out, "--max-bad-rows", tt.limit)
			if r.code != tt.code {
				t.Fatalf("exit code %d, want %d\n%s", r.code, tt.code, r.stderr)
			}
			if tt.code != exitOK {
				if _, err := os.Stat(filepath.Join(out, "ad_scores")); !os.IsNotExist(err) {
					t.Fatalf("a failed run published ad_scores (stat: %v)", err)
				}
				return
			}
			if !strings.Contains(r.stdout, "rows rejected  2") {
				t.Errorf("summary does not count 2 rejected rows:\n%s", r.stdout)
			}
			s := readTable(t, filepath.Join(out, "ad_scores"), "ad_id", "month")
			if s.rows != 198 {
				t.Errorf("ad_scores has %d rows, want 198 good rows", s.rows)
			}
			rows, err := duck(t).Query(fmt.Sprintf(`SELECT file, "row", "column", reason FROM read_parquet('%s/ad_scores_rejects/*/*.parquet') ORDER BY "row"`, out))
			if err != nil {
				t.Fatal(err)
			}
			defer closeRows(t, rows)
			var got []string
			for rows.Next() {
				var file, col, reason string
				var row int64
				if err := rows.Scan(&file, &row, &col, &reason); err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%s:%d:%s", file, row, col))
			}
			want := "dumps/2020-09/a.csv:10:bid_price dumps/2020-09/a.csv:20:ad_id"
			if strings.Join(got, " ") != want {
				t.Errorf("rejects = %v, want %s", got, want)
			}
		})
	}
}

// A rejected row keeps its id and its raw text, so that it can be traced
// and replayed.
func TestRejectsCarryIDAndRawLine(t *testing.T) {
	good := demoCSV(t, "raw", 50)
	lines := append([]string(nil), good...)
	lines[10] = setField(lines[10], colBid, "ten")
	lines[20] = lines[20] + ",extra"
	in, out := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(in, "dumps/2020-09/a.csv"), []byte(strings.Join(lines, "\n")+"\n"))
	mustSucceed(t, scorer(t, map[string]string{"SCORER_REJECTS_RAW_MAX_BYTES": "20"}, "backfill", "--month", "2020-09",
		"--input", in, "--model", demoModel, "--output", out, "--max-bad-rows", "2"))

	rows, err := duck(t).Query(fmt.Sprintf(`SELECT "row", coalesce(ad_id, '<null>'), raw FROM read_parquet('%s/ad_scores_rejects/*/*.parquet') ORDER BY "row"`, out))
	if err != nil {
		t.Fatal(err)
	}
	defer closeRows(t, rows)
	var got []string
	for rows.Next() {
		var row int64
		var id, raw string
		if err := rows.Scan(&row, &id, &raw); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d|%s|%s", row, id, raw))
	}
	// A ragged row's fields are not where the header says: no id is
	// trusted, the raw line shows it.
	want := []string{
		fmt.Sprintf("10|%s|%s", strings.Split(good[10], ",")[colAdID], lines[10][:20]),
		fmt.Sprintf("20|<null>|%s", lines[20][:20]),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rejects:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// An input file without rows is scored as nothing, but said so: in the log
// and in the summary.
func TestEmptyInputFileIsReported(t *testing.T) {
	in := t.TempDir()
	queued, err := os.ReadFile(filepath.Join(demoStore, "queue", "requests-2020-09-02T00.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(in, "queue/a.jsonl"), queued)
	writeFile(t, filepath.Join(in, "queue/b.jsonl"), nil)
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			r := scorer(t, nil, "run", "--date", "2020-09-02", "--input", in, "--model", demoModel,
				"--output", t.TempDir(), "--log-format", "json", "-o", format)
			mustSucceed(t, r)
			if !strings.Contains(r.stderr, `"level":"WARN"`) || !strings.Contains(r.stderr, "queue/b.jsonl") {
				t.Errorf("no warning names the empty file:\n%s", r.stderr)
			}
			want := "empty files    1 (queue/b.jsonl)"
			if format == "json" {
				want = `"empty_files": [
    "queue/b.jsonl"
  ]`
			}
			if !strings.Contains(r.stdout, want) {
				t.Errorf("summary does not say %q:\n%s", want, r.stdout)
			}
		})
	}
}
