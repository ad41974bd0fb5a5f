package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/internal/runlog"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/writers/table"
)

// The kinds of scoring job, as run records and metrics name them.
const (
	kindQueue    = "queue"
	kindBackfill = "backfill"
)

// recordedScore runs a scoring job and keeps its run record in the output
// store: written "running" before anything else, and with the outcome, the
// counts and the report when the run ends. Manual and scheduled runs both
// come through here, so they are recorded (and counted) alike. rec names the
// job, its kind and trigger; build makes the job once the stores and the
// model are open. rec is filled in.
func recordedScore(ctx context.Context, env *environment, cfg Config, rec *runlog.Record, build func(*opened) jobs.ScoreJob) (*jobs.Summary, error) {
	out, err := store.Open(ctx, cfg.Output)
	if err != nil {
		return nil, usageError{fmt.Errorf("output: %w", err)}
	}
	log := runlog.New(out)
	start := time.Now()
	host, _ := os.Hostname()
	rec.RunID, rec.StartedAt = table.NewRunID(start), start.UTC()
	rec.Host, rec.PID, rec.Version = host, os.Getpid(), version
	if err := log.Start(ctx, rec); err != nil {
		return nil, err
	}

	o, err := open(ctx, cfg)
	var sum *jobs.Summary
	if err == nil {
		j := build(o)
		j.RunID = rec.RunID
		sum, err = jobs.Score(ctx, j)
	}
	finishRecord(ctx, rec, sum, err, time.Now())
	if ferr := log.Finish(context.WithoutCancel(ctx), rec); ferr != nil {
		env.log.Warn("write the run record", "run_id", rec.RunID, "err", ferr)
	}
	return sum, err
}

// finishRecord fills in how a run ended.
func finishRecord(ctx context.Context, rec *runlog.Record, sum *jobs.Summary, err error, end time.Time) {
	rec.FinishedAt = end.UTC()
	rec.DurationSeconds = end.Sub(rec.StartedAt).Seconds()
	rec.ExitCode, rec.Outcome = exitCode(err), outcomeOf(ctx, sum, err)
	if err != nil {
		rec.Error = err.Error()
	}
	if sum == nil {
		return
	}
	rec.Table, rec.Partition = sum.Table, sum.Partition
	if sum.ModelName != "" {
		rec.Model = &runlog.Model{Name: sum.ModelName, Version: sum.ModelVersion}
	}
	rec.InputFiles, rec.InputBytes = sum.InputFiles, sum.InputBytes
	rec.OutputFiles, rec.OutputBytes = sum.OutputFiles, sum.OutputBytes
	rec.RowsRead, rec.RowsScored, rec.RowsRejected = sum.RowsRead+sum.RowsRejected, sum.RowsRead, sum.RowsRejected
	rec.Recovered = sum.Recovered
	if rec.Outcome == runlog.Succeeded {
		rep := &runlog.Report{Scores: sum.Scores.Summary()}
		if secs := sum.Duration.Seconds(); secs > 0 {
			rep.RowsPerSecond = float64(rec.RowsRead) / secs
			rep.BytesPerSecond = float64(sum.InputBytes) / secs
		}
		rec.Report = rep
	}
}

// outcomeOf is a run's outcome, from its error's exit code.
func outcomeOf(ctx context.Context, sum *jobs.Summary, err error) runlog.Outcome {
	switch code := exitCode(err); {
	case err == nil && sum != nil && sum.NothingToDo:
		return runlog.NothingToDo
	case err == nil:
		return runlog.Succeeded
	case code == exitRetry && ctx.Err() != nil:
		return runlog.Cancelled
	case code == exitUsage:
		return runlog.ConfigError
	case code == exitBadInput:
		return runlog.BadInput
	case code == exitBusy:
		return runlog.Busy
	default:
		return runlog.Failed
	}
}

