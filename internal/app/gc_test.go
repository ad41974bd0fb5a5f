package app

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/internal/lease"
	"github.com/adtech/scorer/internal/runlog"
	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scheduler"
	"github.com/adtech/scorer/writers/table"
)

const day = 24 * time.Hour

// gcWorld is a pair of stores holding state of every kind, old and new,
// each piece of it built the way the scorer builds it.
type gcWorld struct {
	in, out string
	now     time.Time
}

// gcRetention is the retention the tests collect with.
func gcRetention(action string) RetentionConfig {
	return RetentionConfig{
		RunRecordsDays: 90, ScheduleDays: 90, StagingDays: 7, ArchiveDays: 365, QueueDays: 30,
		QueueAction: action, QueueArchiveDir: "queue-archive",
	}
}

func (w gcWorld) app(action string) *App {
	cfg := Default()
	cfg.Input, cfg.Output, cfg.Retention = w.in, w.out, gcRetention(action)
	return New(cfg, Options{Now: func() time.Time { return w.now }})
}

// age sets the modification time (the store's object time) of every file
// under a key prefix to now-d.
func (w gcWorld) age(t *testing.T, root, prefix string, d time.Duration) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(root, filepath.FromSlash(prefix)), func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		n++
		return os.Chtimes(p, w.now.Add(-d), w.now.Add(-d))
	})
	if err != nil || n == 0 {
		t.Fatalf("age %s: %v (%d files)", prefix, err, n)
	}
}

var errCrash = errors.New("crash")

// stage begins a run with one output of one row, staged and not committed.
func stage(t *testing.T, pub *table.Publisher, id, job string, inputs ...table.InputFile) *table.Run {
	t.Helper()
	ctx := t.Context()
	run, err := pub.Begin(ctx, table.RunSpec{RunID: id, Job: job, Model: table.Model{Name: "m", Version: "1"}, Inputs: inputs})
	if err != nil {
		t.Fatal(err)
	}
	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}}, nil)
	wr, err := run.Output(table.OutputSpec{Table: "gc_rows", Partition: "run=" + id, Mode: table.Append, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).Append(id)
	rec := b.NewRecordBatch()
	defer rec.Release()
	if err := wr.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := wr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return run
}

