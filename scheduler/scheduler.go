package scheduler

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adtech/scorer/internal/backoff"
)

// Errors.
var (
	// ErrAborted: Run stopped on shutdown and cut running attempts short at
	// the shutdown deadline. Their slots are not settled: they run again at
	// the next start.
	ErrAborted = errors.New("shutdown deadline passed: running attempts were cancelled")
	// ErrOverlap: a slot came due while the job's previous run was running.
	ErrOverlap = errors.New("the job's previous run is still running")
	// ErrCatchUpLimit: slots due at start beyond Options.MaxCatchUp.
	ErrCatchUpLimit = errors.New("beyond the catch-up limit")
	// ErrPanic: a run panicked.
	ErrPanic = errors.New("run panicked")
)

// RunFunc runs one attempt of a job's slot. It must return soon after ctx is
// cancelled (at the shutdown deadline), leaving nothing half-done.
type RunFunc func(ctx context.Context, a Attempt) error

// Job is a scheduled job.
type Job struct {
	// Name names the job in the ledger and in events: unique, and stable
	// across restarts (renaming a job starts its history afresh).
	Name string
	Spec Spec
	Run  RunFunc
}

// Attempt is one attempt to run a slot.
type Attempt struct {
	Job string
	// Slot is the time the run is for, in the job's time zone.
	Slot time.Time
	// Number counts the attempts of the slot from 1.
	Number int
	// Late: the slot is caught up (it came due while no scheduler ran, or
	// along with a later slot).
	Late bool
}

// EventKind says what happened.
type EventKind string

// Event kinds.
const (
	// EventLoaded: a job's state was read from the ledger; Count slots are
	// due (caught up), At is the next slot after now.
	EventLoaded EventKind = "loaded"
	// EventWait: the scheduler sleeps until At (the next slot of any job, or
	// the next retry to load a job); Running jobs are running.
	EventWait EventKind = "wait"
	// EventStart: an attempt starts.
	EventStart EventKind = "start"
	// EventFinish: an attempt returned Err.
	EventFinish EventKind = "finish"
	// EventRetry: the attempt numbered Attempt starts at At, after Err.
	EventRetry EventKind = "retry"
	// EventSkip: Count slots, the newest being Slot, are skipped; Err says
	// why (ErrOverlap, ErrCatchUpLimit).
	EventSkip EventKind = "skip"
	// EventSettled: a slot is settled with Outcome after Attempt attempts.
	EventSettled EventKind = "settled"
	// EventAlready: a due slot was found settled (by another scheduler
	// sharing the ledger) before its attempt numbered Attempt; it is not
	// run (again).
	EventAlready EventKind = "already-settled"
	// EventStopping: shutdown began; Running attempts have until At.
	EventStopping EventKind = "stopping"
	// EventCancel: the shutdown deadline passed; Running attempts are
	// cancelled.
	EventCancel EventKind = "cancel"
	// EventError: the ledger failed (Err); what it was for is retried or
	// left for the next start.
	EventError EventKind = "error"
)

// Event is something the scheduler did, for logs, metrics and tests.
type Event struct {
	Kind    EventKind
	Job     string
	Slot    time.Time
	Attempt int
	Late    bool
	At      time.Time
	Running int
	Count   int
	Outcome Outcome
	Err     error
}

// Options configure a Scheduler.
type Options struct {
	// Clock: default SystemClock().
	Clock Clock
	// Ledger is where slots are settled. Required.
	Ledger Ledger
	// Retries is how many times a failed attempt is retried, when Retryable
	// says it may be.
	Retries int
	// Backoff is the wait before the first retry (default 1m), doubled
	// before each further one up to MaxBackoff (default 15m).
	Backoff, MaxBackoff time.Duration
	// MaxCatchUp, if positive, runs only the newest MaxCatchUp of the slots
	// due at start; the older ones are skipped.
	MaxCatchUp int
	// ShutdownTimeout is how long running attempts may take to finish once
	// Run's context is cancelled (default 5m).
	ShutdownTimeout time.Duration
	// Retryable says whether a failed attempt may be retried; nil: always.
	Retryable func(error) bool
	// OnEvent, if set, is called for every Event, from the scheduler's
	// goroutines (concurrently): it must be safe for that and quick.
	OnEvent func(Event)
	// MaxSleep bounds one sleep (default 1m), so that a wall clock that jumps
	// (a suspended machine, a clock step) is noticed.
	MaxSleep time.Duration
}

