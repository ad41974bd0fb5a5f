package main

import (
	"github.com/spf13/cobra"

	"github.com/adtech/scorer/internal/app"
)

func (c *cli) scheduleCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule [flags]",
		Short: "run the scheduler daemon: the configured jobs, catch-up, /metrics",
		Long: `Run the configured jobs (schedule.jobs) on their cron schedules until SIGTERM
or SIGINT: a queue run (as scorer run, for the scheduled day) or a backfill
(as scorer backfill, of the previous month). A job still running when its next
time comes skips that time; runs that were due while no scheduler ran are
caught up at start, oldest first; failures safe to retry (exit codes 1 and 4)
are retried with backoff. Every run is recorded in <output>/_scorer/runs/ (see
scorer history). /healthz, /readyz and /metrics are served on schedule.listen.

On SIGTERM it starts nothing more and waits up to schedule.shutdown_timeout for
a running run; past that it cancels the run (nothing of it is published; it
runs again at the next start) and exits 5. It exits 0 when nothing was cut
short. See docs/scheduler.md.`,
		Example: `  scorer schedule --config testdata/schedule-demo.yaml`,
		Args:    cobra.NoArgs,
	}
	c.stringFlag(cmd, "listen", "", `HTTP address for /healthz, /readyz and /metrics, "" for none (config: schedule.listen)`,
		func(c *app.Config) *string { return &c.Schedule.Listen })
	c.storeFlags(cmd)
	c.runFlags(cmd)
	exitCodes(cmd, map[int]string{
		app.ExitOK:      "stopped by a signal, no run cut short",
		app.ExitRetry:   "failed (e.g. could not listen): safe to restart",
		app.ExitUsage:   "configuration error: fix it first",
		app.ExitAborted: exitHelp[app.ExitAborted] + ": restart, the run is caught up",
	})
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := c.config(cmd)
		if err != nil {
			return err
		}
		cfg.Progress = "off"
		d, err := app.NewDaemon(cmd.Context(), c.newApp(cfg), c.env.sched)
		if err != nil {
			return err
		}
		return d.Run(cmd.Context())
	}
	return cmd
}
