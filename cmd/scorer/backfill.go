package main

import (
	"github.com/spf13/cobra"

	"github.com/adtech/scorer/internal/app"
)

func (c *cli) backfillCmd() *cobra.Command {
	var (
		month            monthValue
		shard, shardPlan string
		dryRun, abandon  bool
		format           *formatValue
	)
	cmd := &cobra.Command{
		Use:   "backfill --month YYYY-MM [flags]",
		Short: "score one month of ad dumps and replace that month's partition",
		Long: `Score one month of ad dumps (<input>/<backfill.dir>/YYYY-MM/) and replace the
month's partition of the backfill table (<output>/<backfill.table>/month=YYYY-MM/)
as a whole. The previous partition stays as it was unless the run succeeds.

With --dry-run it prints which files it would read and which partition it
would replace, and touches nothing: no lease, no run record, no output.`,
		Example: `  scorer backfill --month 2020-09
  scorer backfill --month 2020-09 --dry-run
  scorer backfill --month 2020-09 --shard 3/8 --output gs://analytics/scorer
  scorer backfill --month 2020-09 -o json`,
		Args: cobra.NoArgs,
	}
	fs := cmd.Flags()
	fs.Var(&month, "month", "month to score (required)")
	fs.StringVar(&shard, "shard", "", `score shard i of N ("i/N", 0-based) of the month; default from
$JOB_COMPLETION_INDEX and $SCORER_SHARD_COUNT (Kubernetes Indexed Job)
or $CLOUD_RUN_TASK_INDEX and $CLOUD_RUN_TASK_COUNT (Cloud Run Jobs)`)
	fs.StringVar(&shardPlan, "shard-plan", "", `name of the sharded backfill this shard belongs to (default $SCORER_SHARD_PLAN),
e.g. the Kubernetes Job's name: a shard retried after the month was published then does nothing`)
	fs.BoolVar(&dryRun, "dry-run", false, "print what would be read and replaced; touch nothing")
	format = formatFlag(fs, "the summary")
	fs.BoolVar(&abandon, "abandon-shards", false, "deprecated: use scorer shards abandon --month YYYY-MM")
	_ = fs.MarkHidden("abandon-shards") // exists: cannot fail
	c.storeFlags(cmd)
	c.runFlags(cmd)
	exitCodes(cmd, codes(0, 1, 2, 3, 4, 7))

	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := requireMonth(month); err != nil {
			return err
		}
		cfg, err := c.config(cmd)
		if err != nil {
			return err
		}
		env := c.env
		sh, err := app.ShardFromEnv(shard, env.getenv)
		if err != nil {
			return app.UsageError{Err: err}
		}
		if shardPlan == "" {
			shardPlan, _ = env.getenv("SCORER_SHARD_PLAN")
		}
		a := c.newApp(cfg)
		ctx := cmd.Context()
		if abandon {
			// The old spelling, kept for scripts: no confirmation.
			env.log.Warn("--abandon-shards is deprecated: use scorer shards abandon --month " + string(month))
			return abandonShards(ctx, env, a, string(month))
		}
		req := app.BackfillRequest{Month: string(month), Shard: sh, ShardPlan: shardPlan}
		if dryRun {
			p, err := a.PlanBackfill(ctx, req)
			if err != nil {
				return err
			}
			return printPlan(env.stdout, *format, p)
		}
		sum, err := a.Backfill(ctx, req)
		if err != nil {
			return err
		}
		return printSummary(env.stdout, *format, cfg, sum, a.Retries())
	}
	return cmd
}
