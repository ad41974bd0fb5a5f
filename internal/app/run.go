package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/internal/runlog"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/writers/table"
)

// The kinds of scoring job, as run records and metrics name them.
const (
	KindQueue    = "queue"
	KindBackfill = "backfill"
)

// BackfillRequest asks for the backfill of one month.
type BackfillRequest struct {
	// Month is YYYY-MM.
	Month string
	// Shard, if set, scores one shard of a sharded backfill (ShardFromEnv).
	Shard *jobs.Shard
	// ShardPlan names the sharded backfill the shard belongs to.
	ShardPlan string
	// Trigger is recorded in the run record; default runlog.Manual.
	Trigger string
}

// QueueRequest asks for a run of the queue.
type QueueRequest struct {
	// Date is the partition date, YYYY-MM-DD; default today (UTC).
	Date string
	// Trigger is recorded in the run record; default runlog.Manual.
	Trigger string
}

func (r BackfillRequest) validate() error {
	if r.Month == "" {
		return UsageError{errors.New("backfill: a month (YYYY-MM) is required")}
	}
	if _, _, err := jobs.ParseMonth(r.Month); err != nil {
		return UsageError{err}
	}
	if r.ShardPlan != "" {
		if err := jobs.ValidShardPlan(r.ShardPlan); err != nil {
			return UsageError{err}
		}
	}
	return nil
}

// day is the request's partition date, validated.
func (a *App) day(r QueueRequest) (string, error) {
	if r.Date == "" {
		return a.now().UTC().Format(time.DateOnly), nil
	}
	if _, err := jobs.ParseDate(r.Date); err != nil {
		return "", UsageError{err}
	}
	return r.Date, nil
}

func trigger(t string) string {
	if t == "" {
		return runlog.Manual
	}
	return t
}

// Backfill scores one month of ad dumps and replaces the month's partition,
// recording the run.
func (a *App) Backfill(ctx context.Context, r BackfillRequest) (*jobs.Summary, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	rec := &runlog.Record{Job: jobs.BackfillJob(r.Month), Kind: KindBackfill, Trigger: trigger(r.Trigger)}
	if r.Shard != nil {
		rec.Shard = fmt.Sprintf("%d/%d", r.Shard.Index, r.Shard.Count)
	}
	sum, err := a.score(ctx, rec, func(o *Opened) jobs.ScoreJob {
		j := a.backfillJob(o, r.Month, r.Shard)
		j.ShardPlan = r.ShardPlan
		return j
	})
	if err != nil {
		return sum, fmt.Errorf("backfill %s: %w", r.Month, err)
	}
	return sum, nil
}

// Queue scores every queued request file not scored yet, exactly once,
// into a day's partition, recording the run.
func (a *App) Queue(ctx context.Context, r QueueRequest) (*jobs.Summary, error) {
	day, err := a.day(r)
	if err != nil {
		return nil, err
	}
	rec := &runlog.Record{Job: jobs.JobQueue, Kind: KindQueue, Trigger: trigger(r.Trigger)}
	sum, err := a.score(ctx, rec, func(o *Opened) jobs.ScoreJob { return a.queueJob(o, day) })
	if err != nil {
		return sum, fmt.Errorf("run: %w", err)
	}
	return sum, nil
}

// AbandonShards deletes the month's sharded backfill in progress (its plan,
// shard records and staged parts), under the month's lease. With none in
// progress it does nothing.
func (a *App) AbandonShards(ctx context.Context, month string) error {
	if err := (BackfillRequest{Month: month}).validate(); err != nil {
		return err
	}
	// Only the output store: abandoning reads no input and needs no model.
	out, err := a.openOutput(ctx)
	if err != nil {
		return err
	}
	if err := jobs.AbandonShards(ctx, a.backfillJob(&Opened{Output: out}, month, nil)); err != nil {
		return fmt.Errorf("abandon shards of %s: %w", month, err)
	}
	return nil
}