// publisher returns a publisher of the output store that crashes at point
// ("" for none), with its clock shifted by shift.
func (w gcWorld) publisher(t *testing.T, point string, shift time.Duration) *table.Publisher {
	t.Helper()
	opts := table.DefaultOptions()
	opts.Now = func() time.Time { return time.Now().Add(shift) }
	opts.Failpoint = func(p string) error {
		if p == point {
			return errCrash
		}
		return nil
	}
	pub, err := table.NewPublisher(store.NewFileBucket(w.out), opts)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// queued writes a queue file aged d and returns it as an input of a run.
func (w gcWorld) queued(t *testing.T, name, body string, d time.Duration) table.InputFile {
	t.Helper()
	p := filepath.Join(w.in, "queue", filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	w.age(t, w.in, "queue/"+name, d)
	info, err := store.NewFileBucket(w.in).Stat(t.Context(), "queue/"+name)
	if err != nil {
		t.Fatal(err)
	}
	return table.InputFile{Key: info.Key, Generation: info.Generation, Size: info.Size, Rows: 1}
}

// newGCWorld builds the state. What gc must do with each piece is said
// beside it; TestGC checks exactly that.
func newGCWorld(t *testing.T, now time.Time) gcWorld {
	t.Helper()
	ctx := t.Context()
	w := gcWorld{in: t.TempDir(), out: t.TempDir(), now: now}
	out := store.NewFileBucket(w.out)

	// Run records (retention 90 days, by started_at).
	rl := runlog.New(out)
	record := func(job, id string, started time.Duration, outcome runlog.Outcome, sched string) {
		r := &runlog.Record{RunID: id, Job: job, Kind: "test", StartedAt: now.Add(-started), Outcome: outcome}
		if sched != "" {
			r.Schedule = &runlog.ScheduleRef{Job: sched, Slot: r.StartedAt}
		}
		var err error
		if outcome == runlog.Running {
			err = rl.Start(ctx, r)
		} else {
			r.FinishedAt = r.StartedAt.Add(time.Minute)
			err = rl.Finish(ctx, r)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	record("queue", "r-q1", 200*day, runlog.Succeeded, "")                  // deleted
	record("queue", "r-q2", 100*day, runlog.Succeeded, "nightly")           // kept: the newest of schedule job nightly
	record("queue", "r-q3", 1*day, runlog.Succeeded, "")                    // young
	record("backfill.month=2020-01", "r-b1", 200*day, runlog.Failed, "")    // deleted
	record("backfill.month=2020-01", "r-b2", 150*day, runlog.Succeeded, "") // kept: the newest of its job
	record("backfill.month=2020-02", "r-l1", 130*day, runlog.Running, "")   // kept: running, a live lease names it
	record("backfill.month=2020-02", "r-l2", 120*day, runlog.Succeeded, "") // kept: newest
	record("backfill.month=2020-03", "r-i1", 110*day, runlog.Running, "")   // deleted: interrupted (no lease)
	record("backfill.month=2020-03", "r-i2", 100*day, runlog.Succeeded, "") // kept: newest
	if _, err := state.Put(ctx, out, state.RunKey("queue", "r-bad"), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	w.age(t, w.out, state.RunKey("queue", "r-bad"), 300*day)                // deleted: unreadable, aged by the object's time
	record("backfill.month=2020-11", "r-u1", 200*day, runlog.Succeeded, "") // kept: the newest readable record of its job
	if _, err := state.Put(ctx, out, state.RunKey("backfill.month=2020-11", "r-u2"), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	w.age(t, w.out, state.RunKey("backfill.month=2020-11", "r-u2"), 150*day) // deleted: unreadable, never a job's newest

	// Leases: r-l1's and r-live's are live; a dead holder's fenced commit
	// of r-fenced waits for the next holder.
	putLease := func(job string, info lease.Info) {
		data, err := state.EncodeCompact(info)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := state.Put(ctx, out, state.LeaseKey(job), data); err != nil {
			t.Fatal(err)
		}
	}
	putLease("backfill.month=2020-02", lease.Info{Holder: "h", RunID: "r-l1", ExpiresAt: now.Add(time.Hour)})
	putLease("backfill.month=2020-07", lease.Info{Holder: "h", RunID: "r-live", ExpiresAt: now.Add(time.Hour)})
	putLease("backfill.month=2020-05", lease.Info{
		Holder: "gone", RunID: "r-fenced", ExpiresAt: now.Add(-20 * day),
		PendingKey: state.CommitKey("r-fenced"), Pending: []byte(`{"run_id":"r-fenced"}`),
	})

	// The schedule's ledger (retention 90 days, and before the watermark).
	ledger := scheduler.NewStoreLedger(out)
	hour := now.Truncate(time.Hour)
	settle := func(job string, ago time.Duration) {
		if err := ledger.Settle(ctx, scheduler.SlotRecord{Job: job, Slot: hour.Add(-ago), Outcome: scheduler.Succeeded, Attempts: 1, SettledAt: hour.Add(-ago)}); err != nil {
			t.Fatal(err)
		}
	}
	for job, wm := range map[string]time.Duration{"nightly": 50 * day, "stalled": 200 * day} {
		if err := ledger.Advance(ctx, job, hour.Add(-wm)); err != nil {
			t.Fatal(err)
		}
	}
	settle("nightly", 200*day) // deleted
	settle("nightly", 100*day) // deleted
	settle("nightly", 50*day)  // young (at the watermark)
	settle("stalled", 300*day) // deleted
	settle("stalled", 200*day) // kept: at the watermark
	settle("stalled", 150*day) // kept: after the watermark
	settle("nowm", 300*day)    // kept: the job has no watermark

	// Committed runs and the queue (retention 30 days). q1 consumes a, d,
	// f, g and sub/h; a checkpoint covers it (and a0) and archives both.
	pub := w.publisher(t, "", 0)
	commit := func(run *table.Run) {
		if _, err := run.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	commit(stage(t, pub, "r-a0", "backfill.month=2020-08"))
	a := w.queued(t, "a.jsonl", `{"request_id":"a"}`, 40*day)     // archived
	d := w.queued(t, "d.jsonl", `{"request_id":"d"}`, 40*day)     // kept: rewritten after q1
	f := w.queued(t, "f.jsonl", `{"request_id":"f"}`, 10*day)     // young
	g := w.queued(t, "g.jsonl", `{"request_id":"g"}`, 40*day)     // kept: the archive has another g.jsonl
	h := w.queued(t, "sub/h.jsonl", `{"request_id":"h"}`, 40*day) // archived, to sub/h.jsonl
	commit(stage(t, pub, "r-q1", jobs.JobQueue, a, d, f, g, h))
	if rep, err := w.publisher(t, "", 2*table.CheckpointLag).Checkpoint(ctx, 1, nil); err != nil || rep.Written != 1 || rep.Archived != 2 {
		t.Fatalf("checkpoint: %+v, %v", rep, err)
	}
	w.age(t, w.out, state.ArchivedKey(state.CommitKey("r-a0")), 400*day) // deleted
	w.age(t, w.out, state.ArchivedKey(state.DoneKey("r-a0")), 400*day)   // deleted with it
	w.queued(t, "d.jsonl", `{"request_id":"d2"}`, 41*day)
	if err := os.MkdirAll(filepath.Join(w.in, "queue-archive"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.in, "queue-archive", "g.jsonl"), []byte(`{"request_id":"other"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	b := w.queued(t, "b.jsonl", `{"request_id":"b"}`, 40*day) // kept: consumed by q2, which no checkpoint covers
	commit(stage(t, pub, "r-q2", jobs.JobQueue, b))
	w.queued(t, "c.jsonl", `{"request_id":"c"}`, 40*day) // kept: never consumed
	// An archiving stopped between its copy and its deletes: the archive's
	// copy stays until the log's record is gone.
	// (Written anew: a local store's copy is a link, which ageing would
	// age in the log too.)
	if data, err := store.ReadAll(ctx, out, state.CommitKey("r-q2")); err != nil {
		t.Fatal(err)
	} else if _, err := state.Create(ctx, out, state.ArchivedKey(state.CommitKey("r-q2")), data); err != nil {
		t.Fatal(err)
	}
	w.age(t, w.out, state.ArchivedKey(state.CommitKey("r-q2")), 400*day) // kept

	// Staging (retention 7 days).
	stage(t, pub, "r-old", "backfill.month=2020-04")
	w.age(t, w.out, state.RunStagingPrefix("r-old"), 30*day) // deleted: never committed
	stage(t, pub, "r-fresh", "backfill.month=2020-04")       // young
	stage(t, pub, "r-fenced", "backfill.month=2020-05")
	w.age(t, w.out, state.RunStagingPrefix("r-fenced"), 30*day) // kept: fenced in a lease
	stage(t, pub, "r-live", "backfill.month=2020-07")
	w.age(t, w.out, state.RunStagingPrefix("r-live"), 30*day) // kept: a live lease names it
	stage(t, pub, "r-plan", "backfill.month=2020-06.shards")
	if _, err := state.Put(ctx, out, state.ShardPlanKey("backfill.month=2020-06"), []byte(`{"id": "r-plan", "count": 2}`)); err != nil {
		t.Fatal(err)
	}
	w.age(t, w.out, state.RunStagingPrefix("r-plan"), 30*day) // kept: a shard plan stages there
	if _, err := stage(t, w.publisher(t, table.PointAfterDone, 0), "r-leftover", "backfill.month=2020-09").Commit(ctx); !errors.Is(err, errCrash) {
		t.Fatalf("crash after done: %v", err)
	}
	w.age(t, w.out, state.RunStagingPrefix("r-leftover"), 30*day) // deleted: done, staging left by a crash
	if _, err := stage(t, w.publisher(t, table.PointAfterCommitRecord, 0), "r-pending", "backfill.month=2020-10").Commit(ctx); !errors.Is(err, errCrash) {
		t.Fatalf("crash after the commit record: %v", err)
	}
	w.age(t, w.out, state.RunStagingPrefix("r-pending"), 30*day) // kept: committed, not yet published
	return w
}

// snapshot lists the files of a store folder (keys, with their bytes),
// without the local store's .tmp/.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if e.IsDir() {
			if rel == ".tmp" {
				return filepath.SkipDir
			}
			return nil
		}
		data, err := os.ReadFile(p)
		m[filepath.ToSlash(rel)] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// gcState is both stores' snapshots, the input's keys prefixed "in:".
func (w gcWorld) state(t *testing.T) map[string]string {
	t.Helper()
	m := snapshot(t, w.out)
	for k, v := range snapshot(t, w.in) {
		m["in:"+k] = v
	}
	return m
}

// diff describes what went from a to b and what came.
func diff(a, b map[string]string) (gone, came []string) {
	for k := range a {
		if _, ok := b[k]; !ok {
			gone = append(gone, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			came = append(came, k)
		}
	}
	slices.Sort(gone)
	slices.Sort(came)
	return gone, came
}

func TestGC(t *testing.T) {
	now := time.Now().UTC()
	w := newGCWorld(t, now)
	ctx := t.Context()
	before := w.state(t)
	var staged []string // the objects of the staging gc deletes
	for k := range before {
		if strings.HasPrefix(k, state.RunStagingPrefix("r-old")) || strings.HasPrefix(k, state.RunStagingPrefix("r-leftover")) {
			staged = append(staged, k)
		}
	}

	dry, err := w.app(QueueArchive).GC(ctx, GCRequest{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if gone, came := diff(before, w.state(t)); gone != nil || came != nil {
		t.Fatalf("the dry run changed the stores: gone %v, came %v", gone, came)
	}

	rep, err := w.app(QueueArchive).GC(ctx, GCRequest{})
	if err != nil {
		t.Fatal(err)
	}
	after := w.state(t)
	gone, came := diff(before, after)
	wantGone := append([]string{
		state.RunKey("queue", "r-q1"), state.RunKey("queue", "r-bad"),
		state.RunKey("backfill.month=2020-01", "r-b1"), state.RunKey("backfill.month=2020-03", "r-i1"),
		state.RunKey("backfill.month=2020-11", "r-u2"),
		state.SlotKey("nightly", now.Truncate(time.Hour).Add(-200*day)),
		state.SlotKey("nightly", now.Truncate(time.Hour).Add(-100*day)),
		state.SlotKey("stalled", now.Truncate(time.Hour).Add(-300*day)),
		state.ArchivedKey(state.CommitKey("r-a0")), state.ArchivedKey(state.DoneKey("r-a0")),
		"in:queue/a.jsonl", "in:queue/sub/h.jsonl",
	}, staged...)
	slices.Sort(wantGone)
	if !slices.Equal(gone, wantGone) {
		t.Errorf("deleted:\n%s\nwant:\n%s", strings.Join(gone, "\n"), strings.Join(wantGone, "\n"))
	}
	if want := []string{"in:queue-archive/a.jsonl", "in:queue-archive/sub/h.jsonl"}; !slices.Equal(came, want) {
		t.Errorf("created %v, want %v", came, want)
	}
	for _, name := range []string{"a.jsonl", "sub/h.jsonl"} {
		if after["in:queue-archive/"+name] != before["in:queue/"+name] {
			t.Errorf("archived %s holds %q, want %q", name, after["in:queue-archive/"+name], before["in:queue/"+name])
		}
	}
	if len(staged) < 4 {
		t.Errorf("the deleted staging holds %d objects, want parts and markers of two runs", len(staged))
	}

	// The report counts what went, and what was old but kept.
	for _, c := range []struct {
		name                 string
		k                    GCKind
		count, objects, kept int
		firstKey             string
	}{
		{"run records", rep.RunRecords, 5, 5, 6, state.RunKey("backfill.month=2020-01", "r-b1")},
		{"slots", rep.ScheduleSlots, 3, 3, 3, state.SlotKey("nightly", now.Truncate(time.Hour).Add(-200*day))},
		{"staging", rep.Staging, 2, len(staged), 4, state.RunStagingPrefix("r-leftover")},
		{"archive", rep.Archive, 1, 2, 0, state.ArchivedKey(state.CommitKey("r-a0"))},
		{"queue", rep.Queue, 2, 2, 4, "queue/a.jsonl"},
	} {
		if c.k.Count != c.count || c.k.Objects != c.objects || c.k.Kept != c.kept || len(c.k.Keys) != c.count || c.k.Keys[0] != c.firstKey || c.k.Error != "" {
			t.Errorf("%s: %+v; want %d deleted (%d objects), %d kept, first %s", c.name, c.k, c.count, c.objects, c.kept, c.firstKey)
		}
	}
	if !slices.Equal(rep.Queue.Conflicts, []string{"queue/g.jsonl"}) || rep.Queue.Action != QueueArchive {
		t.Errorf("queue: conflicts %v, action %q", rep.Queue.Conflicts, rep.Queue.Action)
	}
	// The dry run reported the same plan.
	for i, k := range dry.Kinds() {
		if real := rep.Kinds()[i]; !reflect.DeepEqual(*k.GCKind, *real.GCKind) {
			t.Errorf("%s: dry run %+v, run %+v", k.Name, *k.GCKind, *real.GCKind)
		}
	}
	if !dry.DryRun || rep.DryRun {
		t.Errorf("dry_run %v and %v", dry.DryRun, rep.DryRun)
	}

	// What stays still works: the ledger skips every consumed file, the
	// history keeps each job's newest run, the scheduler's state loads.
	pub := w.publisher(t, "", 0)
	consumed, err := pub.Consumed(ctx, jobs.JobQueue)
	if err != nil || len(consumed) != 6 {
		t.Errorf("ledger after gc: %d entries, %v", len(consumed), err)
	}
	recs, err := runlog.New(store.NewFileBucket(w.out)).Recent(ctx, 0, nil)
	if err != nil || len(recs) != 7 {
		t.Errorf("history after gc: %d records, %v", len(recs), err)
	}
	if st, err := scheduler.NewStoreLedger(store.NewFileBucket(w.out)).Load(ctx, "stalled"); err != nil || len(st.Settled) != 1 {
		t.Errorf("stalled job after gc: %+v, %v", st, err)
	}

	// A second gc finds nothing to do.
	again, err := w.app(QueueArchive).GC(ctx, GCRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range again.Kinds() {
		if k.Count != 0 || k.Objects != 0 {
			t.Errorf("second gc: %s %+v", k.Name, *k.GCKind)
		}
	}
	if gone, came := diff(after, w.state(t)); gone != nil || came != nil {
		t.Errorf("second gc changed the stores: gone %v, came %v", gone, came)
	}
}

// With queue_action delete, the consumed and checkpointed queue files
// are deleted (the name taken in the archive does not matter) and nothing
// is archived.
func TestGCQueueDelete(t *testing.T) {
	w := newGCWorld(t, time.Now().UTC())
	before := w.state(t)
	rep, err := w.app(QueueDelete).GC(t.Context(), GCRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var gone []string
	g, came := diff(before, w.state(t))
	for _, k := range g {
		if strings.HasPrefix(k, "in:") {
			gone = append(gone, k)
		}
	}
	if want := []string{"in:queue/a.jsonl", "in:queue/g.jsonl", "in:queue/sub/h.jsonl"}; !slices.Equal(gone, want) || came != nil {
		t.Errorf("deleted %v, created %v; want %v deleted", gone, came, want)
	}
	if rep.Queue.Count != 3 || rep.Queue.Kept != 3 || rep.Queue.Action != QueueDelete || rep.Queue.To != "" {
		t.Errorf("queue report %+v", rep.Queue)
	}
}

// killBucket is a store that "kills" the gc at its nth change (a delete or
// a copy): the context is cancelled and the change fails, as if the
// process died just before it.
type killBucket struct {
	store.Bucket
	changes *atomic.Int64
	at      int64
	kill    context.CancelFunc
}

func (b killBucket) change() error {
	if b.changes.Add(1) == b.at {
		b.kill()
		return context.Canceled
	}
	return nil
}

func (b killBucket) Delete(ctx context.Context, key string) error {
	if err := b.change(); err != nil {
		return err
	}
	return b.Bucket.Delete(ctx, key)
}

func (b killBucket) Copy(ctx context.Context, src, dst string, opts store.WriteOptions) error {
	if err := b.change(); err != nil {
		return err
	}
	return b.Bucket.Copy(ctx, src, dst, opts)
}

// A gc killed before any of its changes leaves a state that the next gc
// takes to the same end as one gc uninterrupted.
func TestGCKilledAnywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the state once per change of a gc")
	}
	now := time.Now().UTC()
	run := func(t *testing.T, at int64) (map[string]string, int64) {
		w := newGCWorld(t, now)
		a := w.app(QueueArchive)
		var changes atomic.Int64
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		wrap := func(dir string) store.Bucket {
			return killBucket{Bucket: store.NewFileBucket(dir), changes: &changes, at: at, kill: cancel}
		}
		_, err := a.gc(ctx, wrap(w.out), wrap(w.in), GCRequest{})
		if at == 0 {
			if err != nil {
				t.Fatal(err)
			}
			return w.state(t), changes.Load()
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("killed at change %d: %v", at, err)
		}
		if _, err := w.app(QueueArchive).GC(t.Context(), GCRequest{}); err != nil {
			t.Fatalf("gc after a kill at change %d: %v", at, err)
		}
		return w.state(t), changes.Load()
	}
	want, total := run(t, 0)
	if total < 15 {
		t.Fatalf("a gc made %d changes; the state is too small to test kills", total)
	}
	for at := int64(1); at <= total; at++ {
		got, _ := run(t, at)
		if gone, came := diff(want, got); gone != nil || came != nil {
			t.Errorf("killed at change %d of %d, then gc again: %v missing, %v more than an uninterrupted gc", at, total, gone, came)
		}
	}
}

// The retention section is checked like every other: each error names
// its key; the environment sets it.
func TestRetentionConfig(t *testing.T) {
	for _, tt := range []struct {
		set  func(*RetentionConfig)
		want string
	}{
		{func(r *RetentionConfig) { r.RunRecordsDays = -1 }, "retention.run_records_days"},
		{func(r *RetentionConfig) { r.ScheduleDays = -1 }, "retention.schedule_days"},
		{func(r *RetentionConfig) { r.StagingDays = -1 }, "retention.staging_days"},
		{func(r *RetentionConfig) { r.ArchiveDays = -1 }, "retention.archive_days"},
		{func(r *RetentionConfig) { r.QueueDays = -1 }, "retention.queue_days"},
		{func(r *RetentionConfig) { r.QueueAction = "move" }, "retention.queue_action"},
		{func(r *RetentionConfig) { r.QueueArchiveDir = "" }, "retention.queue_archive_dir"},
		{func(r *RetentionConfig) { r.QueueArchiveDir = "../x" }, "retention.queue_archive_dir"},
		{func(r *RetentionConfig) { r.QueueArchiveDir = "/abs" }, "retention.queue_archive_dir"},
		{func(r *RetentionConfig) { r.QueueArchiveDir = "queue/old" }, "retention.queue_archive_dir"},
		{func(r *RetentionConfig) { r.QueueArchiveDir = "queue/" }, "retention.queue_archive_dir"},
		{func(r *RetentionConfig) { r.QueueArchiveDir = "dumps/x" }, "retention.queue_archive_dir"},
	} {
		c := Default()
		tt.set(&c.Retention)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate() = %v, want an error naming %s", err, tt.want)
		}
	}
	ok := Default()
	ok.Retention.QueueArchiveDir, ok.Retention.QueueAction = "archive/queue/", QueueDelete
	if err := ok.Validate(); err != nil {
		t.Errorf("a nested archive folder: %v", err)
	}
	cfg, err := Load("", mapEnv(map[string]string{"SCORER_RETENTION_QUEUE_DAYS": "14", "SCORER_RETENTION_QUEUE_ACTION": "delete"}))
	if err != nil || cfg.Retention.QueueDays != 14 || cfg.Retention.QueueAction != QueueDelete {
		t.Errorf("from the environment: %+v, %v", cfg.Retention, err)
	}
}

// rewriteBucket rewrites a queued file when gc copies it to the archive:
// before the copy or after it, as an upload racing the gc would.
type rewriteBucket struct {
	store.Bucket
	t     *testing.T
	path  string // the file rewritten
	key   string // its key
	after bool
}

func (b rewriteBucket) Copy(ctx context.Context, src, dst string, opts store.WriteOptions) error {
	rewrite := func() {
		if src == b.key {
			if err := os.WriteFile(b.path, []byte(`{"request_id":"new"}`), 0o644); err != nil {
				b.t.Fatal(err)
			}
		}
	}
	if !b.after {
		rewrite()
	}
	err := b.Bucket.Copy(ctx, src, dst, opts)
	if b.after {
		rewrite()
	}
	return err
}

// A queued file rewritten while gc moves it is new work: it stays, with
// its new bytes.
func TestGCQueueFileRewrittenMeanwhile(t *testing.T) {
	for _, after := range []bool{false, true} {
		w := newGCWorld(t, time.Now().UTC())
		in := rewriteBucket{Bucket: store.NewFileBucket(w.in), t: t, path: filepath.Join(w.in, "queue", "a.jsonl"), key: "queue/a.jsonl", after: after}
		rep, err := w.app(QueueArchive).gc(t.Context(), store.NewFileBucket(w.out), in, GCRequest{})
		if err != nil {
			t.Fatal(err)
		}
		got := w.state(t)
		if got["in:queue/a.jsonl"] != `{"request_id":"new"}` || rep.Queue.Count != 1 || rep.Queue.Kept != 5 {
			t.Errorf("rewritten after the copy %v: queue/a.jsonl holds %q; report %+v", after, got["in:queue/a.jsonl"], rep.Queue)
		}
		if _, archived := got["in:queue-archive/a.jsonl"]; archived != after {
			t.Errorf("rewritten after the copy %v: archived %v", after, archived)
		}
	}
}
