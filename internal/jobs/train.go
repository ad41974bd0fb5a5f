package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/training"
)

// TrainJob describes one `scorer train`: a labelled month of dumps in, a
// model bundle out.
type TrainJob struct {
	Input   store.Bucket
	Dir     string // dumps folder of the input store
	Month   string // YYYY-MM
	Spec    features.Spec
	Name    string
	Version string // default: the month
	Config  training.Config
	// ValidationFraction of the rows (a seeded random choice) is held out.
	ValidationFraction float64
	BatchSize          int
	CSV                readers.CSVOptions
	BadRows            BadRowLimit
	Command            string // recorded in the bundle
	Data               string // the training data as the user named it, recorded in the bundle
	Log                *slog.Logger
}

// Train fits the feature statistics on the month (first pass over the
// files), computes the model inputs (second pass), trains, and returns the
// bundle with its metrics. Memory holds the model inputs of every row
// (4×(D+K) bytes a row), not the raw rows.
func Train(ctx context.Context, j TrainJob) (*bundle.Bundle, error) {
	if j.Spec.Label == "" {
		return nil, fmt.Errorf("%w: the feature spec names no label column", ErrConfig)
	}
	if _, _, err := ParseMonth(j.Month); err != nil {
		return nil, err
	}
	files, _, err := ListInputs(ctx, j.Input, path.Join(j.Dir, j.Month))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: no input files for month %s under %s", ErrBadInput, j.Month, j.Input.URI(path.Join(j.Dir, j.Month)))
	}
	schema := j.Spec.InputSchema(nil, true)
	// One file at a time, in key order: the same data gives the same rows
	// in the same order, so training is reproducible.
	open := func() (*readers.Reader, *badRows, error) {
		br := &badRows{limit: j.BadRows}
		src, err := readers.Open(ctx, j.Input, files, readers.Options{
			Schema: schema, BatchSize: j.BatchSize, Concurrency: 1, CSV: j.CSV, OnBadRow: br.onBadRow,
		})
		return src, br, err
	}

	fit, err := features.NewFitter(j.Spec)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if _, err := eachRecord(ctx, open, func(rec arrow.RecordBatch) error { return fit.Observe(rec) }); err != nil {
		return nil, fmt.Errorf("fit feature statistics: %w", err)
	}
	fx, err := features.NewPipeline(j.Spec, fit.Stats())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}

	var all training.Dataset
	all.Batch.D, all.Batch.K = fx.Dense(), len(fx.Cardinalities())
	var b features.Batch
	rows := 0
	bad, err := eachRecord(ctx, open, func(rec arrow.RecordBatch) error {
		if err := fx.Transform(rec, &b); err != nil {
			return err
		}
		labels, ok := rec.Column(rec.Schema().FieldIndices(j.Spec.Label)[0]).(*array.Float64)
		if !ok {
			return fmt.Errorf("label %q is not numeric", j.Spec.Label)
		}
		for i, y := range labels.Float64Values() {
			if y != 0 && y != 1 {
				return fmt.Errorf("%w: %s: label %q must be 0 or 1, got %g (record row %d)", ErrBadInput, readers.SourceFile(rec), j.Spec.Label, y, i+1)
			}
			all.Labels = append(all.Labels, float32(y))
		}
		all.Batch.Dense = append(all.Batch.Dense, b.Dense...)
		all.Batch.Cat = append(all.Batch.Cat, b.Cat...)
		rows += b.N
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("compute features: %w", err)
	}
	if n := bad.count.Load(); j.BadRows.Exceeded(n, int64(rows)+n, true) {
		return nil, fmt.Errorf("%w: %d of %d rows are bad, more than max_bad_rows %s", ErrBadInput, n, int64(rows)+n, j.BadRows)
	}
	all.Batch.N = rows
	if rows < 2 {
		return nil, fmt.Errorf("%w: month %s has %d labelled rows; training needs more", ErrBadInput, j.Month, rows)
	}

	train, val := split(all, j.ValidationFraction, uint64(j.Config.Seed))
	cfg := j.Config
	cfg.Inputs = bundle.Inputs{Dense: fx.Dense(), Cardinalities: fx.Cardinalities()}
	if j.Log != nil {
		cfg.Progress = func(e training.EpochStats) {
			j.Log.Info("epoch", "epoch", e.Epoch, "loss", e.Loss, "val_logloss", e.ValLogLoss, "val_auc", e.ValAUC, "elapsed", e.Elapsed.Round(time.Millisecond))
		}
	}
	bu, err := training.Train(ctx, cfg, train, val)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	bu.Name, bu.Version = j.Name, j.Version
	if bu.Version == "" {
		bu.Version = j.Month
	}
	bu.Features, bu.Stats = j.Spec, fit.Stats()
	bu.Training.Data = j.Data
	bu.Training.Rows = rows
	bu.Training.Command = j.Command
	bu.Metrics["train_rows"] = float64(train.Batch.N)
	bu.Metrics["val_rows"] = float64(val.Batch.N)
	return bu, nil
}

// eachRecord reads every record of a freshly opened source and returns the
// source's bad-row count.
func eachRecord(ctx context.Context, open func() (*readers.Reader, *badRows, error), fn func(arrow.RecordBatch) error) (*badRows, error) {
	src, br, err := open()
	if err != nil {
		return nil, err
	}
	defer func() { _ = src.Close() }() // Reader.Close only stops the decoders; errors came through Read
	for {
		rec, err := src.Read(ctx)
		if errors.Is(err, io.EOF) {
			return br, nil
		}
		if err != nil {
			return br, err
		}
		err = fn(rec)
		rec.Release()
		if err != nil {
			return br, err
		}
	}
}

// split holds out a seeded random fraction of the rows for validation.
func split(all training.Dataset, fraction float64, seed uint64) (train, val training.Dataset) {
	n, d, k := all.Batch.N, all.Batch.D, all.Batch.K
	perm := rand.New(rand.NewPCG(seed, 0x7a11d)).Perm(n)
	nVal := int(float64(n) * fraction)
	pick := func(idx []int) training.Dataset {
		var ds training.Dataset
		ds.Batch.Reset(len(idx), d, k)
		ds.Labels = make([]float32, len(idx))
		for r, i := range idx {
			copy(ds.Batch.Dense[r*d:(r+1)*d], all.Batch.Dense[i*d:(i+1)*d])
			copy(ds.Batch.Cat[r*k:(r+1)*k], all.Batch.Cat[i*k:(i+1)*k])
			ds.Labels[r] = all.Labels[i]
		}
		return ds
	}
	return pick(perm[nVal:]), pick(perm[:nVal])
}
