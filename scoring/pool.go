package scoring

import (
	"cmp"
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

// Sink receives scored records: the id columns, the pass columns, a float32
// "score" column and one float32 column per challenger (PoolOptions). Write is called from one goroutine; the record stays the caller's,
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
	// IDColumns are copied from the input records to the output records;
	// they name a row in errors.
	IDColumns []string
	// PassColumns are copied from the input records to the output records
	// after the id columns (e.g. labels).
	PassColumns []string
	// Challengers are further models scored on the same rows, each into a
	// float32 column of its own after the score column. A challenger whose
	// Features is the very pipeline given to Run shares its features: they
	// are computed once per record.
	Challengers []Challenger
	// Mem allocates the score columns (default memory.DefaultAllocator).
	Mem memory.Allocator
	// MaxAbsLogit, if > 0, fails the run on a logit of larger magnitude
	// (WithMaxAbsLogit); logits that are not finite fail it always.
	MaxAbsLogit float64
	// Profile, if set, is called once per worker for the profiler (of
	// the main model's pipeline) that profiles the inputs and the main
	// model's scores of every record the worker scores.
	Profile func() *features.Profiler
	// Images is the main model's image stage, needed if it has image
	// inputs (a challenger's is Challenger.Images).
	Images *ImageStage
}

// Challenger is a model scored beside the main one (PoolOptions.Challengers).
type Challenger struct {
	Bundle   *bundle.Bundle
	Features *features.Pipeline
	// Column names the challenger's score column; it must differ from
	// ScoreColumn, the pass-through columns and the other challengers'.
	Column string
	// Images is the challenger's image stage, needed if it has image
	// inputs.
	Images *ImageStage
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
	specs := append([]Challenger{{Bundle: bu, Features: fx, Column: ScoreColumn, Images: opts.Images}}, opts.Challengers...)
	if err := checkColumns(specs, &opts); err != nil {
		return Counts{}, err
	}
	for _, c := range specs {
		if got := bundle.InputsOf(c.Features); !got.Equal(c.Bundle.Inputs) {
			return Counts{}, fmt.Errorf("score: feature pipeline gives inputs %+v, bundle %s %s expects %+v",
				got, c.Bundle.Name, c.Bundle.Version, c.Bundle.Inputs)
		}
		if err := c.Bundle.Validate(); err != nil {
			return Counts{}, fmt.Errorf("compile model %s %s: %w", c.Bundle.Name, c.Bundle.Version, err)
		}
		if (c.Bundle.Inputs.Images > 0) != (c.Images != nil) || (c.Images != nil && c.Images.bu != c.Bundle) {
			return Counts{}, fmt.Errorf("score: model %s %s has %d image inputs: it needs its own image stage, and only then",
				c.Bundle.Name, c.Bundle.Version, c.Bundle.Inputs.Images)
		}
	}

	// Compile every worker's graphs before reading anything, so that a
	// model that does not compile fails the run before any I/O.
	workers := make([]*worker, opts.Workers)
	defer func() {
		for _, w := range workers {
			if w != nil {
				w.close()
			}
		}
	}()
	for i := range workers {
		w, err := newWorker(specs, &opts)
		if err != nil {
			return Counts{}, err
		}
		workers[i] = w
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
	running.Store(int32(len(workers)))
	for _, w := range workers {
		g.Go(func() error {
			defer func() {
				if running.Add(-1) == 0 {
					close(out)
				}
			}()
			for rec := range in {
				res, err := w.score(ctx, rec)
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

// checkColumns refuses output columns that would collide.
func checkColumns(specs []Challenger, opts *PoolOptions) error {
	seen := map[string]string{}
	for _, c := range opts.IDColumns {
		seen[c] = "an id column"
	}
	for _, c := range opts.PassColumns {
		if what, dup := seen[c]; dup {
			return fmt.Errorf("score: pass-through column %q is also %s", c, what)
		}
		seen[c] = "a pass-through column"
	}
	for _, c := range specs {
		if what, dup := seen[c.Column]; dup || c.Column == "" {
			return fmt.Errorf("score: model %s %s: score column %q is also %s", c.Bundle.Name, c.Bundle.Version, c.Column, cmp.Or(what, "empty"))
		}
		seen[c.Column] = "a score column"
	}
	return nil
}

// worker scores records with every model: its own compiled graph of each,
// and one feature batch per distinct pipeline.
type worker struct {
	opts    *PoolOptions
	specs   []Challenger
	models  []*Model
	batchOf []int // index in batches of each model's features
	batches []features.Batch
	fxs     []*features.Pipeline // the pipeline of each batch
	scores  []float32            // reused from record to record
	prof    *features.Profiler   // nil unless PoolOptions.Profile
}

func newWorker(specs []Challenger, opts *PoolOptions) (*worker, error) {
	w := &worker{opts: opts, specs: specs}
	for _, c := range specs {
		m, err := compileModel(c.Bundle, opts.ModelBatch, WithMaxAbsLogit(opts.MaxAbsLogit))
		if err != nil {
			w.close()
			return nil, fmt.Errorf("compile model %s %s: %w", c.Bundle.Name, c.Bundle.Version, err)
		}
		w.models = append(w.models, m)
		k := slices.Index(w.fxs, c.Features)
		if k < 0 {
			k = len(w.fxs)
			w.fxs = append(w.fxs, c.Features)
		}
		w.batchOf = append(w.batchOf, k)
	}
	w.batches = make([]features.Batch, len(w.fxs))
	if opts.Profile != nil {
		w.prof = opts.Profile()
		w.batches[w.batchOf[0]].Profile = w.prof
	}
	return w, nil
}

func (w *worker) close() {
	for _, m := range w.models {
		_ = m.Close() // never fails
	}
}

// score turns one input record into an output record: id columns, pass
// columns, then one score column per model.
func (w *worker) score(ctx context.Context, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	for k, fx := range w.fxs {
		if err := fx.Transform(rec, &w.batches[k]); err != nil {
			return nil, fmt.Errorf("compute features: %w", err)
		}
	}
	n := int(rec.NumRows())
	ncols := len(w.opts.IDColumns) + len(w.opts.PassColumns) + len(w.models)
	fields := make([]arrow.Field, 0, ncols)
	cols := make([]arrow.Array, 0, ncols)
	var owned []arrow.Array // the score columns made here; the record retains them
	defer func() {
		for _, c := range owned {
			c.Release()
		}
	}()
	for _, name := range slices.Concat(w.opts.IDColumns, w.opts.PassColumns) {
		idx := rec.Schema().FieldIndices(name)
		if len(idx) == 0 {
			return nil, fmt.Errorf("score: input has no column %q", name)
		}
		fields = append(fields, rec.Schema().Field(idx[0]))
		cols = append(cols, rec.Column(idx[0]))
	}
	w.scores = slices.Grow(w.scores[:0], n)[:n]
	for i, m := range w.models {
		batch := &w.batches[w.batchOf[i]]
		if st := w.specs[i].Images; st != nil {
			if err := st.Embed(ctx, batch); err != nil {
				var re *RowError
				if errors.As(err, &re) {
					re.IDs = w.ids(rec, re.Row)
				}
				return nil, fmt.Errorf("images of model %s %s: %w", w.specs[i].Bundle.Name, w.specs[i].Bundle.Version, err)
			}
		}
		if err := m.Score(batch, w.scores); err != nil {
			var le *LogitError
			var re *RowError
			if errors.As(err, &re) {
				re.IDs = w.ids(rec, re.Row)
			}
			if errors.As(err, &le) {
				le.IDs = w.ids(rec, le.Row)
				if i > 0 {
					return nil, fmt.Errorf("challenger %s %s: %w", w.specs[i].Bundle.Name, w.specs[i].Bundle.Version, le)
				}
				return nil, le
			}
			return nil, fmt.Errorf("score with model %s %s: %w", w.specs[i].Bundle.Name, w.specs[i].Bundle.Version, err)
		}
		if i == 0 && w.prof != nil {
			w.prof.ObserveScores(w.scores[:n])
		}
		b := array.NewFloat32Builder(w.opts.Mem)
		b.Resize(n)
		b.AppendValues(w.scores, nil)
		fields = append(fields, arrow.Field{Name: w.specs[i].Column, Type: arrow.PrimitiveTypes.Float32})
		arr := b.NewArray()
		b.Release()
		owned = append(owned, arr)
		cols = append(cols, arr)
	}
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
