package table

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/parquet-go/parquet-go"

	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/writers"
	"github.com/adtech/scorer/writers/internal/writertest"
)

// errCrash is what the failpoint returns to simulate a crash.
var errCrash = errors.New("simulated crash")

// clock is the fixed time of every test run, so that runs are
// byte-for-byte reproducible.
var clock = time.Date(2020, 9, 2, 3, 15, 0, 0, time.UTC)

type rejectRow struct {
	Key    string
	Line   int64
	Reason string
}

func rejectRecord(mem memory.Allocator, rows []rejectRow) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, rejectSchema)
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.StringBuilder).Append(r.Key)
		b.Field(1).(*array.Int64Builder).Append(r.Line)
		b.Field(2).(*array.StringBuilder).Append(r.Reason)
	}
	return b.NewRecordBatch()
}

type scoreRow = writertest.ScoreRow

var (
	scoreSchema  = writertest.ScoreSchema
	rejectSchema = writertest.RejectSchema
	scoreRecord  = writertest.ScoreRecord
	genScores    = writertest.GenScores
	duck         = writertest.Duck
	queryRows    = writertest.QueryRows
	golden       = writertest.Golden
)

// scenario is one run of the test product: scores for a month (REPLACE),
// request scores for a day (APPEND), rejects for the month (REPLACE).
type scenario struct {
	runID   string
	job     string
	ads     []scoreRow
	reqs    []scoreRow
	rejects []rejectRow
	inputs  []InputFile
}

func (sc scenario) run(ctx context.Context, p *Publisher) error {
	run, err := sc.start(ctx, p)
	if err != nil {
		return err
	}
	_, err = run.Commit(ctx)
	return err
}

// start begins the run and writes its outputs, without committing.
func (sc scenario) start(ctx context.Context, p *Publisher) (*Run, error) {
	run, err := p.Begin(ctx, RunSpec{
		RunID:  sc.runID,
		Job:    sc.job,
		Model:  Model{Name: "ctr", Version: "v3"},
		Inputs: sc.inputs,
		Constants: []writers.Constant{
			{Name: "model_name", Value: "ctr"},
			{Name: "model_version", Value: "v3"},
			{Name: "run_id", Value: sc.runID},
			{Name: "scored_at", Value: clock},
		},
	})
	if err != nil {
		return nil, err
	}
	mem := memory.NewGoAllocator()
	type out struct {
		spec OutputSpec
		rec  arrow.RecordBatch
	}
	outs := []out{
		{OutputSpec{Table: "ad_scores", Partition: "month=2020-09", Mode: Replace, Schema: scoreSchema}, scoreRecord(mem, sc.ads)},
		{OutputSpec{Table: "request_scores", Partition: "date=2020-09-02", Mode: Append, Schema: scoreSchema}, scoreRecord(mem, sc.reqs)},
		{OutputSpec{Table: "ad_scores_rejects", Partition: "month=2020-09", Mode: Replace, Schema: rejectSchema}, rejectRecord(mem, sc.rejects)},
	}
	for _, o := range outs {
		defer o.rec.Release()
		w, err := run.Output(o.spec)
		if err != nil {
			return nil, err
		}
		if err := w.Write(ctx, o.rec); err != nil {
			return nil, err
		}
	}
	return run, nil
}

// Two runs of the same job: run0 is the state before, run1 the run under
// test. With PartRows 2, run1 writes 3 + 2 + 1 parts and replaces 2 + 1.
func baseScenarios() (scenario, scenario) {
	run0 := scenario{
		runID: "run0", job: "daily",
		ads:     genScores(0, 3),
		reqs:    genScores(10, 2),
		rejects: []rejectRow{{"in/a.csv", 7, "bad ad_id"}},
		inputs:  []InputFile{{Key: "in/a.csv", Generation: 11, Size: 100, CRC32C: 0xdeadbeef, Rows: 6}},
	}
	run1 := scenario{
		runID: "run1", job: "daily",
		ads:    genScores(1, 5),
		reqs:   genScores(11, 3),
		inputs: []InputFile{{Key: "in/b.csv", Generation: 22, Size: 200, CRC32C: 0xcafebabe, Rows: 8}},
	}
	return run0, run1
}

func testOptions(fp func(string) error) Options {
	o := DefaultOptions()
	o.PartRows = 2
	o.RowGroupRows = 1
	o.Now = func() time.Time { return clock }
	o.Failpoint = fp
	return o
}

func newPublisher(t *testing.T, b store.Bucket, fp func(string) error) *Publisher {
	t.Helper()
	p, err := NewPublisher(b, testOptions(fp))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// snapshot maps every file under dir (relative, slash-separated) to the
// sha256 of its bytes.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasPrefix(filepath.ToSlash(rel), ".tmp/") {
			// A part that was being written when the run "crashed": the
			// local store's temporary file, outside every table and
			// invisible to List (GCS drops an unfinished upload instead).
			// The store collects it; not ours to clean up.
			return nil
		}
		if filepath.Base(rel) == ManifestListName {
			// It names files by full URI: compare buckets in different
			// folders by what it names under the root.
			data = []byte(strings.ReplaceAll(string(data), dir+string(filepath.Separator), "<root>/"))
		}
		sum := sha256.Sum256(data)
		out[filepath.ToSlash(rel)] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

func withPrefix(snap map[string]string, prefixes ...string) map[string]string {
	out := map[string]string{}
	for k, v := range snap {
		for _, p := range prefixes {
			if strings.HasPrefix(k, p) {
				out[k] = v
			}
		}
	}
	return out
}

