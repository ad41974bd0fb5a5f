package main

import (
	"github.com/spf13/cobra"

	"github.com/adtech/scorer/internal/app"
)

func (c *cli) queueCmd() *cobra.Command {
	var (
		date   dateValue
		dryRun bool
		format *formatValue
	)
	cmd := &cobra.Command{
		Use:   "run [flags]",
		Short: "score every queued request not yet scored, exactly once",
		Long: `Score every queued request file (<input>/<queue.dir>/) that no earlier run
scored, exactly once, appending the scores to the day's partition of the queue
table (<output>/<queue.table>/date=YYYY-MM-DD/). With nothing queued it exits 0
and writes nothing.

With --dry-run it prints which files it would read, which it skips as already
scored (the ledger of committed runs) and where it would append, and touches
nothing: no lease, no run record, no output.`,
		Example: `  scorer run
  scorer run --date 2020-09-02 --dry-run
  scorer run -o json | jq .rows_scored`,
		Args: cobra.NoArgs,
	}
	fs := cmd.Flags()
	fs.Var(&date, "date", "partition date (default: today, UTC)")
	fs.BoolVar(&dryRun, "dry-run", false, "print what would be read and skipped; touch nothing")
	format = formatFlag(fs, "the summary")
	c.storeFlags(cmd)
	c.runFlags(cmd)
	exitCodes(cmd, codes(0, 1, 2, 3, 4, 7))

	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := c.config(cmd)
		if err != nil {
			return err
		}
		a := c.newApp(cfg)
		req := app.QueueRequest{Date: string(date)}
		if dryRun {
			p, err := a.PlanQueue(cmd.Context(), req)
			if err != nil {
				return err
			}
			return printPlan(c.env.stdout, *format, p)
		}
		sum, err := a.Queue(cmd.Context(), req)
		if err != nil {
			return err
		}
		return printSummary(c.env.stdout, *format, cfg, sum, a.Retries())
	}
	return cmd
}
