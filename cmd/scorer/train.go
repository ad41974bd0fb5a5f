package main

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/training"
)

func runTrain(ctx context.Context, env *environment, args []string) error {
	f := newFlags("train", "--month YYYY-MM --out DIR [flags]", `
Train a model bundle from a labelled month of ad dumps
(<input>/<backfill.dir>/YYYY-MM/, label column named by the feature spec).
The feature statistics are fitted on the month, a seeded fraction of the rows
(train.validation_fraction) is held out, and the validation AUC and log loss
are recorded in the bundle with the exact command line.`, env.stderr)
	month := f.fs.String("month", "", "labelled month to train on, YYYY-MM (required)")
	out := f.fs.String("out", "", "folder or URI to write the bundle to (required)")
	spec := f.fs.String("spec", "", "feature spec file (default: train.spec)")
	name := f.fs.String("name", "", "bundle name (default: train.name)")
	ver := f.fs.String("version", "", "bundle version (default: train.version, else the month)")
	f.override("arch", "architecture: wide, deep, wide_deep", func(c *Config, v string) error { c.Train.Arch = v; return nil })
	f.override("epochs", "training epochs", intSetter(func(c *Config) *int { return &c.Train.Epochs }))
	f.override("input", "input store URI", func(c *Config, v string) error { c.Input = v; return nil })
	f.logFlags()
	cfg, err := f.parse(args, env)
	if err != nil {
		return err
	}
	if *month == "" || *out == "" {
		return usageError{fmt.Errorf("--month and --out are required")}
	}
	tc := cfg.Train
	if *spec != "" {
		tc.Spec = *spec
	}
	if *name != "" {
		tc.Name = *name
	}
	if *ver != "" {
		tc.Version = *ver
	}
	s, err := features.LoadSpec(tc.Spec)
	if err != nil {
		return usageError{err}
	}
	input, err := store.Open(ctx, cfg.Input)
	if err != nil {
		return usageError{fmt.Errorf("input: %w", err)}
	}
	outB, err := store.Open(ctx, *out)
	if err != nil {
		return usageError{fmt.Errorf("out: %w", err)}
	}
	limit, _ := jobs.ParseBadRowLimit(cfg.MaxBadRows)
	trainCfg := training.DefaultConfig()
	trainCfg.Arch = bundle.Architecture{Kind: bundle.Kind(tc.Arch), EmbeddingDim: tc.EmbeddingDim, Hidden: tc.Hidden}
	trainCfg.Epochs, trainCfg.BatchSize = tc.Epochs, tc.BatchSize
	trainCfg.LearningRate, trainCfg.L2, trainCfg.Seed = tc.LearningRate, tc.L2, tc.Seed

	bu, err := jobs.Train(ctx, jobs.TrainJob{
		Input: input, Dir: cfg.Backfill.Dir, Month: *month, Spec: s,
		Name: tc.Name, Version: tc.Version, Config: trainCfg,
		ValidationFraction: tc.ValidationFraction, BatchSize: cfg.BatchSize,
		CSV: csvOptions(cfg.CSV), BadRows: limit,
		Command: "scorer train " + strings.Join(args, " "), Log: env.log,
		Data: strings.TrimSuffix(cfg.Input, "/") + "/" + path.Join(cfg.Backfill.Dir, *month),
	})
	if err != nil {
		return fmt.Errorf("train on %s: %w", *month, err)
	}
	if err := bu.Save(ctx, outB, ""); err != nil {
		return fmt.Errorf("save bundle: %w", err)
	}
	fmt.Fprintf(env.stdout, "trained %s %s (%s) on %d rows of %s -> %s\n", bu.Name, bu.Version, bu.Arch.Kind, bu.Training.Rows, *month, outB.URI(""))
	keys := make([]string, 0, len(bu.Metrics))
	for k := range bu.Metrics {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(env.stdout, "  %-12s %.6g\n", k, bu.Metrics[k])
	}
	return nil
}
