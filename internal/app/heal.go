package app

import (
	"context"
	"fmt"
	"time"

	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/readers/store"
)

// healEvery is how often the daemon heals the output store between runs.
const healEvery = 5 * time.Minute

// Recover opens the output store and finishes publishing every decided
// commit in it (jobs.Heal): the runs that committed and were interrupted
// while publishing, each under its job's lease; a job whose lease a live
// run holds is left to that run. The report says what was healed; the
// error joins the jobs that could not be.
func (a *App) Recover(ctx context.Context) (*jobs.HealReport, error) {
	out, err := store.Open(ctx, a.cfg.Output)
	if err != nil {
		return nil, UsageError{fmt.Errorf("output: %w", err)}
	}
	a.healed.Store(true)
	return a.heal(ctx, out)
}

// heal runs jobs.Heal over an output store and logs what it did.
func (a *App) heal(ctx context.Context, out store.Bucket) (*jobs.HealReport, error) {
	a.runs.Lock()
	defer a.runs.Unlock()
	rep, err := jobs.Heal(ctx, out, jobs.HealOptions{LeaseTTL: a.cfg.LeaseTTL, Now: a.now, Log: a.log})
	for _, j := range rep.Jobs {
		switch {
		case j.Error != "":
			a.log.Warn("could not heal an interrupted publish", "job", j.Job, "rolled_forward", j.RolledForward, "err", j.Error)
		case j.Busy:
			a.log.Info("interrupted publish left to the running job", "job", j.Job)
		case len(j.RolledForward) > 0:
			a.log.Warn("healed interrupted publishes", "job", j.Job, "rolled_forward", j.RolledForward)
		}
	}
	return rep, err
}

// healOnOpen heals an output store the first time this App opens it for
// anything but a dry run: every command that uses the store leaves it
// whole. A failure is logged, not returned: the command's own work goes on
// (a run still rolls its own job forward first, and fails there if it must).
func (a *App) healOnOpen(ctx context.Context, out store.Bucket) {
	if a.healed.Swap(true) {
		return
	}
	if _, err := a.heal(ctx, out); err != nil && ctx.Err() == nil {
		a.log.Warn("heal the output store", "output", out.URI(""), "err", err)
	}
}
