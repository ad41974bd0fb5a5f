package table

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
)

// RecoverReport says what Recover did.
type RecoverReport struct {
	// RolledForward: committed runs that were not done, in the order
	// they were rolled forward.
	RolledForward []string
	// StagingDeleted: runs whose staging was deleted: runs that never
	// committed, and done runs whose staging deletion was interrupted.
	StagingDeleted []string
}

// Recover rolls forward every committed run that is not done, oldest first,
// then deletes the staging of runs that never committed. The caller
// guarantees that no run of this bucket is active meanwhile: a run that is
// still staging would lose its parts. RecoverJob is the same for one job's
// runs, for callers that hold that job's lease while other jobs may run.
func (p *Publisher) Recover(ctx context.Context) (RecoverReport, error) {
	return p.RecoverJob(ctx, "")
}

// staleUnmarked is how old the staging of a run with no marker (a run that
// died inside Begin) must be before a job-scoped Recover deletes it.
const staleUnmarked = 24 * time.Hour

// RecoverJob is Recover for the runs of one job ("" = every job). Staging of
// another job's runs is left alone (they may be running).
func (p *Publisher) RecoverJob(ctx context.Context, job string) (RecoverReport, error) {
	var rep RecoverReport
	rolled, err := p.rollForwardJob(ctx, job)
	rep.RolledForward = rolled
	if err != nil {
		return rep, fmt.Errorf("recover: %w", err)
	}
	commits, err := p.listCommits(ctx)
	if err != nil {
		return rep, fmt.Errorf("recover: %w", err)
	}
	pending := map[string]bool{}
	for _, c := range commits {
		pending[c.id] = !c.done
	}
	staged, err := p.bucket.List(ctx, state.StagingPrefix)
	if err != nil {
		return rep, fmt.Errorf("recover: %w", err)
	}
	last := "" // keys are sorted: a run's objects are consecutive
	for _, o := range staged {
		id := state.StagedRunID(o.Key)
		if id == last {
			continue // decided at the run's first object (its marker read once)
		}
		last = id
		if pending[id] {
			// Committed after rollForwardJob listed (another run is
			// active, which the caller ruled out), or another job's
			// pending run: its staging is needed.
			continue
		}
		if job != "" {
			mine, err := p.stagedByJob(ctx, id, job, o)
			if err != nil {
				return rep, fmt.Errorf("recover: %w", err)
			}
			if !mine {
				continue
			}
		}
		if err := p.deleteStaging(ctx, id); err != nil {
			return rep, fmt.Errorf("recover: %w", err)
		}
		rep.StagingDeleted = append(rep.StagingDeleted, id)
	}
	return rep, nil
}

// stagedByJob reports whether staged run id belongs to job (by its marker),
// or has no marker and is old enough to be garbage whoever left it.
func (p *Publisher) stagedByJob(ctx context.Context, id, job string, first store.ObjectInfo) (bool, error) {
	data, err := state.Read(ctx, p.bucket, state.RunMarkerKey(id))
	if errors.Is(err, store.ErrNotExist) {
		return p.now().Sub(first.Updated) > staleUnmarked, nil
	}
	if err != nil {
		return false, err
	}
	var m runMarker
	if err := state.Decode(data, &m); err != nil {
		return false, fmt.Errorf("read %s: %w: %w", p.bucket.URI(state.RunMarkerKey(id)), ErrCorrupt, err)
	}
	return m.Job == job, nil
}
