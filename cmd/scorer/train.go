package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/adtech/scorer/internal/app"
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
The feature statistics are fitted on the month, a seeded fraction of the rows
(train.validation_fraction) is held out, and the validation AUC and log loss
are recorded in the bundle with the exact command line.`,
		Example: `  scorer train --month 2020-08 --out models/ctr-2020-08`,
		Args:    cobra.NoArgs,
	}
	fs := cmd.Flags()
	fs.Var(&month, "month", "labelled month to train on (required)")
	fs.StringVar(&out, "out", "", "folder or URI to write the bundle to (required)")
	c.stringFlag(cmd, "spec", "", "feature spec file (config: train.spec)", func(c *app.Config) *string { return &c.Train.Spec })
	c.stringFlag(cmd, "name", "", "bundle name (config: train.name)", func(c *app.Config) *string { return &c.Train.Name })
	c.stringFlag(cmd, "version", "", "bundle version (config: train.version; empty: the month)", func(c *app.Config) *string { return &c.Train.Version })
	c.stringFlag(cmd, "arch", "", "architecture: wide, deep, wide_deep (config: train.arch)", func(c *app.Config) *string { return &c.Train.Arch })
	c.intFlag(cmd, "epochs", "training epochs (config: train.epochs)", func(c *app.Config) *int { return &c.Train.Epochs })
	c.stringFlag(cmd, "input", "", "input store URI (config: input)", func(c *app.Config) *string { return &c.Input })
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
		w.printf("trained %s %s (%s) on %d rows of %s -> %s\n", bu.Name, bu.Version, bu.Arch.Kind, bu.Training.Rows, month, uri)
		keys := make([]string, 0, len(bu.Metrics))
		for k := range bu.Metrics {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			w.printf("  %-12s %.6g\n", k, bu.Metrics[k])
		}
		return w.err
	}
	return cmd
}
