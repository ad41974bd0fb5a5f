package main

import (
	"github.com/spf13/cobra"
)

func (c *cli) validateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate [flags]",
		Short: "check config, feature spec and model bundle without scoring",
		Long: `Check the configuration, the model bundle (its weights, its feature spec and
statistics, and that its graph compiles) and that both stores can be listed,
without scoring anything. Prints what it checked; exits 2 on the first
configuration problem.`,
		Args: cobra.NoArgs,
	}
	c.storeFlags(cmd)
	c.runFlags(cmd)
	exitCodes(cmd, codes(0, 1, 2))
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := c.config(cmd)
		if err != nil {
			return err
		}
		w := &errWriter{w: c.env.stdout}
		w.printf("config: ok\n")
		v, err := c.newApp(cfg).Validate(cmd.Context())
		if bu := v.Bundle; bu != nil {
			w.printf("model: %s %s (%s), %d features -> %d dense + %d indexed inputs, compiles\n",
				bu.Name, bu.Version, bu.Arch.Kind, len(bu.Features.Features), v.Dense, v.Indexed)
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
