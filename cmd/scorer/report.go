package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/adtech/scorer/internal/app"
)

func (c *cli) reportCmd() *cobra.Command {
	var (
		month monthValue
		date  dateValue
	)
	cmd := &cobra.Command{
		Use:   "report (--month YYYY-MM | --date YYYY-MM-DD) [flags]",
		Short: "write the HTML report of a scored partition: scores, drift, evaluation",
		Long: `Write one self-contained HTML page about a published partition into the
output store, at reports/<table>/<partition>.html: the score histogram
against the training data's, every input feature's drift (population
stability index and Jensen-Shannon distance against the model's training
profile and the previous partition, sorted by severity, with the PSI of the
last 12 partitions as a sparkline), missing-rate changes, and the
champion's evaluation metrics and calibration curve when scorer evaluate
has evaluated the partition. The page opens offline: charts are inline SVG.

Every scoring run and every evaluation writes its partition's report
itself; this command writes it again (after a change of scorer, or from
another machine). It reads only the published tables (<table>_profiles,
<table>_drift, <table>_rejects and the evaluations). See docs/monitoring.md.`,
		Example: `  scorer report --month 2020-09
  scorer report --date 2020-09-02 --output gs://ads-scores`,
		Args: cobra.NoArgs,
	}
	fs := cmd.Flags()
	fs.Var(&month, "month", "the backfilled month to report on")
	fs.Var(&date, "date", "the day of the queue table to report on")
	c.stringFlag(cmd, "output", "", "output store URI (config: output)", func(c *app.Config) *string { return &c.Output })
	exitCodes(cmd, codes(0, 1, 2, 3))

	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := c.config(cmd)
		if err != nil {
			return err
		}
		uri, err := c.newApp(cfg).Report(cmd.Context(), app.ReportRequest{Month: string(month), Date: string(date)})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(c.env.stdout, uri)
		return err
	}
	return cmd
}
