package table

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
)

// readCounter counts the objects read whole under a prefix.
type readCounter struct {
	store.Bucket
	prefix string
	n      atomic.Int64
}

func (c *readCounter) NewReader(ctx context.Context, key string, gen int64) (io.ReadCloser, error) {
	if strings.HasPrefix(key, c.prefix) {
		c.n.Add(1)
	}
	return c.Bucket.NewReader(ctx, key, gen)
}

// laterOptions are testOptions with a clock an hour ahead of the store's,
// so that every commit is older than CheckpointLag.
func laterOptions(fp func(string) error) Options {
	o := testOptions(fp)
	o.Now = func() time.Time { return time.Now().Add(time.Hour) }
	return o
}

// history commits n runs alternating two jobs: the queue job consumes a new
// file each run and every fifth run a new generation of an old one; the
// other job one file of its own. Run ids sort in commit order.
func history(ctx context.Context, t *testing.T, p *Publisher, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		sc := scenario{runID: fmt.Sprintf("run%04d", i), job: "queue", ads: genScores(1, i)}
		sc.inputs = []InputFile{{Key: fmt.Sprintf("queue/f%04d.jsonl", i), Generation: int64(100 + i), Rows: 1}}
		if i%5 == 4 { // a new generation of an earlier queue key
			sc.inputs = append(sc.inputs, InputFile{Key: fmt.Sprintf("queue/f%04d.jsonl", i-4), Generation: int64(1000 + i)})
		}
		if i%2 == 1 {
			sc.job = "backfill.month=2020-09"
			sc.inputs = []InputFile{{Key: fmt.Sprintf("dumps/2020-09/d%04d.csv", i), Generation: 7}}
		}
		if err := sc.run(ctx, p); err != nil {
			t.Fatalf("run %s: %v", sc.runID, err)
		}
	}
}

// referenceLedger replays every commit record (the log and the archive) in
// commit order: the ledger without checkpoints.
func referenceLedger(ctx context.Context, t *testing.T, p *Publisher) map[string]map[string]InputFile {
	t.Helper()
	commits, err := p.Commits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]InputFile{}
	for _, c := range commits {
		rec := c.CommitRecord
		applyInputs(out, &rec)
	}
	return out
}

func checkLedger(ctx context.Context, t *testing.T, p *Publisher, want map[string]map[string]InputFile) {
	t.Helper()
	for _, job := range []string{"queue", "backfill.month=2020-09", "nobody"} {
		got, err := p.Consumed(ctx, job)
		if err != nil {
			t.Fatalf("Consumed(%s): %v", job, err)
		}
		w := want[job]
		if w == nil {
			w = map[string]InputFile{}
		}
		if !maps.Equal(got, w) {
			t.Errorf("Consumed(%s): %d entries, want %d\n got  %v\n want %v", job, len(got), len(w), got, w)
		}
	}
}

// logKeys are the objects left in _scorer/commits/.
func logKeys(ctx context.Context, t *testing.T, b store.Bucket) []string {
	t.Helper()
	objs, err := b.List(ctx, state.CommitsPrefix)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, strings.TrimPrefix(o.Key, state.CommitsPrefix))
	}
	return keys
}

