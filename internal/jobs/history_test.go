package jobs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/readers/store/storetest"
	"github.com/adtech/scorer/writers/table"
)

// gcsBucket is a bucket on an in-process GCS emulator, under the prefix
// "scorer/", with the emulator (to seed it fast).
func gcsBucket(t *testing.T) (store.Bucket, *fakestorage.Server) {
	t.Helper()
	return storetest.FakeGCS(t, "analytics", "scorer/")
}

// simulatedHistory writes, straight into the stores, the state that years
// of queue runs leave: commits queue runs (filesPer queued files each, the
// files still in the queue folder), all done. With checkpointed, the way
// checkpoints leave it: all but the newest recent commits covered by a
// checkpoint and archived; without, every record in the log.
func simulatedHistory(t *testing.T, in string, out store.Bucket, srv *fakestorage.Server, commits, filesPer, recent int, checkpointed bool) {
	t.Helper()
	ctx := context.Background()
	if err := os.MkdirAll(filepath.Join(in, "queue"), 0o755); err != nil {
		t.Fatal(err)
	}
	records := make([]table.CommitRecord, commits)
	for c := range commits {
		rec := table.CommitRecord{
			FormatVersion: table.FormatVersion, RunID: fmt.Sprintf("20200101T000000Z-%08d", c), Job: JobQueue,
			Model: table.Model{Name: "ctr-demo", Version: "old"}, CommittedAt: time.Now().UTC(),
		}
		for f := range filesPer {
			key := fmt.Sprintf("queue/old-%06d-%02d.jsonl", c, f)
			if err := os.WriteFile(filepath.Join(in, filepath.FromSlash(key)), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			rec.Inputs = append(rec.Inputs, table.InputFile{Key: key})
		}
		records[c] = rec
	}
	// The generations are the files': read them back.
	fb := store.NewFileBucket(in)
	objs, err := fb.List(ctx, "queue/")
	if err != nil {
		t.Fatal(err)
	}
	gens := map[string]int64{}
	for _, o := range objs {
		gens[o.Key] = o.Generation
	}
	for c := range records {
		for i := range records[c].Inputs {
			records[c].Inputs[i].Generation = gens[records[c].Inputs[i].Key]
		}
	}
	archived := 0
	if checkpointed {
		archived = commits - recent
	}
	// Seeded through the emulator's own API, not HTTP: thousands of
	// objects in a moment. Their store times are the seeding's.
	put := func(recs []table.CommitRecord, archive bool) {
		t.Helper()
		for _, rec := range recs {
			data, err := state.Encode(rec)
			if err != nil {
				t.Fatal(err)
			}
			commitKey, doneKey := state.CommitKey(rec.RunID), state.DoneKey(rec.RunID)
			if archive {
				commitKey, doneKey = state.ArchivedKey(commitKey), state.ArchivedKey(doneKey)
			}
			for key, content := range map[string][]byte{commitKey: data, doneKey: []byte(`{"run_id":"` + rec.RunID + `"}`)} {
				srv.CreateObject(fakestorage.Object{
					ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "analytics", Name: "scorer/" + key, ContentType: "application/json"},
					Content:     content,
				})
			}
		}
	}
	put(records[:archived], true)
	if checkpointed {
		// The checkpoint covers the archived commits: its position is after
		// them and before the recent ones, written next.
		cp := table.CheckpointRecord{
			FormatVersion: table.FormatVersion, Seq: 1, Commits: int64(archived),
			Through:   table.CommitPosition{StoredAt: time.Now().UTC(), RunID: records[archived-1].RunID},
			Ledger:    map[string]map[string]table.InputFile{JobQueue: {}},
			CreatedAt: time.Now().UTC(),
		}
		for _, rec := range records[:archived] {
			for _, in := range rec.Inputs {
				cp.Ledger[JobQueue][in.Key] = in
			}
		}
		data, err := state.EncodeCompact(cp)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := state.Put(ctx, out, state.CheckpointKey(1), data); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // store times after Through, whatever their resolution
	}
	put(records[archived:], false)
}

// TestHistoryBoundsQueueRunOps is the cost model's check: the store
// operations of one queue run on the output store do not grow with the
// project's history once the commit log is checkpointed. Simulated on the
// GCS emulator: 200 and 2,000 earlier queue runs (2,000 and 20,000 queued
// files, still in the queue folder), and 500 without checkpoints for
// comparison. Only the bytes of the checkpoint grow: with the ledger, the
// size of the queue folder (retention keeps that bounded).
func TestHistoryBoundsQueueRunOps(t *testing.T) {
	if testing.Short() || raceEnabled {
		// Thousands of objects through the emulator: minutes under the
		// race detector, which adds nothing to this single run's count.
		// make test runs it without -race.
		t.Skip("writes thousands of objects to the emulator; run without -race or -short")
	}
	bu := loadDemoBundle(t)
	src, err := os.ReadFile(filepath.Join(demoStoreDir, "queue", "requests-2020-09-02T00.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	newFile := strings.Join(strings.SplitAfter(string(src), "\n")[:20], "")
	measure := func(commits int, checkpointed bool) store.OpCounts {
		t.Helper()
		in := t.TempDir()
		out, srv := gcsBucket(t)
		simulatedHistory(t, in, out, srv, commits, 10, 50, checkpointed)
		if err := os.WriteFile(filepath.Join(in, "queue", "new.jsonl"), []byte(newFile), 0o644); err != nil {
			t.Fatal(err)
		}
		counted := store.Counted(out)
		sum, err := Score(context.Background(), ScoreJob{
			Job: JobQueue, Input: store.NewFileBucket(in), Output: counted, Bundle: bu,
			Dir: "queue", Table: queueTable, Partition: queueDate, Mode: table.Append,
			IDColumns: []string{"request_id"}, SkipConsumed: true, CheckpointEvery: 1000,
			BatchSize: 4096, ReadConcurrency: 2, LeaseTTL: time.Minute,
		})
		if err != nil {
			t.Fatalf("queue run after %d commits: %v", commits, err)
		}
		if len(sum.InputFiles) != 1 || sum.RowsRead != 20 {
			t.Fatalf("after %d commits the run read %v (%d rows), want only the new file", commits, sum.InputFiles, sum.RowsRead)
		}
		ops := counted.Counts()
		t.Logf("one queue run after %5d commits (checkpointed %v): %+v", commits, checkpointed, ops)
		return ops
	}
	small, large := measure(200, true), measure(2000, true)
	for _, c := range []struct {
		name         string
		small, large int64
	}{
		{"list", small.List, large.List},
		{"listed", small.Listed, large.Listed},
		{"stat", small.Stat, large.Stat},
		{"read", small.Read, large.Read},
		{"write", small.Write, large.Write},
		{"copy", small.Copy, large.Copy},
		{"delete", small.Delete, large.Delete},
	} {
		if c.small != c.large {
			t.Errorf("%s: %d operations after 200 commits, %d after 2,000: want the same", c.name, c.small, c.large)
		}
	}
	// Without checkpoints (500 commits: the emulator's memory backend is
	// quadratic in the objects of a bucket, so the comparison is smaller).
	old := measure(500, false)
	if old.Read < 500 {
		t.Errorf("without checkpoints the run read %d objects, want every commit record (500): is the comparison still measuring the old cost?", old.Read)
	}
	if large.Read > 100 {
		t.Errorf("with checkpoints the run read %d objects, want a bounded number (< 100)", large.Read)
	}
}
