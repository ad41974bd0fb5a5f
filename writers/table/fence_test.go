package table

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
)

// A job-scoped Recover must not touch another job's run in progress.
func TestRecoverJobLeavesOtherJobsAlone(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := store.NewFileBucket(dir)
	p := newPublisher(t, b, nil)
	run0, _ := baseScenarios()
	other := run0
	other.runID, other.job = "other1", "backfill"
	otherRun, err := other.start(ctx, p) // staged, not committed: in progress
	if err != nil {
		t.Fatal(err)
	}
	crashed := run0
	crashed.runID, crashed.job = "crashed1", "queue"
	if _, err := crashed.start(ctx, p); err != nil { // staged, then "died"
		t.Fatal(err)
	}

	rep, err := p.RecoverJob(ctx, "queue")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rep.StagingDeleted, ",") != "crashed1" {
		t.Fatalf("RecoverJob(queue) deleted the staging of %v, want only crashed1", rep.StagingDeleted)
	}
	// The backfill run goes on and commits: its staging was left intact.
	if _, err := otherRun.Commit(ctx); err != nil {
		t.Fatalf("commit of the other job's run after RecoverJob: %v", err)
	}
	checkInvariants(t, dir)
}

func TestFenceDecidesTheCommit(t *testing.T) {
	ctx := context.Background()
	run0, _ := baseScenarios()

	t.Run("refused fence commits nothing", func(t *testing.T) {
		dir := t.TempDir()
		p := newPublisher(t, store.NewFileBucket(dir), nil)
		errLost := errors.New("lease lost")
		sc := run0
		run, err := sc.start(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		run.spec.Fence = func(context.Context, []byte) error { return errLost }
		if _, err := run.Commit(ctx); !errors.Is(err, errLost) {
			t.Fatalf("commit with a refused fence: %v", err)
		}
		if err := run.Abort(ctx); err != nil {
			t.Fatal(err)
		}
		snap := snapshot(t, dir)
		for k := range snap {
			if strings.HasPrefix(k, "ad_scores/") || strings.HasPrefix(k, "_scorer/commits/") {
				t.Errorf("published after a refused fence: %s", k)
			}
		}
		// The staging stays (the fence might have been applied) until a
		// Recover finds no commit record for it.
		if _, err := p.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		for k := range snapshot(t, dir) {
			if strings.HasPrefix(k, "_scorer/staging/") {
				t.Errorf("staging left after Recover: %s", k)
			}
		}
	})

	t.Run("fenced record adopted after a crash", func(t *testing.T) {
		dir := t.TempDir()
		p := newPublisher(t, store.NewFileBucket(dir), nil)
		var fenced []byte
		errCrashed := errors.New("crashed after fencing")
		run, err := run0.start(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		run.spec.Fence = func(_ context.Context, rec []byte) error { fenced = rec; return errCrashed }
		if _, err := run.Commit(ctx); !errors.Is(err, errCrashed) {
			t.Fatal(err)
		}
		_ = run.Abort(ctx)
		// The next lease holder writes the fenced record where it belongs
		// (as internal/jobs does, twice for good measure) and recovers: the
		// run is published as a clean one is.
		for range 2 {
			if err := store.CreateOrSame(ctx, store.NewFileBucket(dir), state.CommitKey(run0.runID), fenced); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := p.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		checkInvariants(t, dir)

		clean := t.TempDir()
		if err := run0.run(ctx, newPublisher(t, store.NewFileBucket(clean), nil)); err != nil {
			t.Fatal(err)
		}
		if got, want := decodedTables(t, dir), decodedTables(t, clean); got != want {
			t.Fatalf("adopted run's tables differ from a clean run:\n%s\nwant\n%s", got, want)
		}
		// A different record under the same run id is a conflict.
		other := []byte(strings.Replace(string(fenced), `"job": "daily"`, `"job": "other"`, 1))
		if err := store.CreateOrSame(ctx, store.NewFileBucket(dir), state.CommitKey(run0.runID), other); !errors.Is(err, store.ErrPrecondition) {
			t.Fatalf("writing a different record under the run's key: %v, want ErrPrecondition", err)
		}
	})
}

// A committed run whose process stalled in the middle of its roll forward
// wakes up after a newer run of its job finished it and published over it:
// carrying on must change nothing.
func TestStalledRollForwardCannotGoBack(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := clock
	crash := false
	opts := testOptions(func(pt string) error {
		if crash && pt == PointAfterPartCopied {
			return errCrash
		}
		return nil
	})
	opts.Now = func() time.Time { return now }
	p, err := NewPublisher(store.NewFileBucket(dir), opts)
	if err != nil {
		t.Fatal(err)
	}
	run0, run1 := baseScenarios()
	crash = true
	runA, err := run0.start(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	recA, err := runA.Commit(ctx)
	if recA == nil || !errors.Is(err, errCrash) {
		t.Fatalf("commit of A: %v, %v; want a commit stopped by the crash", recA, err)
	}
	crash = false
	now = now.Add(time.Minute)
	if err := run1.run(ctx, p); err != nil { // B finishes A, then publishes itself
		t.Fatal(err)
	}
	want := snapshot(t, dir)

	if err := p.rollForward(ctx, recA); err != nil {
		t.Fatalf("A carrying on: %v", err)
	}
	if d := diffSnapshots(want, snapshot(t, dir)); d != "" {
		t.Fatalf("A's late roll forward changed the store:\n%s", d)
	}
	// Even without its done marker (B crashed just before writing it), A
	// must not put its manifest back over B's.
	if err := os.Remove(filepath.Join(dir, filepath.FromSlash(state.DoneKey(recA.RunID)))); err != nil {
		t.Fatal(err)
	}
	if err := p.rollForward(ctx, recA); err != nil {
		t.Fatal(err)
	}
	if d := diffSnapshots(withPrefix(want, "ad_scores/", "request_scores/", "ad_scores_rejects/"),
		withPrefix(snapshot(t, dir), "ad_scores/", "request_scores/", "ad_scores_rejects/")); d != "" {
		t.Fatalf("A's replay went back over B's tables:\n%s", d)
	}
}

func TestGuardStopsRollForward(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	errLost := errors.New("lease lost")
	opts := testOptions(nil)
	opts.Guard = func(context.Context) error { return errLost }
	p, err := NewPublisher(store.NewFileBucket(dir), opts)
	if err != nil {
		t.Fatal(err)
	}
	run0, _ := baseScenarios()
	if err := run0.run(ctx, p); !errors.Is(err, errLost) {
		t.Fatalf("commit under a failing guard: %v, want the guard's error", err)
	}
	for k := range snapshot(t, dir) {
		if !strings.HasPrefix(k, "_scorer/") {
			t.Errorf("a guarded roll forward changed a table: %s", k)
		}
	}
}
