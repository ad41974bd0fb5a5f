package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/bundle"
)

// Validation is what Validate checked.
type Validation struct {
	// Bundle is the model bundle, loaded and compiled; nil if it failed.
	Bundle *bundle.Bundle
	// Dense and Indexed count the model's inputs after the feature pipeline.
	Dense, Indexed int
	// Tables are the two jobs' inputs and outputs.
	Tables []TableCheck
	// StoresOK: both stores could be listed.
	StoresOK bool
}

// TableCheck is one job's input and output as configured.
type TableCheck struct {
	Job     string // backfill, queue
	Columns int    // columns read from each input file
	Reads   string // the input folder's URI
	Table   string
}

// Validate checks the model bundle (its weights, its feature spec and
// statistics, and that its graph compiles) and that both stores can be
// listed, without scoring anything. What it checked before the first
// problem is returned with the error.
func (a *App) Validate(ctx context.Context) (*Validation, error) {
	v := &Validation{}
	cfg := a.cfg
	o, err := a.Open(ctx)
	if err != nil {
		return v, err
	}
	bu := o.Bundle
	fx, err := features.NewPipeline(bu.Features, bu.Stats)
	if err != nil {
		return v, fmt.Errorf("%w: model %s: %w", jobs.ErrConfig, cfg.Model, err)
	}
	m, err := scoring.NewModel(bu, cfg.BatchSize)
	if err != nil {
		return v, fmt.Errorf("%w: model %s: compile: %w", jobs.ErrConfig, cfg.Model, err)
	}
	_ = m.Close()
	v.Bundle, v.Dense, v.Indexed = bu, fx.Dense(), len(fx.Cardinalities())
	for _, t := range []struct {
		name string
		tc   TableConfig
	}{{"backfill", cfg.Backfill}, {"queue", cfg.Queue}} {
		s := bu.Features.InputSchema(t.tc.IDColumns, false)
		v.Tables = append(v.Tables, TableCheck{Job: t.name, Columns: s.NumFields(), Reads: o.Input.URI(t.tc.Dir), Table: t.tc.Table})
	}
	var errs []error
	for _, dir := range []string{cfg.Backfill.Dir, cfg.Queue.Dir} {
		if _, err := o.Input.List(ctx, dir+"/"); err != nil {
			errs = append(errs, fmt.Errorf("input store: %w", err))
		}
	}
	if _, err := o.Output.List(ctx, "_scorer/"); err != nil {
		errs = append(errs, fmt.Errorf("output store: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return v, err
	}
	v.StoresOK = true
	return v, nil
}
