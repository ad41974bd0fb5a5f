package jobs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/writers/table"
)

// TestQueueCheckpointsAndRetention runs the queue a dozen times, a new file
// of requests each time, with a checkpoint due every 3 commits: every
// request is scored exactly once, the commit log keeps only the commits
// since the last checkpoint, and once retention has taken files out of the
// queue folder the next checkpoint forgets them, so the ledger stays the
// size of the queue, not of its history.
func TestQueueCheckpointsAndRetention(t *testing.T) {
	ctx := context.Background()
	bu := loadDemoBundle(t)
	in, out := t.TempDir(), t.TempDir()
	src, err := os.ReadFile(filepath.Join(demoStoreDir, "queue", "requests-2020-09-02T00.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSpace(string(src)), "\n")[:20]
	if err := os.MkdirAll(filepath.Join(in, "queue"), 0o755); err != nil {
		t.Fatal(err)
	}
	// File i holds 20 requests with ids of its own.
	put := func(i int) {
		var b strings.Builder
		for _, l := range lines {
			b.WriteString(strings.Replace(l, `"request_id":"requests-2020-09-02T00-`, fmt.Sprintf(`"request_id":"f%02d-`, i), 1))
		}
		if err := os.WriteFile(filepath.Join(in, "queue", fmt.Sprintf("r%02d.jsonl", i)), []byte(strings.TrimSpace(b.String())+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The clock runs an hour ahead of the store's, so every commit is old
	// enough for a checkpoint (table.CheckpointLag).
	later := func() time.Time { return time.Now().Add(time.Hour) }
	run := func() *Summary {
		t.Helper()
		sum, err := Score(ctx, ScoreJob{
			Job: JobQueue, Input: store.NewFileBucket(in), Output: store.NewFileBucket(out), Bundle: bu,
			Dir: "queue", Table: queueTable, Partition: queueDate, Mode: table.Append,
			IDColumns: []string{"request_id"}, SkipConsumed: true, CheckpointEvery: 3,
			BatchSize: 4096, ReadConcurrency: 2, LeaseTTL: time.Minute, Now: later,
		})
		if err != nil {
			t.Fatalf("queue run: %v", err)
		}
		return sum
	}
	var scored int64
	for i := range 10 {
		put(i)
		sum := run()
		if len(sum.InputFiles) != 1 || sum.InputFiles[0] != fmt.Sprintf("queue/r%02d.jsonl", i) {
			t.Fatalf("run %d read %v, want only the new file", i, sum.InputFiles)
		}
		scored += sum.RowsRead
	}
	if scored != 200 {
		t.Errorf("scored %d requests, want 200 (20 per file, each once)", scored)
	}
	ob := store.NewFileBucket(out)
	if n := countKeys(t, ob, state.CommitsPrefix); n > 2*3 {
		t.Errorf("the commit log holds %d objects after 10 runs, want the commits since the last checkpoint (< 3, two objects each)", n)
	}
	if n := countKeys(t, ob, state.ArchivedCommitsPrefix); n != 2*9 {
		t.Errorf("the archive holds %d objects, want 18 (the 9 runs three checkpoints cover)", n)
	}

	// Retention takes the five oldest files out of the queue folder.
	for i := range 5 {
		if err := os.Remove(filepath.Join(in, "queue", fmt.Sprintf("r%02d.jsonl", i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 10; i < 12; i++ {
		put(i)
		if sum := run(); sum.RowsRead != 20 {
			t.Fatalf("run %d scored %d rows, want 20", i, sum.RowsRead)
		}
	}
	cp := latestCheckpoint(t, ob)
	var keys []string
	for k := range cp.Ledger[JobQueue] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var want []string
	for i := 5; i < 12; i++ {
		want = append(want, fmt.Sprintf("queue/r%02d.jsonl", i))
	}
	if !slices.Equal(keys, want) {
		t.Errorf("checkpoint %d's queue ledger: %v\nwant the files still queued: %v", cp.Seq, keys, want)
	}
	if cp.Commits != 12 {
		t.Errorf("checkpoint %d covers %d commits, want 12", cp.Seq, cp.Commits)
	}
}

func countKeys(t *testing.T, b store.Bucket, prefix string) int {
	t.Helper()
	objs, err := b.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return len(objs)
}

func latestCheckpoint(t *testing.T, b store.Bucket) *table.CheckpointRecord {
	t.Helper()
	ctx := context.Background()
	objs, err := b.List(ctx, state.CheckpointsPrefix)
	if err != nil || len(objs) == 0 {
		t.Fatalf("no checkpoint: %v", err)
	}
	data, err := state.Read(ctx, b, objs[len(objs)-1].Key)
	if err != nil {
		t.Fatal(err)
	}
	var cp table.CheckpointRecord
	if err := state.Decode(data, &cp); err != nil {
		t.Fatal(err)
	}
	return &cp
}
