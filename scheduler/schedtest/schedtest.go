// Package schedtest has test doubles for the scheduler: a Clock that moves
// only when told to, and a Recorder of the scheduler's events to step a test
// through them. No test that uses them waits on real time.
package schedtest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/adtech/scorer/scheduler"
)

// Clock is a fake scheduler.Clock. Its time moves only by Set and Advance,
// which fire the timers that come due, oldest deadline first. Safe for
// concurrent use.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*timer
}

var _ scheduler.Clock = (*Clock)(nil)

// NewClock returns a clock showing t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now implements scheduler.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer implements scheduler.Clock. A timer for d <= 0 fires at once.
func (c *Clock) NewTimer(d time.Duration) scheduler.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

// Set moves the clock to t (never back) and fires the timers due by then.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.Before(c.now) {
		panic(fmt.Sprintf("schedtest: clock moved back from %s to %s", c.now, t))
	}
	c.now = t
	slices.SortStableFunc(c.timers, func(a, b *timer) int { return a.at.Compare(b.at) })
	keep := c.timers[:0]
	for _, tm := range c.timers {
		if tm.at.After(t) {
			keep = append(keep, tm)
			continue
		}
		tm.ch <- t
	}
	c.timers = keep
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// Timers is the number of timers waiting to fire.
func (c *Clock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

type timer struct {
	c  *Clock
	at time.Time
	ch chan time.Time
}

func (t *timer) C() <-chan time.Time { return t.ch }

func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	for i, tm := range t.c.timers {
		if tm == t {
			t.c.timers = slices.Delete(t.c.timers, i, i+1)
			return true
		}
	}
	return false
}

// Recorder keeps the events of a scheduler in order. Pass Record as
// scheduler.Options.OnEvent.
type Recorder struct {
	ch chan scheduler.Event
	mu sync.Mutex
	// all events, in order
	all []scheduler.Event
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder { return &Recorder{ch: make(chan scheduler.Event, 1<<16)} }

// Record is the scheduler's OnEvent.
func (r *Recorder) Record(e scheduler.Event) {
	r.mu.Lock()
	r.all = append(r.all, e)
	r.mu.Unlock()
	r.ch <- e
}

// All returns every event recorded so far.
func (r *Recorder) All() []scheduler.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.all)
}

// Await consumes events until one matches, and returns it. It fails after
// timeout of real time (a guard against a hung test, not a wait the test
// depends on).
func (r *Recorder) Await(timeout time.Duration, match func(scheduler.Event) bool) (scheduler.Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		select {
		case e := <-r.ch:
			if match(e) {
				return e, nil
			}
		case <-ctx.Done():
			return scheduler.Event{}, fmt.Errorf("schedtest: no matching event within %s", timeout)
		}
	}
}

// Kind matches events of one kind (and, if job is not empty, one job).
func Kind(k scheduler.EventKind, job string) func(scheduler.Event) bool {
	return func(e scheduler.Event) bool { return e.Kind == k && (job == "" || e.Job == job) }
}

// Idle matches the scheduler going to sleep with no job running.
func Idle(e scheduler.Event) bool { return e.Kind == scheduler.EventWait && e.Running == 0 }

// Step waits until the scheduler is idle and moves the clock to the time it
// sleeps until, unless that is after end (or there is none). It returns the
// time it moved to, and false when it did not move.
func Step(r *Recorder, c *Clock, end time.Time, timeout time.Duration) (time.Time, bool, error) {
	e, err := r.Await(timeout, Idle)
	if err != nil {
		return time.Time{}, false, err
	}
	if e.At.IsZero() || e.At.After(end) {
		return time.Time{}, false, nil
	}
	c.Set(e.At)
	return e.At, true, nil
}
