package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/registry"
)

// Validation is what Validate checked.
type Validation struct {
	// Bundle is the model bundle, loaded and compiled; nil if it failed.
	Bundle *bundle.Bundle
	// Challengers are the challengers' bundles, loaded and compiled.
	Challengers []*bundle.Bundle
	// Dense and Indexed count the model's inputs after the feature pipeline.
	Dense, Indexed int
	// Tables are the two jobs' inputs and outputs.
	Tables []TableCheck
	// StoresOK: both stores could be listed.
	StoresOK bool
	// NoBundle: there is no model bundle at the configured URI yet (not an
	// error: the set-up is checked for training).
	NoBundle bool
	// TrainSpec is the train.spec file checked (strictly: unknown kinds
	// and keys are errors naming the feature), and TrainFeatures its
	// features; "" if it was skipped (a bundle is present and there is no
	// file: scoring does not need it).
	TrainSpec     string
	TrainFeatures int
	// Sample is the input file whose columns were checked against the
	// train spec ("" if none), SampleColumns how many it was read for.
	Sample        string
	SampleColumns int
}

// TableCheck is one job's input and output as configured.
type TableCheck struct {
	Job     string // backfill, queue
	Columns int    // columns read from each input file
	Reads   string // the input folder's URI
	Table   string
}