// TestCheckpointBoundsLedgerReads: after a checkpoint the ledger is the
// same, it reads the checkpoint and the records since (not every record),
// the covered records are in the archive, and Commits and Done still see
// every run.
func TestCheckpointBoundsLedgerReads(t *testing.T) {
	ctx := context.Background()
	fb := store.NewFileBucket(t.TempDir())
	counted := &readCounter{Bucket: fb, prefix: state.Dir + "/"}
	p, err := NewPublisher(counted, laterOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	history(ctx, t, p, 0, 23)
	want := referenceLedger(ctx, t, p)
	// 12 queue runs (two of them consume a new generation of an earlier
	// key too); 11 backfills.
	if want["queue"]["queue/f0010.jsonl"].Generation != 1014 ||
		len(want["queue"]) != 12 || len(want["backfill.month=2020-09"]) != 11 {
		t.Fatalf("reference ledger has %d and %d entries, want 12 (f0010 at generation 1014) and 11", len(want["queue"]), len(want["backfill.month=2020-09"]))
	}

	counted.n.Store(0)
	checkLedger(ctx, t, p, want)
	before := counted.n.Load() / 3 // three Consumed calls
	if before < 23 {
		t.Fatalf("without a checkpoint Consumed read %d state objects, want every record (23)", before)
	}

	// Not due yet with every = 30; due with 10: covers all 23 (all done).
	if rep, err := p.Checkpoint(ctx, 30, nil); err != nil || rep.Written != 0 || rep.Archived != 0 {
		t.Fatalf("Checkpoint(30) = %+v, %v; want nothing done", rep, err)
	}
	rep, err := p.Checkpoint(ctx, 10, nil)
	if err != nil || rep.Written != 1 || rep.Archived != 23 {
		t.Fatalf("Checkpoint(10) = %+v, %v; want checkpoint 1 and 23 archived", rep, err)
	}
	if keys := logKeys(ctx, t, fb); len(keys) != 0 {
		t.Errorf("the log still holds %v", keys)
	}
	history(ctx, t, p, 23, 4)
	want = referenceLedger(ctx, t, p)

	counted.n.Store(0)
	checkLedger(ctx, t, p, want)
	after := counted.n.Load() / 3
	if after != 1+4 { // the checkpoint, the four records since
		t.Errorf("with a checkpoint Consumed read %d state objects, want 5 (the checkpoint and 4 records)", after)
	}
	commits, err := p.Commits(ctx)
	if err != nil || len(commits) != 27 {
		t.Fatalf("Commits: %d, %v; want all 27", len(commits), err)
	}
	for _, c := range commits {
		if !c.Done {
			t.Errorf("Commits: %s not done", c.RunID)
		}
	}
	for _, id := range []string{"run0000", "run0026"} {
		if done, err := p.Done(ctx, id); err != nil || !done {
			t.Errorf("Done(%s) = %v, %v", id, done, err)
		}
	}
	if done, err := p.Done(ctx, "nope"); err != nil || done {
		t.Errorf("Done(nope) = %v, %v", done, err)
	}

	// The next checkpoints: each covers the commits since; two are kept.
	history(ctx, t, p, 27, 3)
	for i := range 3 {
		history(ctx, t, p, 30+2*i, 2)
		if _, err := p.Checkpoint(ctx, 2, nil); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := fb.List(ctx, state.CheckpointsPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[1].Key != state.CheckpointKey(4) {
		t.Errorf("checkpoints kept: %v, want 3 and 4", objs)
	}
	checkLedger(ctx, t, p, referenceLedger(ctx, t, p))
}

// A checkpoint covers a prefix of done commits only: a pending commit (and
// everything after it) stays in the log, and so does a commit stored less
// than CheckpointLag ago.
func TestCheckpointStopsAtPendingAndRecent(t *testing.T) {
	ctx := context.Background()
	fb := store.NewFileBucket(t.TempDir())
	p, err := NewPublisher(fb, laterOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	history(ctx, t, p, 0, 5)
	crash, err := NewPublisher(fb, laterOptions(func(pt string) error {
		if pt == PointAfterCommitRecord {
			return errCrash
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	pending := scenario{runID: "run0005", job: "queue", ads: genScores(1, 5), inputs: []InputFile{{Key: "queue/pending.jsonl", Generation: 1}}}
	if err := pending.run(ctx, crash); !errors.Is(err, errCrash) {
		t.Fatalf("crash after commit record: %v", err)
	}
	// The pending run is the newest commit here (a Commit rolls forward the
	// pending runs before it, so done runs after a pending one take
	// another job committing meanwhile); what matters is that the prefix
	// stops at it.
	want := referenceLedger(ctx, t, p)
	if rep, err := p.Checkpoint(ctx, 1, nil); err != nil || rep.Archived != 5 {
		t.Fatalf("Checkpoint = %+v, %v; want the 5 done commits before the pending one archived", rep, err)
	}
	if keys := logKeys(ctx, t, fb); len(keys) != 1 || keys[0] != "run0005.json" {
		t.Errorf("log after checkpoint: %v, want the pending record alone", keys)
	}
	checkLedger(ctx, t, p, want) // the pending run's input counts (it is committed)
	pend, err := p.Pending(ctx)
	if err != nil || len(pend) != 1 || pend[0].RunID != "run0005" {
		t.Fatalf("Pending = %v, %v", pend, err)
	}
	if _, err := p.Recover(ctx); err != nil {
		t.Fatal(err)
	}

	// Commits stored just now are not covered by a publisher whose clock
	// is the store's.
	now, err := NewPublisher(fb, testOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	now.opts.Now = time.Now
	if rep, err := now.Checkpoint(ctx, 1, nil); err != nil || rep.Written != 0 {
		t.Errorf("Checkpoint of commits stored just now = %+v, %v; want none", rep, err)
	}
	if rep, err := p.Checkpoint(ctx, 1, nil); err != nil || rep.Written != 2 || rep.Archived != 1 {
		t.Errorf("Checkpoint after the roll forward = %+v, %v; want checkpoint 2 covering run0005", rep, err)
	}
	checkLedger(ctx, t, p, want)
}

// TestCheckpointCrashAtEveryPoint stops a checkpoint at every occurrence of
// every point: the ledger read meanwhile is right, no done run looks
// pending, and the next Checkpoint finishes the job.
func TestCheckpointCrashAtEveryPoint(t *testing.T) {
	ctx := context.Background()
	for _, point := range []string{PointAfterCheckpoint, PointAfterArchiveCopy, PointAfterArchiveDelete} {
		for nth := 1; ; nth++ {
			fb := store.NewFileBucket(t.TempDir())
			p, err := NewPublisher(fb, laterOptions(nil))
			if err != nil {
				t.Fatal(err)
			}
			history(ctx, t, p, 0, 4)
			want := referenceLedger(ctx, t, p)
			hits := 0
			crash, err := NewPublisher(fb, laterOptions(func(pt string) error {
				if pt == point {
					if hits++; hits == nth {
						return errCrash
					}
				}
				return nil
			}))
			if err != nil {
				t.Fatal(err)
			}
			_, err = crash.Checkpoint(ctx, 1, nil)
			if err == nil {
				break // fewer than nth occurrences: every one was tried
			}
			if !errors.Is(err, errCrash) {
				t.Fatalf("%s #%d: %v", point, nth, err)
			}
			name := fmt.Sprintf("%s#%d", point, nth)
			checkLedger(ctx, t, p, want)
			if pend, err := p.Pending(ctx); err != nil || len(pend) != 0 {
				t.Errorf("%s: Pending = %v, %v; a done run looks pending", name, pend, err)
			}
			if commits, err := p.Commits(ctx); err != nil || len(commits) != 4 {
				t.Errorf("%s: Commits = %d, %v; want 4", name, len(commits), err)
			}
			if _, err := p.Checkpoint(ctx, 1, nil); err != nil {
				t.Fatalf("%s: the next Checkpoint: %v", name, err)
			}
			if keys := logKeys(ctx, t, fb); len(keys) != 0 {
				t.Errorf("%s: the next Checkpoint left %v in the log", name, keys)
			}
			checkLedger(ctx, t, p, want)
		}
	}
}

// Concurrent Checkpoints (runs of different jobs) agree: one writes, the
// others archive what it covers; the ledger is whole.
func TestCheckpointConcurrent(t *testing.T) {
	ctx := context.Background()
	fb := store.NewFileBucket(t.TempDir())
	p, err := NewPublisher(fb, laterOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	history(ctx, t, p, 0, 12)
	want := referenceLedger(ctx, t, p)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { _, errs[i] = p.Checkpoint(ctx, 1, nil) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Errorf("Checkpoint: %v", err)
		}
	}
	if _, err := p.Checkpoint(ctx, 1, nil); err != nil {
		t.Fatal(err)
	}
	if keys := logKeys(ctx, t, fb); len(keys) != 0 {
		t.Errorf("log after concurrent checkpoints: %v", keys)
	}
	checkLedger(ctx, t, p, want)
}

// drop leaves inputs out of the next checkpoint (retention archived them).
func TestCheckpointDrop(t *testing.T) {
	ctx := context.Background()
	fb := store.NewFileBucket(t.TempDir())
	p, err := NewPublisher(fb, laterOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	history(ctx, t, p, 0, 6)
	want := referenceLedger(ctx, t, p)
	drop := func(job string, in InputFile) bool { return job == "queue" && in.Key == "queue/f0000.jsonl" }
	if _, err := p.Checkpoint(ctx, 1, drop); err != nil {
		t.Fatal(err)
	}
	delete(want["queue"], "queue/f0000.jsonl")
	checkLedger(ctx, t, p, want)
}
