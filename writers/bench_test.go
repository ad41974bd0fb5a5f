package writers

import (
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/adtech/scorer/readers/store"
)

// BenchmarkPartWriter writes a score table's part as a scoring run does
// (a unique string id and a score per row; model name, version, run id
// and time as constants), with the id column dictionary-encoded (as every
// string column was) and PLAIN (PartConfig.Plain, what scoring runs ask
// for their id columns).
func BenchmarkPartWriter(b *testing.B) {
	const rows, batch = 1 << 18, 4096
	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "request_id", Type: arrow.BinaryTypes.String},
		{Name: "score", Type: arrow.PrimitiveTypes.Float32},
	}, nil)
	var recs []arrow.RecordBatch
	for r := 0; r < rows; r += batch {
		ids := array.NewStringBuilder(mem)
		scores := array.NewFloat32Builder(mem)
		for i := r; i < r+batch; i++ {
			ids.Append(fmt.Sprintf("%016x", uint64(i)*0x9E3779B97F4A7C15))
			scores.Append(float32(i%1000) / 1000)
		}
		cols := []arrow.Array{ids.NewArray(), scores.NewArray()}
		recs = append(recs, array.NewRecordBatch(schema, cols, batch))
		for _, c := range cols {
			c.Release()
		}
		ids.Release()
		scores.Release()
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	consts := []Constant{
		{Name: "model_name", Value: "ctr-mlp"},
		{Name: "model_version", Value: "2020-09-01T00-00-00Z-3f2a9c1e"},
		{Name: "scored_at", Value: time.Date(2020, 9, 2, 3, 0, 0, 0, time.UTC)},
		{Name: "run_id", Value: "20200902T030000Z-backfill-2020-09-3f2a9c1e"},
	}
	for _, ids := range []string{"dictionary", "plain"} {
		b.Run("ids="+ids, func(b *testing.B) {
			cfg := PartConfig{Constants: consts}
			if ids == "plain" {
				cfg.Plain = []string{"request_id"}
			}
			bucket := store.NewFileBucket(b.TempDir())
			var size int64
			run := 0
			for b.Loop() {
				run++
				parts := writeParts(b, bucket, fmt.Sprintf("t/%d", run), cfg, recs...)
				size = parts[0].Bytes
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
			b.ReportMetric(float64(size)/rows, "bytes/row")
		})
	}
}
