package app

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/training"
)

// TrainRequest asks for a model bundle trained on a labelled month. The
// rest (architecture, epochs, ...) comes from the train section of the
// configuration.
type TrainRequest struct {
	Month string // YYYY-MM
	Out   string // folder or URI the bundle is written to
	// Command is the command line, recorded in the bundle.
	Command string
}

// Train trains a model bundle on a labelled month of ad dumps and saves it;
// it returns the bundle and the URI it was saved to.
func (a *App) Train(ctx context.Context, r TrainRequest) (*bundle.Bundle, string, error) {
	if r.Month == "" || r.Out == "" {
		return nil, "", UsageError{errors.New("train: a month and an output folder are required")}
	}
	cfg := a.cfg
	tc := cfg.Train
	if err := tc.Validate(); err != nil {
		return nil, "", UsageError{fmt.Errorf("invalid configuration:\n%w", err)}
	}
	s, err := features.LoadSpec(tc.Spec)
	if err != nil {
		return nil, "", UsageError{err}
	}
	input, err := store.Open(ctx, cfg.Input)
	if err != nil {
		return nil, "", UsageError{fmt.Errorf("input: %w", err)}
	}
	outB, err := store.Open(ctx, r.Out)
	if err != nil {
		return nil, "", UsageError{fmt.Errorf("out: %w", err)}
	}
	limit, _ := jobs.ParseBadRowLimit(cfg.MaxBadRows)
	trainCfg := training.DefaultConfig()
	trainCfg.Arch = tc.Architecture()
	trainCfg.Epochs, trainCfg.BatchSize, trainCfg.Patience = tc.Epochs, tc.BatchSize, tc.Patience
	trainCfg.LearningRate, trainCfg.L2, trainCfg.Seed = tc.LearningRate, tc.L2, tc.Seed

	bu, err := jobs.Train(ctx, jobs.TrainJob{
		Input: input, Dir: cfg.Backfill.Dir, Month: r.Month, Spec: s,
		Name: tc.Name, Version: tc.Version, Config: trainCfg,
		ValidationFraction: tc.ValidationFraction, Split: tc.Split, TimeColumn: tc.TimeColumn, Refit: tc.Refit,
		BatchSize: cfg.BatchSize,
		CSV:       cfg.CSV.CSVOptions(), BadRows: limit,
		Command: r.Command, Log: a.log,
		Data: strings.TrimSuffix(cfg.Input, "/") + "/" + path.Join(cfg.Backfill.Dir, r.Month),
	})
	if err != nil {
		return nil, "", fmt.Errorf("train on %s: %w", r.Month, err)
	}
	if err := bu.Save(ctx, outB, ""); err != nil {
		return nil, "", fmt.Errorf("save bundle: %w", err)
	}
	return bu, outB.URI(""), nil
}

// Architecture is the model architecture the train section asks for: a
// wide model (a logistic regression) has no embeddings or hidden layers,
// so the deep settings are left out of it rather than refused.
func (t TrainConfig) Architecture() bundle.Architecture {
	if bundle.Kind(t.Arch) == bundle.Wide {
		return bundle.Architecture{Kind: bundle.Wide}
	}
	return bundle.Architecture{Kind: bundle.Kind(t.Arch), EmbeddingDim: t.EmbeddingDim, Hidden: t.Hidden}
}