// Validate checks the configuration for scoring and for training, without
// scoring or training anything: the train section; the feature spec
// train.spec (required without a bundle; with one, checked if the file
// exists) and that its columns are in a sample of the input (the newest
// file under backfill.dir); the model bundle if there is one (its weights,
// its feature spec and statistics, and that its graph compiles); and that
// both stores can be listed. What it checked before the first problem is
// returned with the error. Spec and configuration problems are
// configuration errors (exit code 2).
func (a *App) Validate(ctx context.Context) (*Validation, error) {
	v := &Validation{}
	cfg := a.cfg
	if err := cfg.Train.Validate(); err != nil {
		return v, UsageError{fmt.Errorf("invalid configuration:\n%w", err)}
	}
	input, err := store.Open(ctx, cfg.Input)
	if err != nil {
		return v, UsageError{fmt.Errorf("input: %w", err)}
	}
	output, err := store.Open(ctx, cfg.Output) // read only: validate does not heal
	if err != nil {
		return v, UsageError{fmt.Errorf("output: %w", err)}
	}
	var bu *bundle.Bundle
	if present, err := bundlePresent(ctx, cfg.Model); err != nil {
		return v, err
	} else if present {
		if bu, err = a.LoadModel(ctx, cfg.Model); err != nil {
			return v, err
		}
	} else {
		v.NoBundle = true
	}
	if _, err := os.Stat(cfg.Train.Spec); err == nil || bu == nil {
		if err := a.validateTraining(ctx, input, v); err != nil {
			return v, err
		}
	}
	if bu != nil {
		fx, err := features.NewPipeline(bu.Features, bu.Stats)
		if err != nil {
			return v, fmt.Errorf("%w: model %s: %w", jobs.ErrConfig, cfg.Model, err)
		}
		m, err := scoring.NewModel(bu, cfg.BatchSize)
		if err != nil {
			return v, fmt.Errorf("%w: model %s: compile: %w", jobs.ErrConfig, cfg.Model, err)
		}
		_ = m.Close()
		if err := cfg.Drift.Check(&bu.Features); err != nil {
			return v, fmt.Errorf("%w: model %s: %w", jobs.ErrConfig, cfg.Model, err)
		}
		v.Bundle, v.Dense, v.Indexed = bu, fx.Dense(), len(fx.Cardinalities())
		for _, uri := range cfg.Challengers {
			cb, err := a.LoadModel(ctx, uri)
			if err != nil {
				return v, fmt.Errorf("challenger: %w", err)
			}
			if _, err := features.NewPipeline(cb.Features, cb.Stats); err != nil {
				return v, fmt.Errorf("%w: challenger %s: %w", jobs.ErrConfig, uri, err)
			}
			m, err := scoring.NewModel(cb, cfg.BatchSize)
			if err != nil {
				return v, fmt.Errorf("%w: challenger %s: compile: %w", jobs.ErrConfig, uri, err)
			}
			_ = m.Close()
			v.Challengers = append(v.Challengers, cb)
		}
		for _, t := range []struct {
			name string
			tc   TableConfig
		}{{"backfill", cfg.Backfill}, {"queue", cfg.Queue}} {
			s := bu.Features.InputSchema(t.tc.IDColumns, false)
			v.Tables = append(v.Tables, TableCheck{Job: t.name, Columns: s.NumFields(), Reads: input.URI(t.tc.Dir), Table: t.tc.Table})
		}
	}
	var errs []error
	for _, dir := range []string{cfg.Backfill.Dir, cfg.Queue.Dir} {
		if _, err := input.List(ctx, dir+"/"); err != nil {
			errs = append(errs, fmt.Errorf("input store: %w", err))
		}
	}
	if _, err := output.List(ctx, "_scorer/"); err != nil {
		errs = append(errs, fmt.Errorf("output store: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return v, err
	}
	v.StoresOK = true
	return v, nil
}

// bundlePresent says whether the model URI holds a bundle (its
// model.yaml): a missing one is not an error for validate.
func bundlePresent(ctx context.Context, uri string) (bool, error) {
	if _, ok, _ := registry.ParseRef(uri); ok {
		return true, nil // a registry reference must resolve: LoadModel says why not
	}
	b, err := store.Open(ctx, uri)
	if err != nil {
		return false, UsageError{fmt.Errorf("model: %w", err)}
	}
	if _, err := b.Stat(ctx, "model.yaml"); errors.Is(err, store.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("model: %w", err)
	}
	return true, nil
}

// validateTraining loads train.spec as scorer train does and reads the
// first record of the newest input file under backfill.dir with the
// spec's columns (label and time column included): a column missing from
// the input is reported as train would, as a configuration error.
func (a *App) validateTraining(ctx context.Context, input store.Bucket, v *Validation) error {
	tc := a.cfg.Train
	spec, err := features.LoadSpec(tc.Spec)
	if err != nil {
		return UsageError{fmt.Errorf("train.spec: %w", err)}
	}
	if spec.Label == "" {
		return UsageError{fmt.Errorf("train.spec %s: %w: no label column (training needs one)", tc.Spec, features.ErrSpec)}
	}
	v.TrainSpec, v.TrainFeatures = tc.Spec, len(spec.Features)
	files, _, err := jobs.ListInputs(ctx, input, a.cfg.Backfill.Dir)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return nil // nothing to sample yet
	}
	sample := files[len(files)-1] // keys sort by month: the newest
	schema := spec.InputSchema(nil, true)
	if tc.Split == jobs.SplitTime && tc.TimeColumn != "" && len(schema.FieldIndices(tc.TimeColumn)) == 0 {
		schema = arrow.NewSchema(append(schema.Fields(), arrow.Field{Name: tc.TimeColumn, Type: arrow.FixedWidthTypes.Timestamp_us, Nullable: true}), nil)
	}
	src, err := readers.Open(ctx, input, []store.ObjectInfo{sample}, readers.Options{
		Schema: schema, BatchSize: 1024, Concurrency: 1, CSV: a.cfg.CSV.CSVOptions(),
		OnBadRow: func(readers.RowError) error { return nil }, // values are train's to judge; columns are checked here
	})
	if err == nil {
		var rec arrow.RecordBatch
		rec, err = src.Read(ctx)
		if err == nil {
			rec.Release()
		} else if errors.Is(err, io.EOF) {
			err = nil
		}
		_ = src.Close() // only stops the decoders; errors came through Read
	}
	if err != nil {
		return UsageError{fmt.Errorf("train.spec %s against input sample %s: %w", tc.Spec, input.URI(sample.Key), err)}
	}
	v.Sample, v.SampleColumns = input.URI(sample.Key), schema.NumFields()
	return nil
}
