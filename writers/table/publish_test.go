package table

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/parquet-go/parquet-go/format"

	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/writers"
)

// cleanRun publishes run0 then run1 without crashes and returns the
// bucket snapshot: the reference every crash test must reach.
func cleanRun(t *testing.T) (string, map[string]string, []string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	var points []string
	p := newPublisher(t, store.NewFileBucket(dir), func(pt string) error { points = append(points, pt); return nil })
	run0, run1 := baseScenarios()
	if err := run0.run(ctx, p); err != nil {
		t.Fatal(err)
	}
	points = nil
	if err := run1.run(ctx, p); err != nil {
		t.Fatal(err)
	}
	return dir, snapshot(t, dir), points
}

func TestPublishReplaceAndAppend(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := newPublisher(t, store.NewFileBucket(dir), nil)
	run0, run1 := baseScenarios()

	if err := run0.run(ctx, p); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, dir)
	golden(t, "after_run0.golden", decodedTables(t, dir))

	if err := run1.run(ctx, p); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, dir)
	// REPLACE: only run1's rows in ad_scores and the rejects (now empty);
	// APPEND: run0's and run1's request scores.
	golden(t, "after_run1.golden", decodedTables(t, dir))

	count := func(table, where string) int64 {
		var n int64
		q := fmt.Sprintf("SELECT count(*) FROM read_parquet('%s/%s/*/*.parquet', hive_partitioning=true) WHERE %s", filepath.ToSlash(dir), table, where)
		if err := duck(t).QueryRow(q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, c := range []struct {
		table, where string
		want         int64
	}{
		{"ad_scores", "run_id = 'run1' AND month = '2020-09'", 5},
		{"ad_scores", "run_id = 'run0'", 0},
		{"request_scores", "run_id = 'run0'", 2},
		{"request_scores", "run_id = 'run1' AND date = DATE '2020-09-02'", 3},
		{"ad_scores_rejects", "true", 0},
	} {
		if got := count(c.table, c.where); got != c.want {
			t.Errorf("%s where %s: %d rows, want %d", c.table, c.where, got, c.want)
		}
	}

	// Every published file: zstd, dictionary strings, statistics, and the
	// run recorded in its key/value metadata.
	for k := range snapshot(t, dir) {
		if !strings.HasSuffix(k, ".parquet") {
			continue
		}
		pf := openParquet(t, filepath.Join(dir, filepath.FromSlash(k)))
		if v, _ := pf.Lookup("scorer.run_id"); !strings.Contains(k, "part-"+v+"-") {
			t.Errorf("%s: scorer.run_id %q", k, v)
		}
		for _, rg := range pf.Metadata().RowGroups {
			for _, cc := range rg.Columns {
				m := cc.MetaData
				allNull := m.Statistics.NullCount == m.NumValues // no min/max then, by the spec
				if m.Codec != format.Zstd || (len(m.Statistics.MaxValue) == 0 && !allNull) ||
					(m.Type == format.ByteArray && !slices.Contains(m.Encoding, format.RLEDictionary)) {
					t.Errorf("%s %v: codec %v, encodings %v, statistics %+v", k, m.PathInSchema, m.Codec, m.Encoding, m.Statistics)
				}
			}
		}
	}

	m, err := p.Manifest(ctx, "request_scores", "date=2020-09-02")
	if err != nil {
		t.Fatal(err)
	}
	var runs []string
	for _, f := range m.Files {
		runs = append(runs, f.RunID)
	}
	if want := []string{"run0", "run1", "run1"}; !slices.Equal(runs, want) || m.TotalRows != 5 || m.RunID != "run1" || len(m.Inputs) != 2 {
		t.Errorf("APPEND manifest: files of runs %v, %d rows, run %s, %d inputs", runs, m.TotalRows, m.RunID, len(m.Inputs))
	}
	if _, err := p.Manifest(ctx, "ad_scores", "month=1999-01"); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("missing manifest: got %v, want ErrNotExist", err)
	}
	commits, err := p.Commits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(commits) != 2 || commits[0].RunID != "run0" || commits[1].RunID != "run1" || !commits[0].Done || !commits[1].Done {
		t.Errorf("commits: %+v", commits)
	}
}