// Scheduler runs jobs on their schedules. Create it with New and call Run
// once.
type Scheduler struct {
	jobs    []Job
	opts    Options
	started atomic.Bool
	ready   atomic.Bool
}

// New checks the jobs and options and returns a Scheduler.
func New(jobs []Job, opts Options) (*Scheduler, error) {
	if opts.Ledger == nil {
		return nil, errors.New("scheduler: no ledger")
	}
	if opts.Clock == nil {
		opts.Clock = SystemClock()
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Minute
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 15 * time.Minute
	}
	opts.MaxBackoff = max(opts.MaxBackoff, opts.Backoff)
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 5 * time.Minute
	}
	if opts.MaxSleep <= 0 {
		opts.MaxSleep = time.Minute
	}
	if opts.Retries < 0 {
		return nil, fmt.Errorf("scheduler: retries %d < 0", opts.Retries)
	}
	seen := map[string]bool{}
	for _, j := range jobs {
		switch {
		case j.Name == "" || strings.ContainsAny(j.Name, "/\\ "):
			return nil, fmt.Errorf("scheduler: job name %q: want a non-empty name without slashes or spaces", j.Name)
		case seen[j.Name]:
			return nil, fmt.Errorf("scheduler: two jobs named %q", j.Name)
		case j.Run == nil:
			return nil, fmt.Errorf("scheduler: job %q has no Run", j.Name)
		case j.Spec.sched == nil:
			return nil, fmt.Errorf("scheduler: job %q has no schedule", j.Name)
		}
		seen[j.Name] = true
	}
	return &Scheduler{jobs: jobs, opts: opts}, nil
}

// Ready reports whether every job's state is loaded and the scheduler is
// not shutting down.
func (s *Scheduler) Ready() bool { return s.ready.Load() }

type pending struct {
	slot time.Time
	late bool
}

// jobState is a job's state, owned by Run's loop.
type jobState struct {
	job     Job
	loaded  bool
	retryAt time.Time // when to try loading again
	cursor  time.Time // slots at or before it are handled
	running bool
}

type finished struct {
	i       int
	aborted bool
}

// Run runs the jobs until ctx is cancelled, then shuts down (see the
// package documentation). It returns nil, or an error wrapping ErrAborted if
// the shutdown cut attempts short.
func (s *Scheduler) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("scheduler: Run called twice")
	}
	// Attempts run under hard, cancelled only at the shutdown deadline.
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()
	states := make([]*jobState, len(s.jobs))
	for i, j := range s.jobs {
		states[i] = &jobState{job: j}
	}
	done := make(chan finished, len(s.jobs))
	var wg sync.WaitGroup
	defer wg.Wait()
	running := 0
	for ctx.Err() == nil {
		now := s.opts.Clock.Now()
		allLoaded := true
		for i, st := range states {
			var due []pending
			switch {
			case st.loaded:
				due = s.tick(hard, st, now)
			case !now.Before(st.retryAt):
				due = s.load(ctx, hard, st, now)
			}
			if !st.loaded {
				allLoaded = false
				continue
			}
			if len(due) > 0 {
				st.running = true
				running++
				wg.Add(1)
				go func() {
					defer wg.Done()
					done <- finished{i, s.work(ctx, hard, st.job, due)}
				}()
			}
		}
		s.ready.Store(allLoaded)

		var next time.Time
		for _, st := range states {
			t := st.retryAt
			if st.loaded {
				t = st.job.Spec.Next(st.cursor)
			}
			if !t.IsZero() && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
		var timer Timer
		var timerC <-chan time.Time
		if !next.IsZero() {
			timer = s.opts.Clock.NewTimer(min(next.Sub(now), s.opts.MaxSleep))
			timerC = timer.C()
		}
		s.emit(Event{Kind: EventWait, At: next, Running: running})
		select {
		case <-timerC:
		case f := <-done:
			states[f.i].running = false
			running--
		case <-ctx.Done():
		}
		if timer != nil {
			timer.Stop()
		}
	}
	s.ready.Store(false)
	return s.drain(states, running, done, cancelHard)
}