func diffSnapshots(want, got map[string]string) string {
	var d []string
	for k, v := range want {
		if g, ok := got[k]; !ok {
			d = append(d, "missing "+k)
		} else if g != v {
			d = append(d, "differs "+k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			d = append(d, "extra "+k)
		}
	}
	slices.Sort(d)
	return strings.Join(d, "\n")
}

// tableRows decodes a whole table the way analysts read it.
func tableRows(t *testing.T, dir, table, orderBy string) []string {
	t.Helper()
	glob := filepath.ToSlash(filepath.Join(dir, table)) + "/*/*.parquet"
	return queryRows(t, fmt.Sprintf("SELECT * FROM read_parquet('%s', hive_partitioning=true) ORDER BY %s", glob, orderBy))
}

var tables = []struct{ name, partition, order string }{
	{"ad_scores", "month=2020-09", "ad_id"},
	{"request_scores", "date=2020-09-02", "ad_id"},
	{"ad_scores_rejects", "month=2020-09", "input_key, line"},
}

// decodedTables decodes every test table, one block per table.
func decodedTables(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	for _, tb := range tables {
		fmt.Fprintf(&b, "== %s\n%s\n", tb.name, strings.Join(tableRows(t, dir, tb.name, tb.order), "\n"))
	}
	return b.String()
}

func readJSON[T any](t *testing.T, path string) T {
	t.Helper()
	var v T
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// checkInvariants checks the state every finished publish must leave: no
// staging, every commit done, and each partition folder holding exactly
// its manifest's files plus _manifest.json and _SUCCESS.
func checkInvariants(t *testing.T, dir string) {
	t.Helper()
	snap := snapshot(t, dir)
	for k := range snap {
		if strings.HasPrefix(k, "_scorer/staging/") {
			t.Errorf("staging left behind: %s", k)
		}
		if id, ok := strings.CutSuffix(strings.TrimPrefix(k, "_scorer/commits/"), ".json"); ok && strings.HasPrefix(k, "_scorer/commits/") {
			if _, done := snap["_scorer/commits/"+id+".done"]; !done {
				t.Errorf("run %s committed but not done", id)
			}
		}
	}
	for _, tb := range tables {
		prefix := tb.name + "/" + tb.partition + "/"
		m := readJSON[Manifest](t, filepath.Join(dir, filepath.FromSlash(prefix+ManifestName)))
		want := []string{ManifestName, ManifestListName, SuccessName}
		if got, wantList := manifestList(t, dir, prefix), manifestFiles(m); !slices.Equal(got, wantList) {
			t.Errorf("%s%s lists %v, manifest %v", prefix, ManifestListName, got, wantList)
		}
		var rows int64
		for _, f := range m.Files {
			want = append(want, f.Name)
			rows += f.Rows
			if got := snap[prefix+f.Name]; got != f.SHA256 {
				t.Errorf("%s%s: sha256 %s, manifest says %s", prefix, f.Name, got, f.SHA256)
			}
		}
		if rows != m.TotalRows {
			t.Errorf("%s: total_rows %d, files sum to %d", prefix, m.TotalRows, rows)
		}
		var got []string
		for k := range snap {
			if strings.HasPrefix(k, tb.name+"/") {
				got = append(got, strings.TrimPrefix(k, prefix))
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: folder holds %v, manifest says %v", prefix, got, want)
		}
	}
}

// checkManifestsReadable checks the consistent view that holds at every
// instant: each partition's manifest lists files that exist with the
// recorded bytes.
func checkManifestsReadable(t *testing.T, dir string) {
	t.Helper()
	snap := snapshot(t, dir)
	for _, tb := range tables {
		prefix := tb.name + "/" + tb.partition + "/"
		if _, ok := snap[prefix+ManifestName]; !ok {
			continue
		}
		m := readJSON[Manifest](t, filepath.Join(dir, filepath.FromSlash(prefix+ManifestName)))
		for _, f := range m.Files {
			if got := snap[prefix+f.Name]; got != f.SHA256 {
				t.Errorf("manifest %s lists %s: sha256 %q, want %s", prefix, f.Name, got, f.SHA256)
			}
		}
		// The text list is the previous manifest's until it is rewritten
		// right after _manifest.json: either way, files that all exist.
		if _, ok := snap[prefix+ManifestListName]; ok {
			for _, name := range manifestList(t, dir, prefix) {
				if _, ok := snap[prefix+name]; !ok {
					t.Errorf("%s%s lists %s, which does not exist", prefix, ManifestListName, name)
				}
			}
		}
	}
}

// manifestList reads a partition's _manifest.txt: the file names of its
// URIs, which must all lie in the partition's folder.
func manifestList(t *testing.T, dir, prefix string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(prefix+ManifestListName)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	folder := filepath.Join(dir, filepath.FromSlash(prefix))
	for line := range strings.Lines(string(data)) {
		uri := strings.TrimSuffix(line, "\n")
		name, ok := strings.CutPrefix(uri, folder+string(filepath.Separator))
		if !ok || strings.Contains(name, "/") {
			t.Errorf("%s%s: %q is not a file of the partition", prefix, ManifestListName, uri)
		}
		names = append(names, name)
	}
	return names
}

func manifestFiles(m Manifest) []string {
	var names []string
	for _, f := range m.Files {
		names = append(names, f.Name)
	}
	return names
}

func openParquet(t *testing.T, path string) *parquet.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return pf
}
