package scoring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/sync/errgroup"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/scoring/bundle"
)

// Source yields input records: io.EOF after the last one. The caller of Read
// owns (and releases) each record. Read is called from one goroutine.
type Source interface {
	Read(ctx context.Context) (arrow.RecordBatch, error)
}

// Sink receives scored records: the id columns followed by a float32 "score"
// column. Write is called from one goroutine; the record stays the caller's,
// so a Sink that keeps it must Retain it.
type Sink interface {
	Write(ctx context.Context, rec arrow.RecordBatch) error
}

// PoolOptions configure Run.
type PoolOptions struct {
	// Workers is the number of scoring workers, each with its own compiled
	// graph (default: one per core).
	Workers int
	// BatchSize is the number of rows of the records that Run expects
	// (default 4096); it bounds ModelBatch.
	BatchSize int
	// ModelBatch is the batch the workers' graphs are compiled for
	// (default min(BatchSize, DefaultModelBatch)); a record of more rows is
	// scored in slices of ModelBatch rows.
	ModelBatch int
	// IDColumns are copied from the input records to the output records.
	IDColumns []string
	// Mem allocates the score columns (default memory.DefaultAllocator).
	Mem memory.Allocator
	// MaxAbsLogit, if > 0, fails the run on a logit of larger magnitude
	// (WithMaxAbsLogit); logits that are not finite fail it always.
	MaxAbsLogit float64
}

// Counts say how many rows went through Run.
type Counts struct {
	Rows    int64 // rows read and scored
	Batches int64
}

// DefaultModelBatch is the default batch a worker's graph is compiled for.
// The dense layers work on 6 rows at a time and an op's output stays in
// the worker's buffers, so rows/s is flat from a few hundred rows up
// (BenchmarkCompiledBatch) while a worker's buffers grow with the batch
// (4·(K·E+D + Σ hidden + 1) bytes a row: 3.3 KiB for ctr-mlp); 1024 rows
// keep them near 3 MiB.
const DefaultModelBatch = 1024

// ScoreColumn is the name of the output column holding the probability.
const ScoreColumn = "score"

// Run scores every record of src with the bundle and writes the results to
// sink. Stages meet at small bounded channels: a slow sink slows the workers,
// which slow the reading. The first error cancels everything and is returned;
// records in flight are released. Scores do not depend on the number of
// workers; the order of output records may.
func Run(ctx context.Context, src Source, bu *bundle.Bundle, fx *features.Pipeline, sink Sink, opts PoolOptions) (Counts, error) {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 4096
	}
	if opts.ModelBatch <= 0 {
		opts.ModelBatch = min(opts.BatchSize, DefaultModelBatch)
	}
	if opts.Mem == nil {
		opts.Mem = memory.DefaultAllocator
	}
	if fx.Dense() != bu.Inputs.Dense || !slices.Equal(fx.Cardinalities(), bu.Inputs.Cardinalities) {
		return Counts{}, fmt.Errorf("score: feature pipeline gives %d dense inputs and cardinalities %v, bundle %s %s expects %d and %v",
			fx.Dense(), fx.Cardinalities(), bu.Name, bu.Version, bu.Inputs.Dense, bu.Inputs.Cardinalities)
	}

	// Compile every worker's graph before reading anything, so that a model
	// that does not compile fails the run before any I/O.
	models := make([]*Model, opts.Workers)
	defer func() {
		for _, m := range models {
			if m != nil {
				_ = m.Close() // never fails
			}
		}
	}()
	if err := bu.Validate(); err != nil {
		return Counts{}, fmt.Errorf("compile model %s %s: %w", bu.Name, bu.Version, err)
	}
	for i := range models {
		m, err := compileModel(bu, opts.ModelBatch, WithMaxAbsLogit(opts.MaxAbsLogit))
		if err != nil {
			return Counts{}, fmt.Errorf("compile model %s %s: %w", bu.Name, bu.Version, err)
		}
		models[i] = m
	}

	g, ctx := errgroup.WithContext(ctx)
	in := make(chan arrow.RecordBatch, opts.Workers)
	out := make(chan arrow.RecordBatch, opts.Workers)
	var counts Counts

	g.Go(func() error {
		defer close(in)
		for {
			rec, err := src.Read(ctx)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			select {
			case in <- rec:
			case <-ctx.Done():
				rec.Release()
				return ctx.Err()
			}
		}
	})

	var running atomic.Int32
	running.Store(int32(len(models)))
	for _, m := range models {
		g.Go(func() error {
			defer func() {
				if running.Add(-1) == 0 {
					close(out)
				}
			}()
			w := worker{model: m, fx: fx, opts: &opts}
			for rec := range in {
				res, err := w.score(rec)
				rec.Release()
				if err != nil {
					return err
				}
				select {
				case out <- res:
				case <-ctx.Done():
					res.Release()
					return ctx.Err()
				}
			}
			return nil
		})
	}

	g.Go(func() error {
		for res := range out {
			err := sink.Write(ctx, res)
			counts.Rows += res.NumRows()
			counts.Batches++
			res.Release()
			if err != nil {
				return err
			}
		}
		return nil
	})

	err := g.Wait()
	// Every goroutine has returned, so both channels are closed; release
	// what an early error left in them.
	drain(in)
	drain(out)
	return counts, err
}

// drain releases whatever is left in a closed channel.
func drain(ch <-chan arrow.RecordBatch) {
	for rec := range ch {
		rec.Release()
	}
}

type worker struct {
	model  *Model
	fx     *features.Pipeline
	opts   *PoolOptions
	batch  features.Batch
	scores []float32 // reused from record to record
}

// score turns one input record into an output record: id columns + score.
func (w *worker) score(rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	if err := w.fx.Transform(rec, &w.batch); err != nil {
		return nil, fmt.Errorf("compute features: %w", err)
	}
	n := int(rec.NumRows())
	b := array.NewFloat32Builder(w.opts.Mem)
	defer b.Release()
	b.Resize(n)
	w.scores = slices.Grow(w.scores[:0], n)[:n]
	if err := w.model.Score(&w.batch, w.scores); err != nil {
		var le *LogitError
		if errors.As(err, &le) {
			le.IDs = w.ids(rec, le.Row)
			return nil, le
		}
		return nil, fmt.Errorf("score: %w", err)
	}
	b.AppendValues(w.scores, nil)
	scoreArr := b.NewArray()
	defer scoreArr.Release()

	fields := make([]arrow.Field, 0, len(w.opts.IDColumns)+1)
	cols := make([]arrow.Array, 0, len(w.opts.IDColumns)+1)
	for _, id := range w.opts.IDColumns {
		idx := rec.Schema().FieldIndices(id)
		if len(idx) == 0 {
			return nil, fmt.Errorf("score: input has no id column %q", id)
		}
		fields = append(fields, rec.Schema().Field(idx[0]))
		cols = append(cols, rec.Column(idx[0]))
	}
	fields = append(fields, arrow.Field{Name: ScoreColumn, Type: arrow.PrimitiveTypes.Float32})
	cols = append(cols, scoreArr)
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(n)), nil
}

// ids names a row of rec by its id columns: name="value" pairs.
func (w *worker) ids(rec arrow.RecordBatch, row int) string {
	var parts []string
	for _, id := range w.opts.IDColumns {
		if idx := rec.Schema().FieldIndices(id); len(idx) > 0 && row < int(rec.NumRows()) {
			parts = append(parts, fmt.Sprintf("%s=%q", id, rec.Column(idx[0]).ValueStr(row)))
		}
	}
	return strings.Join(parts, " ")
}