// TestCrashAtEveryPoint crashes run1 at every failpoint occurrence, then
// recovers (and, where run1 had not committed, runs it again), and checks
// the bucket equals the clean run's byte for byte and decodes to the same
// rows. Where the crash came before the commit record, the published
// tables must be exactly as run0 left them.
func TestCrashAtEveryPoint(t *testing.T) {
	ctx := context.Background()
	cleanDir, clean, points := cleanRun(t)
	cleanRows := decodedTables(t, cleanDir)
	commitAt := slices.Index(points, PointAfterCommitRecord)
	for _, must := range []string{
		PointAfterPartStaged, PointAfterStage, PointAfterCommitRecord, PointAfterPartCopied,
		PointAfterManifest, PointAfterStaleDeleted, PointAfterSuccess, PointBeforeDone, PointAfterDone,
	} {
		if !slices.Contains(points, must) {
			t.Fatalf("failpoint %s never reached; points: %v", must, points)
		}
	}

	for i, pt := range points {
		t.Run(fmt.Sprintf("%02d-%s", i, pt), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			b := store.NewFileBucket(dir)
			run0, run1 := baseScenarios()
			if err := run0.run(ctx, newPublisher(t, b, nil)); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, dir)

			n := 0
			crashing := newPublisher(t, b, func(string) error {
				n++
				if n == i+1 {
					return errCrash
				}
				return nil
			})
			if err := run1.run(ctx, crashing); !errors.Is(err, errCrash) {
				t.Fatalf("run1: got %v, want the simulated crash", err)
			}

			checkManifestsReadable(t, dir)
			tablesOnly := []string{"ad_scores/", "request_scores/", "ad_scores_rejects/"}
			if i < commitAt {
				if d := diffSnapshots(withPrefix(before, tablesOnly...), withPrefix(snapshot(t, dir), tablesOnly...)); d != "" {
					t.Fatalf("uncommitted crash changed published tables:\n%s", d)
				}
			}

			p := newPublisher(t, b, nil)
			// The ledger already reflects the commit point.
			consumed, err := p.Consumed(ctx, "daily")
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := consumed["in/b.csv"]; ok != (i >= commitAt) {
				t.Errorf("after crash, run1's input consumed = %v, want %v", ok, i >= commitAt)
			}

			rep, err := p.Recover(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if i < commitAt {
				if len(rep.RolledForward) != 0 {
					t.Errorf("rolled forward %v, want nothing", rep.RolledForward)
				}
				if d := diffSnapshots(before, snapshot(t, dir)); d != "" {
					t.Fatalf("Recover left something behind:\n%s", d)
				}
				if err := run1.run(ctx, p); err != nil {
					t.Fatal(err)
				}
			} else if pt == PointAfterDone {
				if len(rep.RolledForward) != 0 || !slices.Equal(rep.StagingDeleted, []string{"run1"}) {
					t.Errorf("recover after done: %+v, want only run1's staging deleted", rep)
				}
			} else if !slices.Equal(rep.RolledForward, []string{"run1"}) {
				t.Errorf("rolled forward %v, want [run1]", rep.RolledForward)
			}

			checkInvariants(t, dir)
			if d := diffSnapshots(clean, snapshot(t, dir)); d != "" {
				t.Errorf("bucket differs from a clean run:\n%s", d)
			}
			if got := decodedTables(t, dir); got != cleanRows {
				t.Errorf("decoded tables differ from a clean run:\n%s\nwant:\n%s", got, cleanRows)
			}
		})
	}
}

// TestCrashDuringRecovery crashes run1 after its commit record, then
// crashes each recovery at each of its points in turn before letting one
// finish: roll forward is safe to repeat from any crash point.
func TestCrashDuringRecovery(t *testing.T) {
	ctx := context.Background()
	_, clean, _ := cleanRun(t)
	dir := t.TempDir()
	b := store.NewFileBucket(dir)
	run0, run1 := baseScenarios()
	if err := run0.run(ctx, newPublisher(t, b, nil)); err != nil {
		t.Fatal(err)
	}
	crashAt := func(point string, k int) func(string) error {
		n := 0
		return func(pt string) error {
			if pt == point {
				if n++; n == k {
					return errCrash
				}
			}
			return nil
		}
	}
	if err := run1.run(ctx, newPublisher(t, b, crashAt(PointAfterCommitRecord, 1))); !errors.Is(err, errCrash) {
		t.Fatalf("run1: got %v, want the simulated crash", err)
	}
	// Each recovery crashes one step further than the last.
	crashes := 0
	for k := 1; ; k++ {
		n := 0
		p := newPublisher(t, b, func(string) error {
			if n++; n == k {
				return errCrash
			}
			return nil
		})
		_, err := p.Recover(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, errCrash) {
			t.Fatalf("recovery %d: %v", k, err)
		}
		crashes++
	}
	if crashes < 10 {
		t.Errorf("only %d recoveries crashed; expected one per failpoint", crashes)
	}
	checkInvariants(t, dir)
	if d := diffSnapshots(clean, snapshot(t, dir)); d != "" {
		t.Errorf("bucket differs from a clean run:\n%s", d)
	}
}

