package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/adtech/scorer/internal/app"
	"github.com/adtech/scorer/scoring/bundle"
)

func (c *cli) validateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate [flags]",
		Short: "check config, feature spec and model bundle without scoring",
		Long: `Check the configuration, the training feature spec (train.spec, strictly:
an unknown kind or key is an error naming the feature) against a sample of
the input (the newest file under backfill.dir must have every column it
reads), the model bundle if there is one (its weights, its feature spec and
statistics, that its graph compiles, and the skew guard: its reference rows
recomputed from their raw values must give the features and scores recorded
when it was made) and that both stores can be listed, without scoring or
training anything. Without a bundle (before the first
scorer train) the training set-up alone is checked; with one, train.spec is
checked only if the file exists. Prints what it checked; exits 2 on the
first configuration or spec problem.`,
		Args: cobra.NoArgs,
	}
	c.storeFlags(cmd)
	c.runFlags(cmd)
	c.stringFlag(cmd, "spec", "", "training feature spec file to check (config: train.spec)", func(c *app.Config) *string { return &c.Train.Spec })
	exitCodes(cmd, codes(0, 1, 2))
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := c.config(cmd)
		if err != nil {
			return err
		}
		w := &errWriter{w: c.env.stdout}
		w.printf("config: ok\n")
		v, err := c.newApp(cfg).Validate(cmd.Context())
		if v.TrainSpec != "" {
			w.printf("train spec: %s, %d features\n", v.TrainSpec, v.TrainFeatures)
		}
		if v.Sample != "" {
			w.printf("input sample: %s has the %d columns train reads\n", v.Sample, v.SampleColumns)
		}
		if v.NoBundle {
			w.printf("model: no bundle at %s yet (scorer train makes one)\n", cfg.Model)
		}
		if bu := v.Bundle; bu != nil {
			images := ""
			if t := bu.Arch.Image; t != nil {
				images = fmt.Sprintf(" + %d image inputs (%d px, tower %v to %d)", bu.Inputs.Images, bu.Inputs.ImageSize, t.Channels, t.Embedding)
			}
			w.printf("model: %s %s (%s), %d features -> %d dense + %d indexed inputs%s, compiles, %s, %s\n",
				bu.Name, bu.Version, bu.Arch.Kind, len(bu.Features.Features), v.Dense, v.Indexed, images, skewGuard(bu), trainingProfile(bu))
		}
		for _, cb := range v.Challengers {
			w.printf("challenger: %s %s (%s), compiles, %s\n", cb.Name, cb.Version, cb.Arch.Kind, skewGuard(cb))
		}
		for _, t := range v.Tables {
			w.printf("%s: reads %d columns from %s, writes table %s\n", t.Job, t.Columns, t.Reads, t.Table)
		}
		if err != nil {
			return err
		}
		w.printf("stores: ok\n")
		return w.err
	}
	return cmd
}

// trainingProfile says what a bundle's drift is measured against.
func trainingProfile(bu *bundle.Bundle) string {
	if bu.Profile == nil {
		return "no training profile (drift against the previous partition only)"
	}
	return fmt.Sprintf("training profile of %d rows (drift)", bu.Profile.Rows)
}

// skewGuard says what the skew guard checked of a loaded bundle (loading
// it ran the guard: a mismatch is an error before this is printed).
func skewGuard(bu *bundle.Bundle) string {
	if len(bu.Reference) == 0 {
		return "no reference rows (skew guard off)"
	}
	return fmt.Sprintf("%d reference rows reproduce (skew guard)", len(bu.Reference))
}
