package table_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/writers"
	"github.com/adtech/scorer/writers/table"
)

// A run writes one REPLACE partition, commits, and reads back the
// partition's manifest and the job's ledger.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "writers-example")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()

	p, err := table.NewPublisher(store.NewFileBucket(dir), table.DefaultOptions())
	if err != nil {
		log.Fatal(err)
	}
	// At start-up: finish or discard what a crashed run left.
	if _, err := p.Recover(ctx); err != nil {
		log.Fatal(err)
	}

	scoredAt := time.Date(2020, 9, 2, 3, 15, 0, 0, time.UTC)
	run, err := p.Begin(ctx, table.RunSpec{
		RunID:  "20200902T031500Z-example",
		Job:    "daily",
		Model:  table.Model{Name: "ctr", Version: "v3"},
		Inputs: []table.InputFile{{Key: "in/2020-09-01.csv", Generation: 1, Rows: 2}},
		Constants: []writers.Constant{
			{Name: "model_name", Value: "ctr"},
			{Name: "scored_at", Value: scoredAt},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "ad_id", Type: arrow.BinaryTypes.String},
		{Name: "score", Type: arrow.PrimitiveTypes.Float32},
	}, nil)
	out, err := run.Output(table.OutputSpec{Table: "ad_scores", Partition: "month=2020-09", Mode: table.Replace, Schema: schema})
	if err != nil {
		log.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"a1", "a2"}, nil)
	b.Field(1).(*array.Float32Builder).AppendValues([]float32{0.25, 0.5}, nil)
	rec := b.NewRecordBatch()
	b.Release()
	err = out.Write(ctx, rec)
	rec.Release()
	if err != nil {
		_ = run.Abort(ctx)
		log.Fatal(err)
	}
	if _, err := run.Commit(ctx); err != nil {
		log.Fatal(err) // the next Recover finishes or discards the run
	}

	m, err := p.Manifest(ctx, "ad_scores", "month=2020-09")
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range m.Files {
		fmt.Println(f.Name, f.Rows)
	}
	consumed, err := p.Consumed(ctx, "daily")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(consumed["in/2020-09-01.csv"].Generation)
	// Output:
	// part-20200902T031500Z-example-00000.parquet 2
	// 1
}