// TestRollForwardIsIdempotent: repeating roll forward and Recover on a
// published bucket changes nothing, not even a generation.
func TestRollForwardIsIdempotent(t *testing.T) {
	ctx := context.Background()
	dir, clean, _ := cleanRun(t)
	b := store.NewFileBucket(dir)
	infos := func() []store.ObjectInfo {
		objs, err := b.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		return objs
	}
	before := infos()
	p := newPublisher(t, b, nil)
	for range 2 {
		rep, err := p.Recover(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.RolledForward)+len(rep.StagingDeleted) != 0 {
			t.Errorf("Recover on a clean bucket did %+v", rep)
		}
		if rolled, err := p.RollForwardJob(ctx, ""); err != nil || len(rolled) != 0 {
			t.Errorf("RollForwardJob: %v, %v", rolled, err)
		}
	}
	if !slices.EqualFunc(before, infos(), func(a, b store.ObjectInfo) bool {
		return a.Key == b.Key && a.Generation == b.Generation && a.Size == b.Size
	}) {
		t.Errorf("objects changed:\n%v\n%v", before, infos())
	}
	if d := diffSnapshots(clean, snapshot(t, dir)); d != "" {
		t.Error(d)
	}
}

// TestReplayDoneRun: rolling forward a done run's record again (as if its
// done marker were lost) converges to the same tables.
func TestReplayDoneRun(t *testing.T) {
	ctx := context.Background()
	dir, clean, _ := cleanRun(t)
	if err := os.Remove(filepath.Join(dir, "_scorer", "commits", "run1.done")); err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, store.NewFileBucket(dir), nil)
	rep, err := p.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.RolledForward, []string{"run1"}) {
		t.Errorf("rolled forward %v", rep.RolledForward)
	}
	checkInvariants(t, dir)
	if d := diffSnapshots(clean, snapshot(t, dir)); d != "" {
		t.Error(d)
	}
}