// score runs a scoring job and keeps its run record in the output store:
// written "running" before anything else, and with the outcome, the counts
// (rows, bytes, store operations) and the report when the run ends. Manual
// and scheduled runs both come through here, so they are recorded (and
// counted) alike. rec names the job, its kind and trigger; build makes the
// job once the stores and the model are open. rec is filled in.
func (a *App) score(ctx context.Context, rec *runlog.Record, build func(*Opened) jobs.ScoreJob) (*jobs.Summary, error) {
	out, err := a.openCountedOutput(ctx)
	if err != nil {
		return nil, err
	}
	a.runs.RLock()
	defer a.runs.RUnlock()
	log := runlog.New(out)
	start := time.Now()
	host, _ := os.Hostname()
	rec.RunID, rec.StartedAt = table.NewRunID(start), start.UTC()
	rec.Host, rec.PID, rec.Version = host, os.Getpid(), a.version
	if err := log.Start(ctx, rec); err != nil {
		return nil, err
	}

	// The job uses the output store opened here, so that one count holds
	// the run's operations on it; the input's are counted from its opening.
	o, err := a.open(ctx, out)
	var sum *jobs.Summary
	var in *store.CountedBucket
	if err == nil {
		in = store.Counted(o.Input)
		o.Input = in
		j := build(o)
		j.RunID = rec.RunID
		sum, err = jobs.Score(ctx, j)
	}
	if err == nil && sum != nil && len(sum.OutputFiles) > 0 {
		// The report is derived from the published tables: failing to
		// write it fails nothing (scorer report writes it again).
		if uri, rerr := a.writeReport(ctx, out, sum.Table, sum.Partition); rerr != nil {
			a.log.Warn("write the run report (scorer report writes it again)", "err", rerr)
		} else {
			sum.ReportURI = uri
		}
	}
	rec.StoreOps = &runlog.StoreOps{Output: out.Counts()}
	if in != nil {
		rec.StoreOps.Input = in.Counts()
	}
	finishRecord(ctx, rec, sum, err, time.Now())
	if ferr := log.Finish(context.WithoutCancel(ctx), rec); ferr != nil {
		a.log.Warn("write the run record", "run_id", rec.RunID, "err", ferr)
	}
	return sum, err
}

// finishRecord fills in how a run ended.
func finishRecord(ctx context.Context, rec *runlog.Record, sum *jobs.Summary, err error, end time.Time) {
	rec.FinishedAt = end.UTC()
	rec.DurationSeconds = end.Sub(rec.StartedAt).Seconds()
	rec.ExitCode, rec.Outcome = ExitCode(err), outcomeOf(ctx, sum, err)
	if err != nil {
		rec.Error = err.Error()
	}
	if sum == nil {
		return
	}
	rec.Table, rec.Partition = sum.Table, sum.Partition
	if sum.ModelName != "" {
		rec.Model = &runlog.Model{Name: sum.ModelName, Version: sum.ModelVersion}
		for _, c := range sum.Challengers {
			rec.Challengers = append(rec.Challengers, runlog.Model{Name: c.Name, Version: c.Version})
		}
	}
	rec.InputFiles, rec.InputBytes = sum.InputFiles, sum.InputBytes
	rec.OutputFiles, rec.OutputBytes = sum.OutputFiles, sum.OutputBytes
	rec.RowsRead, rec.RowsScored, rec.RowsRejected = sum.RowsIn(), sum.RowsRead, sum.RowsRejected
	rec.Recovered = sum.Recovered
	rec.ReportURI = sum.ReportURI
	rec.Drift = sum.DriftRecord()
	if im := sum.Images; im != nil {
		rec.Images = &runlog.Images{CacheHits: im.Hits, CacheMisses: im.Misses, HitRate: im.HitRate(), Bad: im.Bad, BadByReason: im.BadByReason}
	}
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
	switch code := ExitCode(err); {
	case err == nil && sum != nil && sum.NothingToDo:
		return runlog.NothingToDo
	case err == nil:
		return runlog.Succeeded
	case code == ExitRetry && ctx.Err() != nil:
		return runlog.Cancelled
	case code == ExitUsage:
		return runlog.ConfigError
	case code == ExitBadInput:
		return runlog.BadInput
	case code == ExitBusy:
		return runlog.Busy
	case code == ExitDrift:
		return runlog.Drifted
	default:
		return runlog.Failed
	}
}