// drain waits for the running attempts, up to the shutdown deadline, then
// cancels them and waits for them to return.
func (s *Scheduler) drain(states []*jobState, running int, done <-chan finished, cancel context.CancelFunc) error {
	if running == 0 {
		s.emit(Event{Kind: EventStopping})
		return nil
	}
	timer := s.opts.Clock.NewTimer(s.opts.ShutdownTimeout)
	defer timer.Stop()
	s.emit(Event{Kind: EventStopping, At: s.opts.Clock.Now().Add(s.opts.ShutdownTimeout), Running: running})
	timerC := timer.C()
	var aborted []string
	for running > 0 {
		select {
		case f := <-done:
			running--
			if f.aborted {
				aborted = append(aborted, states[f.i].job.Name)
			}
		case <-timerC:
			timerC = nil
			cancel()
			s.emit(Event{Kind: EventCancel, Running: running})
		}
	}
	if len(aborted) > 0 {
		return fmt.Errorf("%w: %s", ErrAborted, strings.Join(aborted, ", "))
	}
	return nil
}

// load reads a job's state from the ledger and returns its due slots.
func (s *Scheduler) load(ctx, hard context.Context, st *jobState, now time.Time) []pending {
	name := st.job.Name
	state, err := s.opts.Ledger.Load(ctx, name)
	if err == nil && state.Watermark.IsZero() {
		// A new job: nothing before now is due.
		err = s.opts.Ledger.Advance(ctx, name, now)
		state.Watermark = now
	}
	if err != nil {
		st.retryAt = now.Add(s.opts.Backoff)
		s.emit(Event{Kind: EventError, Job: name, Err: err, At: st.retryAt})
		return nil
	}
	settled := make(map[int64]bool, len(state.Settled))
	for _, t := range state.Settled {
		settled[t.Unix()] = true
	}
	// Every slot after the watermark that is not settled is due. The
	// watermark moves up to the first of them (or to now).
	var due []time.Time
	wm := now
	for _, t := range st.job.Spec.Between(state.Watermark, now) {
		if settled[t.Unix()] {
			continue
		}
		if len(due) == 0 {
			wm = t.Add(-time.Second)
		}
		due = append(due, t)
	}
	if limit := s.opts.MaxCatchUp; limit > 0 && len(due) > limit {
		drop := due[:len(due)-limit]
		last := drop[len(drop)-1]
		s.emit(Event{Kind: EventSkip, Job: name, Slot: last, Count: len(drop), Err: ErrCatchUpLimit})
		s.settle(hard, SlotRecord{
			Job: name, Slot: last, Outcome: Skipped, SettledAt: now,
			Error: fmt.Sprintf("%v: %d slots from %s to %s skipped", ErrCatchUpLimit, len(drop),
				drop[0].Format(time.RFC3339), last.Format(time.RFC3339)),
		})
		wm = last
		due = due[len(drop):]
	}
	if wm.After(state.Watermark) {
		if err := s.opts.Ledger.Advance(hard, name, wm); err != nil {
			s.emit(Event{Kind: EventError, Job: name, Err: err})
		}
	}
	st.loaded, st.cursor = true, now
	s.emit(Event{Kind: EventLoaded, Job: name, Count: len(due), At: st.job.Spec.Next(now)})
	out := make([]pending, len(due))
	for k, t := range due {
		out[k] = pending{slot: t, late: true}
	}
	return out
}

// tick returns the job's slots that came due since the last tick, or
// skips them if the job is running.
func (s *Scheduler) tick(hard context.Context, st *jobState, now time.Time) []pending {
	slots := st.job.Spec.Between(st.cursor, now)
	if now.After(st.cursor) {
		st.cursor = now
	}
	if len(slots) == 0 {
		return nil
	}
	if st.running {
		for _, t := range slots {
			s.emit(Event{Kind: EventSkip, Job: st.job.Name, Slot: t, Count: 1, Err: ErrOverlap})
			s.settle(hard, SlotRecord{Job: st.job.Name, Slot: t, Outcome: Skipped, Error: ErrOverlap.Error(), SettledAt: now})
		}
		return nil
	}
	out := make([]pending, len(slots))
	for k, t := range slots {
		out[k] = pending{slot: t, late: k < len(slots)-1}
	}
	return out
}

