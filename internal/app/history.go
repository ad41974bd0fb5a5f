package app

import (
	"context"
	"fmt"
	"path"
	"time"

	"github.com/adtech/scorer/internal/runlog"
)

// HistoryQuery selects run records.
type HistoryQuery struct {
	// Limit is how many runs to return, newest first; 0: all.
	Limit int
	// Job keeps the runs of a kind (queue, backfill), a job
	// (backfill.month=2020-09) or a scheduled job (nightly-queue); "": all.
	Job string
}

// History returns the recent runs from the run records in the output
// store, newest first, and the URI of the records' folder.
func (a *App) History(ctx context.Context, q HistoryQuery) ([]*runlog.Record, string, error) {
	out, err := a.openOutput(ctx)
	if err != nil {
		return nil, "", err
	}
	match := func(r *runlog.Record) bool {
		return q.Job == "" || r.Kind == q.Job || r.Job == q.Job || (r.Schedule != nil && r.Schedule.Job == q.Job)
	}
	recs, err := runlog.New(out).Recent(ctx, q.Limit, match)
	return recs, out.URI(runlog.Prefix), err
}

// Run returns one run's record, resolved (a run still marked running
// whose process is gone shows as interrupted).
func (a *App) Run(ctx context.Context, runID string) (*runlog.Record, error) {
	out, err := a.openOutput(ctx)
	if err != nil {
		return nil, err
	}
	log := runlog.New(out)
	keys, err := log.Keys(ctx)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if path.Base(k) != runID+".json" {
			continue
		}
		r, err := log.Read(ctx, k)
		if err != nil {
			return nil, err
		}
		if err := log.Resolve(ctx, []*runlog.Record{r}); err != nil {
			return nil, err
		}
		return r, nil
	}
	return nil, UsageError{fmt.Errorf("no run %q in the run records", runID)}
}

// RoundDuration rounds seconds for people: milliseconds under ten seconds,
// seconds above.
func RoundDuration(secs float64) time.Duration {
	d := time.Duration(secs * float64(time.Second))
	if d < 10*time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}
