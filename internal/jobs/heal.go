package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/adtech/scorer/internal/failpoint"
	"github.com/adtech/scorer/internal/lease"
	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/writers/table"
)

// HealOptions configure Heal.
type HealOptions struct {
	// LeaseTTL is the TTL of the leases Heal takes (default 60 s).
	LeaseTTL time.Duration
	Now      func() time.Time // default time.Now
	Log      *slog.Logger     // default: discard
}

// HealedJob is what Heal did for one job with a decided commit.
type HealedJob struct {
	Job string `json:"job"`
	// RolledForward lists the job's committed runs that Heal published,
	// oldest first.
	RolledForward []string `json:"rolled_forward"`
	// Busy: a live run holds the job's lease; its decided commits are left
	// to it (every run rolls its job forward first).
	Busy bool `json:"busy,omitempty"`
	// Error says why the job could not be healed, if so.
	Error string `json:"error,omitempty"`
}

// HealReport is what Heal did: one entry per job that had a decided
// commit not yet published, by job name. Empty when the store was whole.
type HealReport struct {
	Jobs []HealedJob `json:"jobs"`
}

// RolledForward is the number of runs published, over every job.
func (r *HealReport) RolledForward() int {
	n := 0
	for _, j := range r.Jobs {
		n += len(j.RolledForward)
	}
	return n
}

// Heal finishes publishing every decided commit of an output store: each
// committed run without a done marker, and each commit fenced in a lease
// whose holder is gone before it wrote the record. It works job by job,
// under the job's lease, as the job's next run would: a job whose lease a
// live run holds is left to that run (Busy). Only roll forward happens
// here: no staging is deleted but that of the runs it publishes, so Heal is
// safe beside any run. The error joins every job's failure; the report
// still says what was done.
func Heal(ctx context.Context, out store.Bucket, opts HealOptions) (*HealReport, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	rep := &HealReport{Jobs: []HealedJob{}}
	names, err := decidedJobs(ctx, out)
	if err != nil {
		return rep, fmt.Errorf("heal %s: %w", out.URI(""), err)
	}
	var errs []error
	for _, name := range names {
		hj, err := healJob(ctx, out, name, opts)
		if err != nil {
			hj.Error = err.Error()
			errs = append(errs, err)
		}
		rep.Jobs = append(rep.Jobs, hj)
	}
	if err := errors.Join(errs...); err != nil {
		return rep, fmt.Errorf("heal %s: %w", out.URI(""), err)
	}
	return rep, nil
}

// decidedJobs lists the jobs with a decided commit not yet published: a
// commit record without a done marker, or a commit fenced in the job's
// lease whose record was never written.
func decidedJobs(ctx context.Context, out store.Bucket) ([]string, error) {
	pub, err := table.NewPublisher(out, table.DefaultOptions())
	if err != nil {
		return nil, err
	}
	pending, err := pub.Pending(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, c := range pending {
		names = append(names, c.Job)
	}
	leases, err := out.List(ctx, state.LeasesPrefix)
	if err != nil {
		return nil, err
	}
	for _, o := range leases {
		name, ok := state.LeaseName(o.Key)
		if !ok || slices.Contains(names, name) {
			continue
		}
		info, err := lease.Peek(ctx, out, name)
		if errors.Is(err, store.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(info.PendingKey, state.CommitsPrefix) {
			continue // nothing fenced, or a shard's record (its next shard writes it)
		}
		if _, err := out.Stat(ctx, info.PendingKey); errors.Is(err, store.ErrNotExist) {
			names = append(names, name)
		} else if err != nil {
			return nil, err
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// healJob rolls one job forward under its lease.
func healJob(ctx context.Context, out store.Bucket, name string, opts HealOptions) (HealedJob, error) {
	hj := HealedJob{Job: name, RolledForward: []string{}}
	j := &ScoreJob{
		Job: name, Output: out, RunID: table.NewRunID(opts.Now()),
		LeaseTTL: opts.LeaseTTL, Now: opts.Now, Log: opts.Log, guard: &leaseGuard{},
	}
	pub, err := table.NewPublisher(out, table.Options{
		Now:       opts.Now,
		Guard:     j.guard.check,
		Failpoint: func(point string) error { failpoint.Hit("publish." + point); return nil },
	})
	if err != nil {
		return hj, err
	}
	h, hctx, err := j.hold(ctx, pub, name, false)
	if errors.Is(err, lease.ErrHeld) {
		hj.Busy = true
		return hj, nil
	}
	if err != nil {
		return hj, fmt.Errorf("job %s: %w", name, err)
	}
	defer h.release(ctx)
	rolled, err := pub.RollForwardJob(hctx, name)
	hj.RolledForward = append(hj.RolledForward, rolled...)
	if err != nil {
		return hj, fmt.Errorf("job %s: %w", name, h.explain(err))
	}
	return hj, nil
}