func (s *Scheduler) settle(ctx context.Context, r SlotRecord) {
	if err := s.opts.Ledger.Settle(ctx, r); err != nil {
		s.emit(Event{Kind: EventError, Job: r.Job, Slot: r.Slot, Err: err})
		return
	}
	s.emit(Event{Kind: EventSettled, Job: r.Job, Slot: r.Slot, Attempt: r.Attempts, Outcome: r.Outcome})
}

// work runs a job's due slots, oldest first. It reports whether the
// shutdown deadline cut an attempt short.
func (s *Scheduler) work(ctx, hard context.Context, job Job, due []pending) (aborted bool) {
	for _, p := range due {
		if ctx.Err() != nil {
			return false // shutting down: the rest is left for the next start
		}
		rec, stop := s.runSlot(ctx, hard, job, p)
		switch stop {
		case stopAborted:
			return true
		case stopShutdown:
			return false
		case stopAlready:
			continue
		}
		s.settle(hard, rec)
	}
	return false
}

type stopKind int

const (
	stopNone     stopKind = iota
	stopShutdown          // shutdown during a backoff: the slot is left unsettled
	stopAborted           // the shutdown deadline cancelled the attempt
	stopAlready           // another scheduler settled the slot
)

// runSlot runs a slot's attempts until one succeeds, one fails for good,
// another scheduler sharing the ledger settles the slot (checked before
// each attempt), or the scheduler shuts down.
func (s *Scheduler) runSlot(ctx, hard context.Context, job Job, p pending) (SlotRecord, stopKind) {
	for n := 1; ; n++ {
		if ok, err := s.opts.Ledger.Settled(hard, job.Name, p.slot); err != nil {
			s.emit(Event{Kind: EventError, Job: job.Name, Slot: p.slot, Err: err})
		} else if ok {
			s.emit(Event{Kind: EventAlready, Job: job.Name, Slot: p.slot, Attempt: n})
			return SlotRecord{}, stopAlready
		}
		a := Attempt{Job: job.Name, Slot: p.slot, Number: n, Late: p.late}
		s.emit(Event{Kind: EventStart, Job: job.Name, Slot: p.slot, Attempt: n, Late: p.late})
		err := call(hard, job.Run, a)
		s.emit(Event{Kind: EventFinish, Job: job.Name, Slot: p.slot, Attempt: n, Late: p.late, Err: err})
		rec := SlotRecord{Job: job.Name, Slot: p.slot, Attempts: n, SettledAt: s.opts.Clock.Now()}
		switch {
		case err == nil:
			rec.Outcome = Succeeded
			return rec, stopNone
		case hard.Err() != nil:
			return rec, stopAborted
		case n > s.opts.Retries || (s.opts.Retryable != nil && !s.opts.Retryable(err)):
			rec.Outcome, rec.Error = Failed, err.Error()
			return rec, stopNone
		}
		// Exact waits (no jitter): they are minutes apart and announced.
		wait := backoff.Policy{Initial: s.opts.Backoff, Max: s.opts.MaxBackoff}.Delay(n)
		t := s.opts.Clock.NewTimer(wait)
		s.emit(Event{
			Kind: EventRetry, Job: job.Name, Slot: p.slot, Attempt: n + 1, Late: p.late,
			At: s.opts.Clock.Now().Add(wait), Err: err,
		})
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return rec, stopShutdown
		}
	}
}

// call runs an attempt, turning a panic into an error.
func call(ctx context.Context, run RunFunc, a Attempt) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v\n%s", ErrPanic, r, debug.Stack())
		}
	}()
	return run(ctx, a)
}

func (s *Scheduler) emit(e Event) {
	if s.opts.OnEvent != nil {
		s.opts.OnEvent(e)
	}
}