func TestConsumed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := store.NewFileBucket(dir)
	p := newPublisher(t, b, nil)
	run0, run1 := baseScenarios()
	if err := run0.run(ctx, p); err != nil {
		t.Fatal(err)
	}
	// Same job, crashes before its commit record: its input is not consumed.
	crash := newPublisher(t, b, func(pt string) error {
		if pt == PointAfterStage {
			return errCrash
		}
		return nil
	})
	if err := run1.run(ctx, crash); !errors.Is(err, errCrash) {
		t.Fatal(err)
	}
	// Another job, and a new generation of in/a.csv consumed by run2.
	other := scenario{runID: "other", job: "hourly", ads: genScores(3, 1), inputs: []InputFile{{Key: "in/h.csv", Generation: 5}}}
	if _, err := p.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if err := other.run(ctx, p); err != nil {
		t.Fatal(err)
	}
	run2 := scenario{runID: "run2", job: "daily", ads: genScores(4, 1), inputs: []InputFile{{Key: "in/a.csv", Generation: 12, Size: 101}}}
	if err := run2.run(ctx, p); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		job  string
		want map[string]InputFile
	}{
		{"daily", map[string]InputFile{"in/a.csv": {Key: "in/a.csv", Generation: 12, Size: 101}}},
		{"hourly", map[string]InputFile{"in/h.csv": {Key: "in/h.csv", Generation: 5}}},
		{"nobody", map[string]InputFile{}},
	}
	for _, tt := range tests {
		t.Run(tt.job, func(t *testing.T) {
			got, err := p.Consumed(ctx, tt.job)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAbort(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := store.NewFileBucket(dir)
	p := newPublisher(t, b, nil)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := scoreRecord(mem, genScores(0, 5))
	defer rec.Release()

	run, err := p.Begin(ctx, RunSpec{RunID: "r", Job: "j"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := run.Output(OutputSpec{Table: "ad_scores", Partition: "month=2020-09", Mode: Replace, Schema: scoreSchema})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := run.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if snap := snapshot(t, dir); len(snap) != 0 {
		t.Errorf("Abort left %v", snap)
	}
	if err := w.Write(ctx, rec); !errors.Is(err, ErrClosed) {
		t.Errorf("write after abort: %v", err)
	}
	if _, err := run.Commit(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("commit after abort: %v", err)
	}

	// After the commit point, Abort refuses and deletes nothing.
	crash := newPublisher(t, b, func(pt string) error {
		if pt == PointAfterCommitRecord {
			return errCrash
		}
		return nil
	})
	run, err = crash.Begin(ctx, RunSpec{RunID: "r2", Job: "j"})
	if err != nil {
		t.Fatal(err)
	}
	w, err = run.Output(OutputSpec{Table: "ad_scores", Partition: "month=2020-09", Mode: Replace, Schema: scoreSchema})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := run.Commit(ctx); !errors.Is(err, errCrash) {
		t.Fatal(err)
	}
	if err := run.Abort(ctx); !errors.Is(err, ErrCommitted) {
		t.Errorf("abort after commit: got %v, want ErrCommitted", err)
	}
	if _, err := p.Begin(ctx, RunSpec{RunID: "r2", Job: "j"}); !errors.Is(err, ErrRunExists) {
		t.Errorf("reusing a committed run id: got %v, want ErrRunExists", err)
	}
	if _, err := p.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := p.Manifest(ctx, "ad_scores", "month=2020-09")
	if err != nil || m.RunID != "r2" || m.TotalRows != 5 {
		t.Errorf("manifest %+v, %v", m, err)
	}
}

// ambiguousBucket applies the first write of the commit record but reports
// a failure, as a GCS write whose response was lost does.
type ambiguousBucket struct {
	store.Bucket
	failed bool
}

type ambiguousWriter struct{ store.Writer }

func (w ambiguousWriter) Close() error {
	if err := w.Writer.Close(); err != nil {
		return err
	}
	return errors.New("connection reset")
}

func (b *ambiguousBucket) NewWriter(ctx context.Context, key string, opts store.WriteOptions) (store.Writer, error) {
	w, err := b.Bucket.NewWriter(ctx, key, opts)
	if err == nil && !b.failed && strings.HasPrefix(key, state.CommitsPrefix) && strings.HasSuffix(key, state.CommitSuffix) {
		b.failed = true
		return ambiguousWriter{w}, nil
	}
	return w, err
}

func TestAmbiguousCommitWrite(t *testing.T) {
	ctx := context.Background()
	_, clean, _ := cleanRun(t)
	dir := t.TempDir()
	b := &ambiguousBucket{Bucket: store.NewFileBucket(dir)}
	run0, _ := baseScenarios()
	p := newPublisher(t, b, nil)
	run, err := run0.start(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run.Commit(ctx); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("got %v, want the write error", err)
	}
	// The caller cannot know whether the run committed; Abort must not
	// destroy a committed run's staging.
	if err := run.Abort(ctx); !errors.Is(err, ErrCommitted) {
		t.Errorf("abort: got %v, want ErrCommitted", err)
	}
	if _, err := p.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	_, run1 := baseScenarios()
	if err := run1.run(ctx, p); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, dir)
	if d := diffSnapshots(clean, snapshot(t, dir)); d != "" {
		t.Error(d)
	}
}

// TestConflict: an object at a final part name with other content is never
// overwritten.
func TestConflict(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := store.NewFileBucket(dir)
	intruder := finalKey("ad_scores", "month=2020-09", PartName("run0", 0))
	if err := store.WriteAll(ctx, b, intruder, []byte("not ours"), store.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	run0, _ := baseScenarios()
	p := newPublisher(t, b, nil)
	if err := run0.run(ctx, p); !errors.Is(err, ErrConflict) {
		t.Fatalf("got %v, want ErrConflict", err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(intruder))); string(data) != "not ours" {
		t.Errorf("intruder overwritten")
	}
}

func TestValidation(t *testing.T) {
	ctx := context.Background()
	p := newPublisher(t, store.NewFileBucket(t.TempDir()), nil)
	run, err := p.Begin(ctx, RunSpec{RunID: "r", Job: "j"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		spec OutputSpec
		want error
	}{
		{"ok", OutputSpec{Table: "t", Partition: "date=2020-09-02/hour=07", Mode: Append, Schema: scoreSchema}, nil},
		{"duplicate", OutputSpec{Table: "t", Partition: "date=2020-09-02/hour=07", Mode: Replace, Schema: scoreSchema}, ErrDuplicateOutput},
		{"hidden table", OutputSpec{Table: "_scorer", Partition: "a=b", Mode: Replace, Schema: scoreSchema}, ErrInvalidName},
		{"nested table", OutputSpec{Table: "a/b", Partition: "a=b", Mode: Replace, Schema: scoreSchema}, ErrInvalidName},
		{"no partition", OutputSpec{Table: "t", Mode: Replace, Schema: scoreSchema}, ErrInvalidName},
		{"not hive", OutputSpec{Table: "t", Partition: "2020-09", Mode: Replace, Schema: scoreSchema}, ErrInvalidName},
		{"dot dot", OutputSpec{Table: "t", Partition: "a=..", Mode: Replace, Schema: scoreSchema}, ErrInvalidName},
		{"bad type", OutputSpec{Table: "t", Partition: "a=1", Mode: Replace, Schema: scoreSchema, Constants: []writers.Constant{{Name: "x", Value: true}}}, writers.ErrUnsupportedType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := run.Output(tt.spec); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	for _, id := range []string{"", "a/b", "../x", ".hidden", "a b"} {
		if _, err := p.Begin(ctx, RunSpec{RunID: id, Job: "j"}); !errors.Is(err, ErrInvalidName) {
			t.Errorf("run id %q: got %v, want ErrInvalidName", id, err)
		}
	}
	if err := run.Abort(ctx); err != nil {
		t.Fatal(err)
	}
}
