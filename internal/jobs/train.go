package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring"
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
	// ValidationFraction of the rows is held out, chosen by Split: to pick
	// the epoch (early stopping) and to measure the model.
	ValidationFraction float64
	// Split: SplitTime ("" too) holds out the latest rows by TimeColumn, or
	// without a TimeColumn the last rows in input order (files in key
	// order, rows in file order); SplitRandom a seeded random choice.
	Split      string
	TimeColumn string
	// Refit retrains on every row, validation rows included, for the best
	// epoch count found with the validation split.
	Refit     bool
	BatchSize int
	CSV       readers.CSVOptions
	BadRows   BadRowLimit
	Command   string // recorded in the bundle
	Data      string // the training data as the user named it, recorded in the bundle
	// Images say how the images of image features are read; MaxImages
	// bounds the distinct images of the month held in memory at once
	// (3·S·S float32 each: 12 KiB at 32 px; default DefaultMaxTrainImages).
	Images    ImageOptions
	MaxImages int
	Log       *slog.Logger
}

// DefaultMaxTrainImages is TrainJob.MaxImages' default: 240 MiB of 32 px
// images.
const DefaultMaxTrainImages = 20000

// Validation splits.
const (
	SplitTime   = "time"
	SplitRandom = "random"
)

// Train fits the feature statistics on the month (first pass over the
// files), computes the model inputs (second pass, which also picks the
// reference rows: referencePicker), trains, and returns the bundle with its
// metrics and its reference rows scored by the trained model. Memory holds
// the model inputs of every row (4×(D+K) bytes a row), not the raw rows.
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
	timeCol := ""
	switch j.Split {
	case "", SplitTime:
		timeCol = j.TimeColumn
	case SplitRandom:
	default:
		return nil, fmt.Errorf("%w: split %q: time or random", ErrConfig, j.Split)
	}
	if !(j.ValidationFraction >= 0 && j.ValidationFraction < 1) {
		return nil, fmt.Errorf("%w: validation_fraction %g: want 0 <= fraction < 1", ErrConfig, j.ValidationFraction)
	}
	if timeCol != "" {
		if i := schema.FieldIndices(timeCol); len(i) > 0 {
			if schema.Field(i[0]).Type.ID() != arrow.TIMESTAMP {
				return nil, fmt.Errorf("%w: time_column %q is read as %s by the feature spec, not as a timestamp", ErrConfig, timeCol, schema.Field(i[0]).Type)
			}
		} else {
			schema = arrow.NewSchema(append(schema.Fields(), arrow.Field{Name: timeCol, Type: arrow.FixedWidthTypes.Timestamp_us, Nullable: true}), nil)
		}
	}

	// One file at a time, in key order: the same data gives the same rows
	// in the same order, so training is reproducible.
	open := func() (*readers.Reader, *badRows, error) {
		br := &badRows{limit: j.BadRows}
		src, err := readers.Open(ctx, j.Input, files, readers.Options{
			Schema: schema, Ranges: RejectRanges(j.Spec), BatchSize: j.BatchSize, Concurrency: 1, CSV: j.CSV, OnBadRow: br.onBadRow,
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

	// The first look at the training profile, for its bins (deciles, most
	// frequent values); profileData counts them once the model exists.
	look, err := fx.NewProfiler(nil)
	if err != nil {
		return nil, err
	}
	var all training.Dataset
	all.Batch.D, all.Batch.K = fx.Dense(), len(fx.Cardinalities())
	var times []int64 // timeCol per row, math.MinInt64 if missing
	b := features.Batch{Profile: look}
	rows := 0
	picker := newReferencePicker(j.Spec.InputSchema(nil, false), ReferenceRows)
	imgs := newImageIndex()
	bad, err := eachRecord(ctx, open, func(rec arrow.RecordBatch) error {
		if err := fx.Transform(rec, &b); err != nil {
			return err
		}
		all.ImageIndex = imgs.add(all.ImageIndex, b.Images)
		if err := picker.observe(rec, &b); err != nil {
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
		if timeCol != "" {
			ts, ok := rec.Column(rec.Schema().FieldIndices(timeCol)[0]).(*array.Timestamp)
			if !ok {
				return fmt.Errorf("time column %q is not a timestamp", timeCol)
			}
			for i := range ts.Len() {
				t := int64(math.MinInt64)
				if ts.IsValid(i) {
					t = int64(ts.Value(i))
				}
				times = append(times, t)
			}
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
	if len(fx.Images()) > 0 {
		keep, err := j.loadImages(ctx, fx, imgs, &all)
		if err != nil {
			return nil, err
		}
		if keep != nil {
			all = pick(all, keep)
			if times != nil {
				kept := make([]int64, len(keep))
				for i, r := range keep {
					kept[i] = times[r]
				}
				times = kept
			}
			if rows = len(keep); rows < 2 {
				return nil, fmt.Errorf("%w: month %s has %d labelled rows with a usable image; training needs more", ErrBadInput, j.Month, rows)
			}
		}
	}

	order, how := splitOrder(rows, j.Split, timeCol, times, uint64(j.Config.Seed))
	nVal := int(float64(rows) * j.ValidationFraction)
	train, val := pick(all, order[:rows-nVal]), pick(all, order[rows-nVal:])
	cfg := j.Config
	cfg.Inputs = bundle.InputsOf(fx)
	cfg.Progress = j.logEpoch("")
	bu, err := training.Train(ctx, cfg, train, val)
	if err != nil {
		if errors.Is(err, training.ErrConfig) {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		return nil, fmt.Errorf("train: %w", err)
	}
	info := bu.Training
	if j.Refit && val.Batch.N > 0 && info.BestEpoch > 0 {
		// Every row, for the epochs that did best on the validation rows.
		// The val_ metrics stay those of the model that chose them: the
		// refitted one has seen the validation rows.
		cfg.Epochs, cfg.Patience = info.BestEpoch, 0
		cfg.Progress = j.logEpoch("refit")
		refit, err := training.Train(ctx, cfg, all, training.Dataset{})
		if err != nil {
			return nil, fmt.Errorf("refit: %w", err)
		}
		for k, v := range bu.Metrics {
			if strings.HasPrefix(k, "val_") {
				refit.Metrics[k] = v
			}
		}
		refit.Training.BestEpoch, refit.Training.Patience, refit.Training.Refit = info.BestEpoch, info.Patience, true
		bu = refit
	}
	bu.Name, bu.Version = j.Name, j.Version
	if bu.Version == "" {
		bu.Version = j.Month
	}
	bu.Features, bu.Stats = j.Spec, fit.Stats()
	bu.Training.Data = j.Data
	bu.Training.Rows = rows
	bu.Training.Command = j.Command
	if nVal > 0 {
		bu.Training.Split, bu.Training.ValidationFraction = how, j.ValidationFraction
	}
	bu.Metrics["train_rows"] = float64(train.Batch.N)
	bu.Metrics["val_rows"] = float64(val.Batch.N)
	var st *scoring.ImageStage
	if len(fx.Images()) > 0 {
		if st, err = scoring.NewImageStage(bu, j.loader(fx), scoring.BadImageMissing); err != nil {
			return nil, err
		}
		// The skew guard scores the reference rows with the embeddings
		// recorded with them, and checks the tower on the probe image.
		tw, err := scoring.NewTower(bu)
		if err != nil {
			return nil, err
		}
		bu.ImageProbe = make([]float32, tw.Dim())
		tw.Embed(scoring.ProbeImage(bu.Inputs.ImageSize), 1, bu.ImageProbe)
		if err := preloadTrained(bu, st, tw, imgs, all.Images); err != nil {
			return nil, err
		}
	}
	if bu.Reference, err = checkedReference(ctx, bu, picker, st); err != nil {
		return nil, err
	}
	ref, err := look.Profile()
	if err != nil {
		return nil, err
	}
	if bu.Profile, err = profileData(ctx, open, fx, bu, ref, st); err != nil {
		return nil, fmt.Errorf("profile the training data: %w", err)
	}
	return bu, nil
}

// ProfileData is the training profile of a model: the profile of the rows
// open reads, with the bins a first pass over them gives (features.Profile
// SetReferenceBins), and the model's scores of those rows. It reads the
// rows twice.
func ProfileData(ctx context.Context, open func() (*readers.Reader, error), fx *features.Pipeline, bu *bundle.Bundle) (*features.Profile, error) {
	look, err := fx.NewProfiler(nil)
	if err != nil {
		return nil, err
	}
	b := features.Batch{Profile: look}
	opened := func() (*readers.Reader, *badRows, error) {
		src, err := open()
		return src, &badRows{}, err
	}
	if _, err := eachRecord(ctx, opened, func(rec arrow.RecordBatch) error {
		return fx.Transform(rec, &b)
	}); err != nil {
		return nil, err
	}
	ref, err := look.Profile()
	if err != nil {
		return nil, err
	}
	return profileData(ctx, opened, fx, bu, ref, nil)
}

// profileData profiles the rows open reads, and bu's scores of them, with
// the bins of ref (a profile of the same rows); st computes the image
// embeddings of a model with image inputs.
func profileData(ctx context.Context, open func() (*readers.Reader, *badRows, error), fx *features.Pipeline, bu *bundle.Bundle, ref *features.Profile, st *scoring.ImageStage) (*features.Profile, error) {
	if err := ref.SetReferenceBins(); err != nil {
		return nil, err
	}
	pr, err := fx.NewProfiler(ref)
	if err != nil {
		return nil, err
	}
	m, err := scoring.NewModel(bu, scoring.DefaultModelBatch)
	if err != nil {
		return nil, fmt.Errorf("compile model %s %s: %w", bu.Name, bu.Version, err)
	}
	defer func() { _ = m.Close() }()
	b := features.Batch{Profile: pr}
	var scores []float32
	if _, err := eachRecord(ctx, open, func(rec arrow.RecordBatch) error {
		if err := fx.Transform(rec, &b); err != nil {
			return err
		}
		scores = slices.Grow(scores[:0], b.N)[:b.N]
		if st != nil {
			if err := st.Embed(ctx, &b); err != nil {
				return err
			}
		}
		if err := m.Score(&b, scores); err != nil {
			return err
		}
		pr.ObserveScores(scores)
		return nil
	}); err != nil {
		return nil, err
	}
	return pr.Profile()
}

// logEpoch logs each epoch's statistics, leaving out those that do not
// exist (no NaN in the logs).
func (j TrainJob) logEpoch(phase string) func(training.EpochStats) {
	if j.Log == nil {
		return nil
	}
	return func(e training.EpochStats) {
		attrs := []any{"epoch", e.Epoch, "train_loss", e.Loss}
		if phase != "" {
			attrs = append(attrs, "phase", phase)
		}
		if !math.IsNaN(e.ValLogLoss) {
			attrs = append(attrs, "val_logloss", e.ValLogLoss, "best", e.Best)
		}
		if !math.IsNaN(e.ValAUC) {
			attrs = append(attrs, "val_auc", e.ValAUC)
		}
		j.Log.Info("epoch", append(attrs, "elapsed", e.Elapsed.Round(time.Millisecond))...)
	}
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

// splitOrder orders the rows so that the validation rows come last: by
// time (rows without one first; ties in input order), in input order, or
// at random (seeded). It also says how, for the bundle's record.
func splitOrder(n int, split, timeCol string, times []int64, seed uint64) ([]int, string) {
	if split == SplitRandom {
		return rand.New(rand.NewPCG(seed, 0x7a11d)).Perm(n), SplitRandom
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	if timeCol == "" {
		return order, "order"
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(times[a], times[b]) })
	return order, "time:" + timeCol
}

// pick copies the rows idx of all, in that order (the images are shared).
func pick(all training.Dataset, idx []int) training.Dataset {
	d, k, m := all.Batch.D, all.Batch.K, len(all.ImageIndex)/max(1, all.Batch.N)
	var ds training.Dataset
	ds.Batch.Reset(len(idx), d, k)
	ds.Labels = make([]float32, len(idx))
	ds.Images, ds.ImageIndex = all.Images, make([]int32, len(idx)*m)
	for r, i := range idx {
		copy(ds.Batch.Dense[r*d:(r+1)*d], all.Batch.Dense[i*d:(i+1)*d])
		copy(ds.Batch.Cat[r*k:(r+1)*k], all.Batch.Cat[i*k:(i+1)*k])
		copy(ds.ImageIndex[r*m:(r+1)*m], all.ImageIndex[i*m:(i+1)*m])
		ds.Labels[r] = all.Labels[i]
	}
	return ds
}
