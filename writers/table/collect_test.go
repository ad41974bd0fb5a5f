package table

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
)

// chtimes sets the object time of keys of a local store to t.
func chtimes(t *testing.T, dir string, at time.Time, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if err := os.Chtimes(filepath.Join(dir, filepath.FromSlash(k)), at, at); err != nil {
			t.Fatal(err)
		}
	}
}

// Checkpointed is the latest checkpoint's ledger of a job; OldArchive
// lists the archived commits archived before a time, record first, and
// DeleteArchived deletes them.
func TestCheckpointedAndArchive(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	p, err := NewPublisher(store.NewFileBucket(dir), laterOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	history(ctx, t, p, 0, 3)
	if got, err := p.Checkpointed(ctx, "queue"); err != nil || len(got) != 0 {
		t.Fatalf("Checkpointed before any checkpoint: %v, %v", got, err)
	}
	if rep, err := p.Checkpoint(ctx, 1, nil); err != nil || rep.Archived != 3 {
		t.Fatalf("checkpoint: %+v, %v", rep, err)
	}
	history(ctx, t, p, 3, 1) // consumes queue/f0003.jsonl, after the checkpoint
	got, err := p.Checkpointed(ctx, "queue")
	if err != nil {
		t.Fatal(err)
	}
	if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, []string{"queue/f0000.jsonl", "queue/f0002.jsonl"}) || got["queue/f0002.jsonl"].Generation != 102 {
		t.Errorf("Checkpointed(queue) = %v", got)
	}
	if got, err := p.Checkpointed(ctx, "nobody"); err != nil || len(got) != 0 {
		t.Errorf("Checkpointed(nobody) = %v, %v", got, err)
	}

	before := time.Now().Add(-time.Hour)
	if old, err := p.OldArchive(ctx, before); err != nil || len(old) != 0 {
		t.Fatalf("OldArchive of a fresh archive: %v, %v", old, err)
	}
	rec, done := state.ArchivedKey(state.CommitKey("run0001")), state.ArchivedKey(state.DoneKey("run0001"))
	chtimes(t, dir, before.Add(-time.Hour), rec, done)
	old, err := p.OldArchive(ctx, before)
	if err != nil || len(old) != 1 || old[0].RunID != "run0001" || !slices.Equal(old[0].Keys, []string{rec, done}) {
		t.Fatalf("OldArchive = %+v, %v", old, err)
	}
	if err := p.DeleteArchived(ctx, old[0]); err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteArchived(ctx, old[0]); err != nil {
		t.Errorf("deleting again: %v", err)
	}
	if commits, err := p.Commits(ctx); err != nil || len(commits) != 3 {
		t.Errorf("Commits after deleting one archived: %d, %v", len(commits), err)
	}
	if err := p.DeleteArchived(ctx, ArchivedCommit{RunID: "x", Keys: []string{state.CommitKey("run0003")}}); err == nil {
		t.Error("DeleteArchived deleted from the log")
	}
}

// OldStaging lists staging nothing wrote to since a time and no roll
// forward needs; CollectStaging checks again before deleting it.
func TestCollectStaging(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	b := store.NewFileBucket(dir)
	crash := func(point string) func(string) error {
		return func(p string) error {
			if p == point {
				return errCrash
			}
			return nil
		}
	}
	staged := func(id string) []string {
		if _, err := newPublisher(t, b, nil).Begin(ctx, RunSpec{RunID: id, Job: "j"}); err != nil {
			t.Fatal(err)
		}
		part := state.StagedKey(id, "t", "p=1", PartName(id, 0))
		if err := store.WriteAll(ctx, b, part, []byte("part"), store.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		return []string{state.RunMarkerKey(id), part}
	}
	before := time.Now().Add(-time.Hour)
	old := before.Add(-time.Hour)
	chtimes(t, dir, old, staged("stale")...)
	staged("fresh")
	chtimes(t, dir, old, staged("kept")...)
	// A committed run, not yet published.
	sc := scenario{runID: "pending", job: "j", ads: genScores(1, 1)}
	if err := sc.run(ctx, newPublisher(t, b, crash(PointAfterCommitRecord))); err == nil {
		t.Fatal("no crash")
	}
	objs, err := b.List(ctx, state.RunStagingPrefix("pending"))
	if err != nil || len(objs) == 0 {
		t.Fatalf("pending staging: %v, %v", objs, err)
	}
	for _, o := range objs {
		chtimes(t, dir, old, o.Key)
	}

	p := newPublisher(t, b, nil)
	runs, kept, err := p.OldStaging(ctx, before, func(id string) bool { return id == "kept" })
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].RunID != "stale" || runs[0].Objects != 2 || runs[0].Bytes == 0 || !runs[0].Newest.Equal(old) {
		t.Errorf("OldStaging = %+v", runs)
	}
	if !slices.Equal(kept, []string{"kept", "pending"}) {
		t.Errorf("kept %v", kept)
	}
	// Written to since the listing: left alone.
	chtimes(t, dir, time.Now(), state.RunMarkerKey("stale"))
	if n, err := p.CollectStaging(ctx, "stale", before); n != 0 || err != nil {
		t.Errorf("CollectStaging of staging written since: %d, %v", n, err)
	}
	chtimes(t, dir, old, state.RunMarkerKey("stale"))
	if n, err := p.CollectStaging(ctx, "stale", before); n != 2 || err != nil {
		t.Errorf("CollectStaging: %d, %v", n, err)
	}
	if left, err := b.List(ctx, state.RunStagingPrefix("stale")); err != nil || len(left) != 0 {
		t.Errorf("left %v, %v", left, err)
	}
	// Committed and not done: left alone, whatever the caller says.
	if n, err := p.CollectStaging(ctx, "pending", before); n != 0 || err != nil {
		t.Errorf("CollectStaging of a pending run: %d, %v", n, err)
	}
}
