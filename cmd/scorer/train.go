package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/adtech/scorer/internal/app"
	"github.com/adtech/scorer/scoring/bundle"
)

func (c *cli) trainCmd() *cobra.Command {
	var (
		month monthValue
		out   string
	)
	cmd := &cobra.Command{
		Use:   "train --month YYYY-MM --out DIR [flags]",
		Short: "train a model bundle from a labelled month of dumps",
		Long: `Train a model bundle from a labelled month of ad dumps
(<input>/<backfill.dir>/YYYY-MM/, label column named by the feature spec).
The feature statistics are fitted on the month; a fraction of the rows
(train.validation_fraction: the latest by train.time_column, or the last in
input order; --split random for a seeded random choice) is held out to pick
the epoch: training stops train.patience epochs after the lowest validation
log loss and keeps that epoch's weights (--refit then retrains on every row
for that many epochs). The validation and training metrics are printed,
validation first, and recorded in the bundle with the exact command line.
The bundle also keeps 16 reference rows of the month (reference.json: raw
values, features, score) that every load recomputes (the skew guard,
docs/bundle.md). docs/training.md says how to choose the settings.`,
		Example: `  scorer train --month 2020-08 --out models/ctr-2020-08`,
		Args:    cobra.NoArgs,
	}
	fs := cmd.Flags()
	fs.Var(&month, "month", "labelled month to train on (required)")
	fs.StringVar(&out, "out", "", "folder or URI to write the bundle to (required)")
	c.stringFlag(cmd, "spec", "", "feature spec file (config: train.spec)", func(c *app.Config) *string { return &c.Train.Spec })
	c.stringFlag(cmd, "name", "", "bundle name (config: train.name)", func(c *app.Config) *string { return &c.Train.Name })
	c.stringFlag(cmd, "version", "", "bundle version (config: train.version; empty: the month)", func(c *app.Config) *string { return &c.Train.Version })
	c.stringFlag(cmd, "input", "", "input store URI (config: input)", func(c *app.Config) *string { return &c.Input })
	c.trainFlags(cmd)
	exitCodes(cmd, codes(0, 1, 2, 3))

	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if month == "" || out == "" {
			return cliError{fmt.Errorf("--month and --out are required")}
		}
		cfg, err := c.config(cmd)
		if err != nil {
			return err
		}
		bu, uri, err := c.newApp(cfg).Train(cmd.Context(), app.TrainRequest{
			Month: string(month), Out: out, Command: "scorer " + strings.Join(c.args, " "),
		})
		if err != nil {
			return err
		}
		w := &errWriter{w: c.env.stdout}
		printTrained(w, bu, string(month), uri)
		return w.err
	}
	return cmd
}

// trainFlags adds a flag for every key of the train section.
func (c *cli) trainFlags(cmd *cobra.Command) {
	c.stringFlag(cmd, "arch", "", "architecture: wide, deep, wide_deep (config: train.arch)", func(c *app.Config) *string { return &c.Train.Arch })
	c.intFlag(cmd, "embedding-dim", "embedding size of the deep part (config: train.embedding_dim)", func(c *app.Config) *int { return &c.Train.EmbeddingDim })
	c.intsFlag(cmd, "hidden", "hidden layer sizes of the deep part, comma-separated; --hidden= for none (config: train.hidden)", func(c *app.Config) *[]int { return &c.Train.Hidden })
	c.intFlag(cmd, "epochs", "most training epochs (config: train.epochs)", func(c *app.Config) *int { return &c.Train.Epochs })
	c.intFlag(cmd, "patience", "stop after this many epochs without a lower validation log loss; 0 = never early (config: train.patience)", func(c *app.Config) *int { return &c.Train.Patience })
	c.intFlag(cmd, "batch-size", "rows per optimiser step (config: train.batch_size)", func(c *app.Config) *int { return &c.Train.BatchSize })
	c.floatFlag(cmd, "learning-rate", "Adam step size (config: train.learning_rate)", func(c *app.Config) *float64 { return &c.Train.LearningRate })
	c.floatFlag(cmd, "l2", "L2 penalty on every weight (config: train.l2)", func(c *app.Config) *float64 { return &c.Train.L2 })
	c.floatFlag(cmd, "validation-fraction", "fraction of rows held out to pick the epoch and measure the model; 0 = none (config: train.validation_fraction)", func(c *app.Config) *float64 { return &c.Train.ValidationFraction })
	c.stringFlag(cmd, "split", "", "validation rows: time (the latest) or random (config: train.split)", func(c *app.Config) *string { return &c.Train.Split })
	c.stringFlag(cmd, "time-column", "", "timestamp column ordering the rows for --split time; empty = input order (config: train.time_column)", func(c *app.Config) *string { return &c.Train.TimeColumn })
	c.boolFlag(cmd, "refit", "retrain on every row for the best epoch count (config: train.refit)", func(c *app.Config) *bool { return &c.Train.Refit })
	c.int64Flag(cmd, "seed", "random seed: initial weights, row order, random split (config: train.seed)", func(c *app.Config) *int64 { return &c.Train.Seed })
}

// printTrained prints what train made: the bundle, how the epoch was
// chosen, and the metrics, validation first (the model's quality) and
// training second (how well it fits the rows it saw).
func printTrained(w *errWriter, bu *bundle.Bundle, month, uri string) {
	t := bu.Training
	w.printf("trained %s %s (%s) on %d rows of %s -> %s\n", bu.Name, bu.Version, bu.Arch.Kind, t.Rows, month, uri)
	switch {
	case t.BestEpoch > 0 && t.Refit:
		w.printf("  epochs: best %d on the validation rows; refit on every row for %d\n", t.BestEpoch, t.Epochs)
	case t.BestEpoch > 0:
		w.printf("  epochs: kept %d of %d run (lowest validation log loss; patience %d)\n", t.BestEpoch, t.Epochs, t.Patience)
	default:
		w.printf("  epochs: %d, no validation split (nothing checks for overfitting)\n", t.Epochs)
	}
	cols := []struct{ name, prefix string }{{"validation", "val_"}, {"training", ""}}
	if _, ok := bu.Metrics["val_logloss"]; !ok {
		cols = cols[1:]
	}
	w.printf("  %-26s", "")
	for _, c := range cols {
		w.printf(" %12s", c.name)
	}
	w.printf("\n")
	for _, r := range []struct{ label, key, format string }{
		{"rows", "rows", "%12.0f"},
		{"AUC", "auc", "%12.4f"},
		{"log loss", "logloss", "%12.4f"},
		{"log loss, constant", "logloss_const", "%12.4f"},
		{"calibration (mean/rate)", "calibration", "%12.3f"},
	} {
		w.printf("  %-26s", r.label)
		for _, c := range cols {
			if v, ok := bu.Metrics[c.prefix+r.key]; ok {
				w.printf(" "+r.format, v)
			} else {
				w.printf(" %12s", "-")
			}
		}
		w.printf("\n")
	}
	if t.Refit {
		w.printf("  (validation: the model before the refit; training: the refitted model on every row)\n")
	}
	w.printf("  reference rows: %d (reference.json; the skew guard recomputes them at every load)\n", len(bu.Reference))
	if ll, c := bu.Metrics["val_logloss"], bu.Metrics["val_logloss_const"]; c > 0 && ll >= c {
		w.printf("  warning: validation log loss %.4f is no better than the constant predictor's %.4f (docs/training.md)\n", ll, c)
	}
}