func runHistory(ctx context.Context, env *environment, args []string) error {
	f := newFlags("history", "[flags]", `
Print the recent runs, newest first, from the run records in the output store
(<output>/_scorer/runs/): every run of scorer run, scorer backfill and
scorer schedule, with how it ended, what it read and scored, and its model.
A run still marked running whose process is gone shows as interrupted.`, env.stderr)
	f.override("output", "output store URI", func(c *Config, v string) error { c.Output = v; return nil })
	f.logFlags()
	limit := f.fs.Int("limit", 20, "how many runs to show (0: all)")
	job := f.fs.String("job", "", "only the runs of a kind (queue, backfill), a job (backfill.month=2020-09)\nor a scheduled job (nightly-queue)")
	asJSON := f.fs.Bool("json", false, "print the run records as a JSON array, for scripts")
	runID := f.fs.String("run", "", "print one run's record and report in full")
	cfg, err := f.parse(args, env)
	if err != nil {
		return err
	}
	out, err := store.Open(ctx, cfg.Output)
	if err != nil {
		return usageError{fmt.Errorf("output: %w", err)}
	}
	log := runlog.New(out)
	if *runID != "" {
		return printRun(ctx, env.stdout, log, *runID, *asJSON)
	}
	match := func(r *runlog.Record) bool {
		return *job == "" || r.Kind == *job || r.Job == *job || (r.Schedule != nil && r.Schedule.Job == *job)
	}
	recs, err := log.Recent(ctx, *limit, match)
	if err != nil {
		return err
	}
	if *asJSON {
		if recs == nil {
			recs = []*runlog.Record{}
		}
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(recs)
	}
	if len(recs) == 0 {
		fmt.Fprintf(env.stdout, "no runs recorded in %s\n", out.URI(runlog.Prefix))
		return nil
	}
	printHistory(env.stdout, recs)
	return nil
}

// printHistory prints records as a table.
func printHistory(w io.Writer, recs []*runlog.Record) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STARTED (UTC)\tJOB\tTRIGGER\tOUTCOME\tDURATION\tROWS SCORED\tREJECTED\tMODEL\tRUN ID")
	for _, r := range recs {
		dur := "-"
		if r.Outcome.Final() && r.Outcome != runlog.Skipped {
			dur = roundDuration(r.DurationSeconds).String()
		}
		model := r.Model.String()
		if model == "" {
			model = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", r.StartedAt.UTC().Format(time.DateTime), r.Job,
			trigger(r), r.Outcome, dur, r.RowsScored, r.RowsRejected, model, r.RunID)
	}
	tw.Flush()
}

// roundDuration rounds seconds for people: milliseconds under ten seconds,
// seconds above.
func roundDuration(secs float64) time.Duration {
	d := time.Duration(secs * float64(time.Second))
	if d < 10*time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
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

// printRun prints one run's record in full.
func printRun(ctx context.Context, w io.Writer, log *runlog.Log, runID string, asJSON bool) error {
	keys, err := log.Keys(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if path.Base(k) != runID+".json" {
			continue
		}
		r, err := log.Read(ctx, k)
		if err != nil {
			return err
		}
		if err := log.Resolve(ctx, []*runlog.Record{r}); err != nil {
			return err
		}
		if asJSON {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(r)
		}
		printReport(w, r)
		return nil
	}
	return usageError{fmt.Errorf("no run %q in the run records", runID)}
}

func printReport(w io.Writer, r *runlog.Record) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "  %s\t%v\n", k, v) }
	fmt.Fprintf(tw, "run %s\n", r.RunID)
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
		row("finished", fmt.Sprintf("%s (%s)", r.FinishedAt.UTC().Format(time.RFC3339), roundDuration(r.DurationSeconds)))
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
	if rep := r.Report; rep != nil {
		row("throughput", fmt.Sprintf("%.0f rows/s, %s/s", rep.RowsPerSecond, humanBytes(int64(rep.BytesPerSecond))))
		if s := rep.Scores; s != nil {
			q := s.Quantiles
			row("scores", fmt.Sprintf("mean %.4f, min %.4f, max %.4f", s.Mean, s.Min, s.Max))
			row("quantiles", fmt.Sprintf("p01 %.4f  p10 %.4f  p50 %.4f  p90 %.4f  p99 %.4f", q.P01, q.P10, q.P50, q.P90, q.P99))
			tw.Flush()
			printHistogram(w, s.Histogram)
		}
	}
	tw.Flush()
}

// printHistogram draws the score histogram with bars.
func printHistogram(w io.Writer, counts []int64) {
	var top int64
	for _, c := range counts {
		top = max(top, c)
	}
	if top == 0 {
		return
	}
	fmt.Fprintln(w, "  histogram")
	for i, c := range counts {
		lo, hi := float64(i)/float64(len(counts)), float64(i+1)/float64(len(counts))
		fmt.Fprintf(w, "    [%.2f, %.2f) %-40s %d\n", lo, hi, strings.Repeat("#", int(40*c/top)), c)
	}
}
