package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/scoring"
)

func runValidate(ctx context.Context, env *environment, args []string) error {
	f := newFlags("validate", "[flags]", `
Check the configuration, the model bundle (its weights, its feature spec and
statistics, and that its graph compiles) and that both stores can be listed,
without scoring anything. Prints what it checked; exits 2 on the first
configuration problem.`, env.stderr)
	f.storeFlags().runFlags().logFlags()
	cfg, err := f.parse(args, env)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, "config: ok")
	o, err := open(ctx, cfg)
	if err != nil {
		return err
	}
	bu := o.bundle
	fx, err := features.NewPipeline(bu.Features, bu.Stats)
	if err != nil {
		return fmt.Errorf("%w: model %s: %w", jobs.ErrConfig, cfg.Model, err)
	}
	m, err := scoring.NewModel(bu, cfg.BatchSize)
	if err != nil {
		return fmt.Errorf("%w: model %s: compile: %w", jobs.ErrConfig, cfg.Model, err)
	}
	_ = m.Close()
	fmt.Fprintf(env.stdout, "model: %s %s (%s), %d features -> %d dense + %d indexed inputs, compiles\n",
		bu.Name, bu.Version, bu.Arch.Kind, len(bu.Features.Features), fx.Dense(), len(fx.Cardinalities()))
	for _, t := range []struct {
		name string
		tc   TableConfig
	}{{"backfill", cfg.Backfill}, {"queue", cfg.Queue}} {
		s := bu.Features.InputSchema(t.tc.IDColumns, false)
		fmt.Fprintf(env.stdout, "%s: reads %d columns from %s, writes table %s\n", t.name, s.NumFields(), o.input.URI(t.tc.Dir), t.tc.Table)
	}
	var errs []error
	for _, c := range []struct{ name, dir string }{{"input", cfg.Backfill.Dir}, {"input", cfg.Queue.Dir}} {
		if _, err := o.input.List(ctx, c.dir+"/"); err != nil {
			errs = append(errs, fmt.Errorf("%s store: %w", c.name, err))
		}
	}
	if _, err := o.output.List(ctx, "_scorer/"); err != nil {
		errs = append(errs, fmt.Errorf("output store: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, "stores: ok")
	return nil
}
