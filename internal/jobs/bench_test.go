package jobs

import (
	"context"
	"testing"

	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/writers/table"
)

// BenchmarkBackfillDemo is `scorer backfill --month 2020-09` on the demo
// store with the demo bundle and the default settings: list, read, compute
// features, score, write Parquet and commit, into a fresh output store each
// time.
func BenchmarkBackfillDemo(b *testing.B) {
	ctx := context.Background()
	bu, err := bundle.Load(ctx, store.NewFileBucket("../../testdata/models/ctr-demo"), "")
	if err != nil {
		b.Fatal(err)
	}
	in := store.NewFileBucket("../../testdata/store")
	var rows int64
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		out := store.NewFileBucket(b.TempDir())
		b.StartTimer()
		sum, err := Score(ctx, ScoreJob{
			Job: BackfillJob("2020-09"), Input: in, Output: out, Bundle: bu,
			Dir: "dumps/2020-09", Table: "ad_scores", Partition: "month=2020-09", Mode: table.Replace,
			IDColumns: []string{"ad_id"}, RequireRows: true,
			BatchSize: 4096, ReadConcurrency: 2, CSV: readers.CSVOptions{Header: true},
			RowGroupRows: 128 * 1024, PartRows: 1 << 20,
		})
		if err != nil {
			b.Fatal(err)
		}
		if sum.RowsRead == 0 || len(sum.OutputFiles) == 0 {
			b.Fatalf("scored %d rows into %d files", sum.RowsRead, len(sum.OutputFiles))
		}
		rows += sum.RowsRead
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
