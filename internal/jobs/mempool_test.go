package jobs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/adtech/scorer/internal/mempool"
	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/writers/table"
)

// Record batches whose buffers are reused after their last Release (the
// default allocator of a scoring run) publish exactly what fresh buffers
// publish: scores, labels, challengers' scores and rejected rows. The
// pooled allocator poisons every freed buffer, so a read of a batch after
// its release (a value kept without a copy) would show here as a
// difference. Small batches, so that buffers go round many times; a
// challenger with its own feature pipeline; bad rows; and the queue's JSON
// Lines with duplicate detection.
func TestPooledRecordsPublishWhatFreshOnesDo(t *testing.T) {
	champion := loadDemoBundle(t)
	challengers := []*bundle.Bundle{perturbedBundle(t, champion, "noisy", 3), noSiteBundle(t, champion, "ctr-nosite", "1")}

	in := t.TempDir()
	for _, dir := range []string{"dumps/" + demoMonth, "queue"} {
		entries, err := os.ReadDir(filepath.Join(demoStoreDir, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(demoStoreDir, dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, in, filepath.Join(dir, e.Name()), string(data))
		}
	}
	bad := "ad_id,served_at,site_domain,ad_category,device,country,ad_width,ad_height,bid_price,position,clicked\n" +
		"bad-1,2020-09-03T10:00:00Z,site001.example,cat01,mobile,NL,320,50,not-a-price,1,0\n" +
		"ok-1,2020-09-03T10:00:00Z,site001.example,cat01,mobile,NL,320,50,1.5,1,1\n" +
		"bad-2,2020-09-03T10:00:00Z,site001.example,cat01,mobile,NL,wide,50,1.5,1,0\n"
	writeFile(t, in, filepath.Join("dumps", demoMonth, "extra.csv"), bad)

	limit, err := ParseBadRowLimit("10")
	if err != nil {
		t.Fatal(err)
	}
	run := func(out string, mem memory.Allocator) {
		t.Helper()
		ctx := context.Background()
		if _, err := Score(ctx, ScoreJob{
			Job: BackfillJob(demoMonth), Input: store.NewFileBucket(in), Output: store.NewFileBucket(out),
			Bundle: champion, Challengers: challengers, Mem: mem,
			Dir: "dumps/" + demoMonth, Table: demoTable, Partition: demoPartition, Mode: table.Replace,
			IDColumns: []string{"ad_id"}, LabelColumns: []string{"clicked"}, RequireRows: true, BadRows: limit,
			BatchSize: 300, ReadConcurrency: 2, CSV: readers.CSVOptions{Header: true}, LeaseTTL: time.Minute,
		}); err != nil {
			t.Fatalf("backfill: %v", err)
		}
		if _, err := Score(ctx, ScoreJob{
			Job: JobQueue, Input: store.NewFileBucket(in), Output: store.NewFileBucket(out), Bundle: champion, Mem: mem,
			Dir: "queue", Table: queueTable, Partition: queueDate, Mode: table.Append,
			IDColumns: []string{"request_id"}, SkipConsumed: true, Duplicates: DupReject,
			BatchSize: 300, ReadConcurrency: 2, LeaseTTL: time.Minute,
		}); err != nil {
			t.Fatalf("queue run: %v", err)
		}
	}
	fresh, pooled := t.TempDir(), t.TempDir()
	run(fresh, memory.NewGoAllocator())
	pool := mempool.New(mempool.WithPoison())
	run(pooled, pool)
	if pool.Reused() == 0 {
		t.Fatal("the pooled run reused no buffer: the comparison shows nothing")
	}

	queries := map[string]string{
		"scores":      `SELECT ad_id, score, clicked, model_version FROM read_parquet('%s/ad_scores/*/*.parquet') ORDER BY ad_id`,
		"challengers": `SELECT ad_id, model_name, model_version, score, clicked FROM read_parquet('%s/ad_scores_challengers/*/*.parquet') ORDER BY ALL`,
		"rejects":     `SELECT file, row, line, "column", value, reason, ad_id FROM read_parquet('%s/ad_scores_rejects/*/*.parquet') ORDER BY ALL`,
		"queue":       `SELECT request_id, score FROM read_parquet('%s/request_scores/*/*.parquet') ORDER BY ALL`,
	}
	for what, q := range queries {
		a, b := dump(t, fmt.Sprintf(q, fresh)), dump(t, fmt.Sprintf(q, pooled))
		if a == "" {
			t.Errorf("%s: no rows", what)
		}
		if a != b {
			t.Errorf("%s differ between fresh and pooled record buffers", what)
		}
	}
	if got := dump(t, fmt.Sprintf(`SELECT count(*) FROM read_parquet('%s/ad_scores_rejects/*/*.parquet')`, pooled)); got != "2\n" {
		t.Errorf("rejected rows: %q, want 2", got)
	}
}

// dump is a query's rows as text, one line a row.
func dump(t *testing.T, q string) string {
	t.Helper()
	rows, err := duck(t).Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer func() { _ = rows.Close() }()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(&b, vals...)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
