package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/adtech/scorer/internal/app"
	"github.com/adtech/scorer/internal/runlog"
	"github.com/adtech/scorer/readers/store"
)

func (c *cli) historyCmd() *cobra.Command {
	var (
		q      app.HistoryQuery
		asJSON bool
		runID  string
		format *formatValue
	)
	cmd := &cobra.Command{
		Use:   "history [flags]",
		Short: "print the recent runs from the run records",
		Long: `Print the recent runs, newest first, from the run records in the output store
(<output>/_scorer/runs/): every run of scorer run, scorer backfill and
scorer schedule, with how it ended, what it read and scored, and its model.
A run still marked running whose process is gone shows as interrupted.`,
		Example: `  scorer history --output out
  scorer history --job nightly-queue -o json
  scorer history --run 20201001T023000Z-1a2b3c4d`,
		Args: cobra.NoArgs,
	}
	fs := cmd.Flags()
	c.stringFlag(cmd, "output", "", "output store URI (config: output)", func(c *app.Config) *string { return &c.Output })
	fs.IntVar(&q.Limit, "limit", 20, "how many runs to show (0: all)")
	fs.StringVar(&q.Job, "job", "", "only the runs of a kind (queue, backfill), a job (backfill.month=2020-09)\nor a scheduled job (nightly-queue)")
	format = formatFlag(fs, "the run records")
	fs.BoolVar(&asJSON, "json", false, "the same as -o json")
	fs.StringVar(&runID, "run", "", "print one run's record and report in full")
	exitCodes(cmd, codes(0, 1, 2))

	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := c.config(cmd)
		if err != nil {
			return err
		}
		if asJSON {
			*format = "json"
		}
		a := c.newApp(cfg)
		w := c.env.stdout
		if runID != "" {
			r, err := a.Run(cmd.Context(), runID)
			if err != nil {
				return err
			}
			if *format == "json" {
				return writeJSON(w, r)
			}
			return printReport(w, r)
		}
		recs, where, err := a.History(cmd.Context(), q)
		if err != nil {
			return err
		}
		if *format == "json" {
			if recs == nil {
				recs = []*runlog.Record{}
			}
			return writeJSON(w, recs)
		}
		if len(recs) == 0 {
			_, err := fmt.Fprintf(w, "no runs recorded in %s\n", where)
			return err
		}
		return printHistory(w, recs)
	}
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printHistory prints records as a table.
func printHistory(w io.Writer, recs []*runlog.Record) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	ew := &errWriter{w: tw}
	ew.printf("STARTED (UTC)\tJOB\tTRIGGER\tOUTCOME\tDURATION\tROWS SCORED\tREJECTED\tMODEL\tRUN ID\n")
	for _, r := range recs {
		dur := "-"
		if r.Outcome.Final() && r.Outcome != runlog.Skipped {
			dur = app.RoundDuration(r.DurationSeconds).String()
		}
		model := r.Model.String()
		if model == "" {
			model = "-"
		}
		ew.printf("%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", r.StartedAt.UTC().Format(time.DateTime), r.Job,
			trigger(r), r.Outcome, dur, r.RowsScored, r.RowsRejected, model, r.RunID)
	}
	return ew.flush(tw)
}

// trigger says who started a run: manual, or the scheduled job's name, with
// the attempt number of a retry and "late" for a run caught up.
func trigger(r *runlog.Record) string {
	if r.Schedule == nil {
		return r.Trigger
	}
	s := r.Schedule.Job
	if r.Schedule.Attempt > 1 {
		s += fmt.Sprintf(" #%d", r.Schedule.Attempt)
	}
	if r.Schedule.Late {
		s += " (late)"
	}
	return s
}

// printReport prints one run's record in full.
func printReport(w io.Writer, r *runlog.Record) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	ew := &errWriter{w: tw}
	row := func(k string, v any) { ew.printf("  %s\t%v\n", k, v) }
	ew.printf("run %s\n", r.RunID)
	row("job", r.Job)
	row("trigger", trigger(r))
	if r.Schedule != nil {
		row("scheduled for", r.Schedule.Slot.Format(time.RFC3339))
	}
	row("outcome", fmt.Sprintf("%s (exit code %d)", r.Outcome, r.ExitCode))
	if r.Error != "" {
		row("error", strings.ReplaceAll(r.Error, "\n", " "))
	}
	row("host", fmt.Sprintf("%s pid %d, scorer %s", r.Host, r.PID, r.Version))
	row("started", r.StartedAt.UTC().Format(time.RFC3339))
	if !r.FinishedAt.IsZero() {
		row("finished", fmt.Sprintf("%s (%s)", r.FinishedAt.UTC().Format(time.RFC3339), app.RoundDuration(r.DurationSeconds)))
	}
	if m := r.Model.String(); m != "" {
		row("model", m)
	}
	if r.Table != "" {
		row("table", r.Table+"/"+r.Partition)
	}
	row("input files", fmt.Sprintf("%d (%s)", len(r.InputFiles), humanBytes(r.InputBytes)))
	for _, f := range r.InputFiles {
		row("", f)
	}
	row("rows read", r.RowsRead)
	row("rows scored", r.RowsScored)
	row("rows rejected", r.RowsRejected)
	row("files written", fmt.Sprintf("%d (%s)", len(r.OutputFiles), humanBytes(r.OutputBytes)))
	if ops := r.StoreOps; ops != nil {
		row("input ops", storeOps(ops.Input))
		row("output ops", storeOps(ops.Output))
	}
	if rep := r.Report; rep != nil {
		row("throughput", fmt.Sprintf("%.0f rows/s, %s/s", rep.RowsPerSecond, humanBytes(int64(rep.BytesPerSecond))))
		if s := rep.Scores; s != nil {
			q := s.Quantiles
			row("scores", fmt.Sprintf("mean %.4f, min %.4f, max %.4f", s.Mean, s.Min, s.Max))
			row("quantiles", fmt.Sprintf("p01 %.4f  p10 %.4f  p50 %.4f  p90 %.4f  p99 %.4f", q.P01, q.P10, q.P50, q.P90, q.P99))
			if err := ew.flush(tw); err != nil {
				return err
			}
			return printHistogram(w, s.Histogram)
		}
	}
	return ew.flush(tw)
}

// storeOps says what a run did to one store, in the units it is billed by
// (docs/operations.md).
func storeOps(c store.OpCounts) string {
	w := fmt.Sprintf("%d write", c.Write)
	if c.WriteAttempts != c.Write {
		w += fmt.Sprintf(" (of %d)", c.WriteAttempts)
	}
	return fmt.Sprintf("%d list (%d objects), %d stat, %d read (%s), %s (%s), %d copy, %d delete",
		c.List, c.Listed, c.Stat, c.Read, humanBytes(c.ReadBytes), w, humanBytes(c.WriteBytes), c.Copy, c.Delete)
}

// printHistogram draws the score histogram with bars.
func printHistogram(w io.Writer, counts []int64) error {
	var top int64
	for _, c := range counts {
		top = max(top, c)
	}
	if top == 0 {
		return nil
	}
	ew := &errWriter{w: w}
	ew.printf("  histogram\n")
	for i, c := range counts {
		lo, hi := float64(i)/float64(len(counts)), float64(i+1)/float64(len(counts))
		ew.printf("    [%.2f, %.2f) %-40s %d\n", lo, hi, strings.Repeat("#", int(40*c/top)), c)
	}
	return ew.err
}
