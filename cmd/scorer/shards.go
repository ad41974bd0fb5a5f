package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/adtech/scorer/internal/app"
)

func (c *cli) shardsCmd() *cobra.Command {
	shards := &cobra.Command{
		Use:   "shards",
		Short: "manage sharded backfills in progress",
		Long: `Manage sharded backfills (scorer backfill --shard i/N) in the output store.
See docs/operations.md.`,
		Args: cobra.NoArgs,
	}
	var (
		month monthValue
		yes   bool
	)
	abandon := &cobra.Command{
		Use:   "abandon --month YYYY-MM [--yes] [flags]",
		Short: "delete a month's sharded backfill in progress (plan, shard records, staged parts)",
		Long: `Delete the month's sharded backfill in progress: its plan, its shard records
and its staged parts, under the month's lease, so that the month can be
backfilled again (with another shard count, or after an input was replaced).
The published partition is not touched. With none in progress it does nothing.

It asks for confirmation on a terminal; when stdin is not a terminal
(a script, a Job) it refuses unless --yes is given.`,
		Example: `  scorer shards abandon --month 2020-09
  scorer shards abandon --month 2020-09 --yes --output gs://analytics/scorer`,
		Args: cobra.NoArgs,
	}
	fs := abandon.Flags()
	fs.Var(&month, "month", "month whose sharded backfill to abandon (required)")
	fs.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation (required when stdin is not a terminal)")
	c.storeFlags(abandon)
	exitCodes(abandon, codes(0, 1, 2, 4))
	abandon.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := requireMonth(month); err != nil {
			return err
		}
		cfg, err := c.config(cmd)
		if err != nil {
			return err
		}
		env := c.env
		if !yes {
			if !env.stdinTerminal {
				return cliError{errors.New("refusing to abandon shards without confirmation: stdin is not a terminal; pass --yes")}
			}
			_, _ = fmt.Fprintf(env.stderr, "Delete the sharded backfill of %s in progress in %s (plan, shard records, staged parts)? [y/N] ", month, cfg.Output)
			answer, _ := bufio.NewReader(env.stdin).ReadString('\n')
			if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
				_, err := fmt.Fprintln(env.stdout, "nothing abandoned")
				return err
			}
		}
		return abandonShards(cmd.Context(), env, c.newApp(cfg), string(month))
	}
	shards.AddCommand(abandon)
	return shards
}

func abandonShards(ctx context.Context, env *environment, a *app.App, month string) error {
	if err := a.AbandonShards(ctx, month); err != nil {
		return err
	}
	_, err := fmt.Fprintf(env.stdout, "sharded backfill of %s abandoned (if there was one)\n", month)
	return err
}
