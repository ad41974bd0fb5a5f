package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scheduler"
	"github.com/adtech/scorer/scheduler/schedtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// guard bounds every wait on the scheduler's goroutines: it only fails a
// hung test; no test depends on real time passing.
const guard = 20 * time.Second

// attempts records the attempts a job made.
type attempts struct {
	mu  sync.Mutex
	all []scheduler.Attempt
}

func (a *attempts) add(x scheduler.Attempt) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.all = append(a.all, x)
}

func (a *attempts) get() []scheduler.Attempt {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.all)
}

// daemon is a running Scheduler driven by a fake clock.
type daemon struct {
	t      *testing.T
	clock  *schedtest.Clock
	events *schedtest.Recorder
	cancel context.CancelFunc
	result chan error
	once   sync.Once
	err    error
}

// startDaemon starts a scheduler over the jobs with opts (its clock, ledger
// and events filled in).
func startDaemon(t *testing.T, clock *schedtest.Clock, ledger scheduler.Ledger, jobs []scheduler.Job, opts scheduler.Options) *daemon {
	t.Helper()
	d := &daemon{t: t, clock: clock, events: schedtest.NewRecorder(), result: make(chan error, 1)}
	opts.Clock, opts.Ledger, opts.OnEvent = clock, ledger, d.events.Record
	s, err := scheduler.New(jobs, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go func() { d.result <- s.Run(ctx) }()
	t.Cleanup(func() { _ = d.stop() })
	return d
}

// stop cancels Run (SIGTERM) and returns what it returned.
func (d *daemon) stop() error {
	d.once.Do(func() {
		d.cancel()
		select {
		case d.err = <-d.result:
		case <-time.After(guard):
			d.err = errors.New("Run did not return")
			d.t.Error(d.err)
		}
	})
	return d.err
}

// runUntil steps the clock from slot to slot until the next one is after end.
func (d *daemon) runUntil(end time.Time) {
	d.t.Helper()
	for {
		_, moved, err := schedtest.Step(d.events, d.clock, end, guard)
		if err != nil {
			d.t.Fatal(err)
		}
		if !moved {
			return
		}
	}
}

func (d *daemon) await(match func(scheduler.Event) bool) scheduler.Event {
	d.t.Helper()
	e, err := d.events.Await(guard, match)
	if err != nil {
		d.t.Fatal(err)
	}
	return e
}

func utc(t *testing.T, s string) time.Time { return at(t, time.UTC, s) }

func newLedger(t *testing.T) *scheduler.StoreLedger {
	return scheduler.NewStoreLedger(store.NewFileBucket(t.TempDir()))
}

func nightly(t *testing.T, name, expr string, loc *time.Location, run scheduler.RunFunc) scheduler.Job {
	t.Helper()
	sp, err := scheduler.ParseSpec(expr, loc)
	if err != nil {
		t.Fatal(err)
	}
	return scheduler.Job{Name: name, Spec: sp, Run: run}
}

func recordingRun(a *attempts) scheduler.RunFunc {
	return func(_ context.Context, x scheduler.Attempt) error { a.add(x); return nil }
}

// A nightly job at 02:30 Berlin time, from the week before the spring change
// to the week after the autumn one (both DST changes, 224 nights): exactly
// one run every local day, at 02:30, or at the jump when 02:30 does not
// exist, or at the first 02:30 when it exists twice.
func TestNightlyRunsOncePerDayAcrossDST(t *testing.T) {
	tests := []struct {
		zone, clock string // the job's local time, HH:MM
		from, to    string // local
		special     map[string]string
	}{
		{
			"Europe/Berlin", "02:30", "2021-03-21 12:00", "2021-11-07 12:00",
			map[string]string{"2021-03-28": "2021-03-28T01:00:00Z", "2021-10-31": "2021-10-31T00:30:00Z"},
		},
		{"America/New_York", "01:30", "2021-03-10 12:00", "2021-03-17 12:00", nil},
		{
			"America/New_York", "01:30", "2021-11-03 12:00", "2021-11-10 12:00",
			map[string]string{"2021-11-07": "2021-11-07T05:30:00Z"},
		},
		{
			"America/New_York", "02:30", "2021-03-10 12:00", "2021-03-17 12:00",
			map[string]string{"2021-03-14": "2021-03-14T07:00:00Z"},
		},
		{"UTC", "02:30", "2021-03-24 12:00", "2021-03-31 12:00", nil},
	}
	for _, tt := range tests {
		t.Run(tt.zone+" "+tt.clock+" from "+tt.from, func(t *testing.T) {
			loc := mustLoc(t, tt.zone)
			cronExpr := fmt.Sprintf("%s %s * * *", tt.clock[3:5], strings.TrimPrefix(tt.clock[0:2], "0"))
			from, to := at(t, loc, tt.from), at(t, loc, tt.to)
			var runs attempts
			d := startDaemon(t, schedtest.NewClock(from), newLedger(t), []scheduler.Job{nightly(t, "nightly", cronExpr, loc, recordingRun(&runs))}, scheduler.Options{})
			d.runUntil(to)
			if err := d.stop(); err != nil {
				t.Fatal(err)
			}
			perDay := map[string][]scheduler.Attempt{}
			for _, a := range runs.get() {
				day := a.Slot.In(loc).Format(time.DateOnly)
				perDay[day] = append(perDay[day], a)
			}
			days := 0
			for day := from.AddDate(0, 0, 1); !day.After(to); day = day.AddDate(0, 0, 1) {
				days++
				key := day.Format(time.DateOnly)
				got := perDay[key]
				if len(got) != 1 {
					t.Errorf("%s: %d runs, want 1: %v", key, len(got), got)
					continue
				}
				want := at(t, loc, key+" "+tt.clock).UTC().Format(time.RFC3339)
				if s, ok := tt.special[key]; ok {
					want = s
				}
				if g := got[0].Slot.UTC().Format(time.RFC3339); g != want {
					t.Errorf("%s: ran at %s, want %s", key, g, want)
				}
				if got[0].Late || got[0].Number != 1 {
					t.Errorf("%s: attempt %+v, want the first, on time", key, got[0])
				}
			}
			if n := len(runs.get()); n != days {
				t.Errorf("%d runs over %d days", n, days)
			}
		})
	}
}

// After downtime, every slot that was due and never ran runs once, oldest
// first, then the schedule goes on; a restart with nothing missed runs
// nothing.
func TestCatchUpAfterDowntime(t *testing.T) {
	tests := []struct {
		zone      string
		start     string // local; the first night runs, then the daemon is down
		restart   string
		wantSlots []string // UTC, caught up at restart
		next      string   // UTC, the next on-time run
	}{
		{
			"UTC", "2021-01-01 12:00", "2021-01-05 12:00",
			[]string{"2021-01-03T02:30:00Z", "2021-01-04T02:30:00Z", "2021-01-05T02:30:00Z"},
			"2021-01-06T02:30:00Z",
		},
		{"Europe/Berlin", "2021-03-25 12:00", "2021-03-29 12:00", // down over the spring change
			[]string{"2021-03-27T01:30:00Z", "2021-03-28T01:00:00Z", "2021-03-29T00:30:00Z"}, "2021-03-30T00:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.zone, func(t *testing.T) {
			loc := mustLoc(t, tt.zone)
			ledger := newLedger(t)
			clock := schedtest.NewClock(at(t, loc, tt.start))
			var runs attempts
			jobs := []scheduler.Job{nightly(t, "nightly", "30 2 * * *", loc, recordingRun(&runs))}

			first := startDaemon(t, clock, ledger, jobs, scheduler.Options{})
			first.runUntil(at(t, loc, tt.start).Add(24 * time.Hour))
			if err := first.stop(); err != nil {
				t.Fatal(err)
			}
			if n := len(runs.get()); n != 1 {
				t.Fatalf("%d runs before the downtime, want 1", n)
			}

			clock.Set(at(t, loc, tt.restart)) // three nights without a scheduler
			second := startDaemon(t, clock, ledger, jobs, scheduler.Options{})
			if e := second.await(schedtest.Kind(scheduler.EventLoaded, "nightly")); e.Count != 3 {
				t.Fatalf("%d slots due at restart, want 3", e.Count)
			}
			second.runUntil(at(t, loc, tt.restart).Add(24 * time.Hour))
			if err := second.stop(); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range runs.get()[1:] {
				got = append(got, a.Slot.UTC().Format(time.RFC3339))
				if a.Number != 1 {
					t.Errorf("attempt %+v, want one attempt per slot", a)
				}
			}
			want := append(slices.Clone(tt.wantSlots), tt.next)
			if !slices.Equal(got, want) {
				t.Fatalf("runs after restart %v, want %v (oldest first, then on time)", got, want)
			}
			for i, a := range runs.get()[1:] {
				if late := i < len(tt.wantSlots); a.Late != late {
					t.Errorf("run %s: late = %v, want %v", a.Slot, a.Late, late)
				}
			}

			third := startDaemon(t, clock, ledger, jobs, scheduler.Options{})
			if e := third.await(schedtest.Kind(scheduler.EventLoaded, "nightly")); e.Count != 0 {
				t.Fatalf("%d slots due at a restart with nothing missed, want 0", e.Count)
			}
			if err := third.stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// MaxCatchUp runs only the newest slots; the older ones are skipped, once.
func TestCatchUpLimit(t *testing.T) {
	ledger := newLedger(t)
	clock := schedtest.NewClock(utc(t, "2021-01-01 12:00"))
	var runs attempts
	jobs := []scheduler.Job{nightly(t, "nightly", "30 2 * * *", time.UTC, recordingRun(&runs))}
	first := startDaemon(t, clock, ledger, jobs, scheduler.Options{})
	first.await(schedtest.Idle)
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	clock.Set(utc(t, "2021-01-06 12:00")) // five nights missed
	second := startDaemon(t, clock, ledger, jobs, scheduler.Options{MaxCatchUp: 2})
	skip := second.await(schedtest.Kind(scheduler.EventSkip, "nightly"))
	if skip.Count != 3 || !errors.Is(skip.Err, scheduler.ErrCatchUpLimit) || !skip.Slot.Equal(utc(t, "2021-01-04 02:30")) {
		t.Fatalf("skip event %+v, want 3 slots up to 2021-01-04 02:30", skip)
	}
	second.await(schedtest.Idle)
	if err := second.stop(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range runs.get() {
		got = append(got, a.Slot.Format("01-02"))
	}
	if !slices.Equal(got, []string{"01-05", "01-06"}) {
		t.Fatalf("caught up %v, want the newest two", got)
	}
	third := startDaemon(t, clock, ledger, jobs, scheduler.Options{MaxCatchUp: 2})
	if e := third.await(schedtest.Kind(scheduler.EventLoaded, "nightly")); e.Count != 0 {
		t.Fatalf("%d due after the skip, want 0", e.Count)
	}
}

// A slot that comes due while the job is still running is skipped, logged
// as an event and settled as skipped; the schedule goes on after the run.
func TestTickDuringRunIsSkipped(t *testing.T) {
	ledger := newLedger(t)
	clock := schedtest.NewClock(utc(t, "2021-01-01 00:30"))
	var runs attempts
	release := make(chan struct{})
	run := func(ctx context.Context, a scheduler.Attempt) error {
		runs.add(a)
		if a.Slot.Hour() == 1 {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	d := startDaemon(t, clock, ledger, []scheduler.Job{nightly(t, "hourly", "0 * * * *", time.UTC, run)}, scheduler.Options{})
	if _, _, err := schedtest.Step(d.events, clock, utc(t, "2021-01-02 00:00"), guard); err != nil { // to 01:00
		t.Fatal(err)
	}
	w := d.await(func(e scheduler.Event) bool { return e.Kind == scheduler.EventWait && e.Running == 1 })
	clock.Set(w.At) // 02:00 comes while 01:00 runs
	skip := d.await(schedtest.Kind(scheduler.EventSkip, "hourly"))
	if !skip.Slot.Equal(utc(t, "2021-01-01 02:00")) || !errors.Is(skip.Err, scheduler.ErrOverlap) {
		t.Fatalf("skip event %+v, want 02:00 skipped for overlap", skip)
	}
	close(release)
	d.runUntil(utc(t, "2021-01-01 03:00"))
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range runs.get() {
		got = append(got, a.Slot.Format("15:04"))
	}
	if !slices.Equal(got, []string{"01:00", "03:00"}) {
		t.Fatalf("runs %v, want 01:00 and 03:00 (02:00 skipped)", got)
	}
	r, err := ledger.ReadSlot(context.Background(), "hourly", utc(t, "2021-01-01 02:00"))
	if err != nil || r.Outcome != scheduler.Skipped {
		t.Fatalf("slot 02:00 in the ledger: %+v, %v; want skipped", r, err)
	}
}

var errPermanent = errors.New("bad input")

func TestRetries(t *testing.T) {
	tests := []struct {
		name        string
		fail        func(n int) error // the nth attempt's result
		wantOutcome scheduler.Outcome
		wantBackoff []time.Duration
	}{
		{
			"retryable until the limit", func(int) error { return errors.New("store unreachable") },
			scheduler.Failed,
			[]time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute},
		},
		{"succeeds on the second attempt", func(n int) error {
			if n == 1 {
				return errors.New("store unreachable")
			}
			return nil
		}, scheduler.Succeeded, []time.Duration{time.Minute}},
		{
			"bad input is not retried", func(int) error { return fmt.Errorf("row 7: %w", errPermanent) },
			scheduler.Failed, nil,
		},
		{"a panic is recovered and retried", func(n int) error {
			if n == 1 {
				panic("boom")
			}
			return nil
		}, scheduler.Succeeded, []time.Duration{time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ledger := newLedger(t)
			clock := schedtest.NewClock(utc(t, "2021-01-01 12:00"))
			run := func(_ context.Context, a scheduler.Attempt) error { return tt.fail(a.Number) }
			d := startDaemon(t, clock, ledger, []scheduler.Job{nightly(t, "nightly", "30 2 * * *", time.UTC, run)}, scheduler.Options{
				Retries: 3, Backoff: time.Minute, MaxBackoff: 3 * time.Minute,
				Retryable: func(err error) bool { return !errors.Is(err, errPermanent) },
			})
			if _, _, err := schedtest.Step(d.events, clock, utc(t, "2021-01-02 12:00"), guard); err != nil {
				t.Fatal(err)
			}
			var backoffs []time.Duration
			var settled scheduler.Event
			for settled.Kind == "" {
				e := d.await(func(e scheduler.Event) bool {
					return e.Kind == scheduler.EventRetry || e.Kind == scheduler.EventSettled
				})
				if e.Kind == scheduler.EventSettled {
					settled = e
					break
				}
				backoffs = append(backoffs, e.At.Sub(clock.Now()))
				clock.Set(e.At)
			}
			if err := d.stop(); err != nil {
				t.Fatal(err)
			}
			if settled.Outcome != tt.wantOutcome || settled.Attempt != len(tt.wantBackoff)+1 {
				t.Errorf("settled %s after %d attempts, want %s after %d", settled.Outcome, settled.Attempt, tt.wantOutcome, len(tt.wantBackoff)+1)
			}
			if !slices.Equal(backoffs, tt.wantBackoff) {
				t.Errorf("backoffs %v, want %v", backoffs, tt.wantBackoff)
			}
		})
	}
}

// SIGTERM (Run's context cancelled) during a run: the run may finish within
// the shutdown timeout (Run returns nil, the slot is settled); past it, the
// run is cancelled, Run returns ErrAborted, and the slot runs again at the
// next start. A shutdown during a retry's backoff starts nothing more.
func TestShutdown(t *testing.T) {
	tests := []struct {
		name        string
		finish      bool // the run finishes within the shutdown timeout
		failFirst   bool // the first attempt fails, so the shutdown comes during the backoff
		wantErr     error
		wantSettled bool
	}{
		{"run finishes in time", true, false, nil, true},
		{"run cut short at the deadline", false, false, scheduler.ErrAborted, false},
		{"shutdown during a backoff", false, true, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ledger := newLedger(t)
			clock := schedtest.NewClock(utc(t, "2021-01-01 12:00"))
			release := make(chan struct{})
			started := make(chan struct{}, 10)
			var runs attempts
			run := func(ctx context.Context, a scheduler.Attempt) error {
				runs.add(a)
				if tt.failFirst {
					return errors.New("store unreachable")
				}
				started <- struct{}{}
				select {
				case <-release:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			jobs := []scheduler.Job{nightly(t, "nightly", "30 2 * * *", time.UTC, run)}
			opts := scheduler.Options{ShutdownTimeout: 10 * time.Minute, Retries: 3}
			d := startDaemon(t, clock, ledger, jobs, opts)
			if _, _, err := schedtest.Step(d.events, clock, utc(t, "2021-01-02 12:00"), guard); err != nil {
				t.Fatal(err)
			}
			if tt.failFirst {
				d.await(schedtest.Kind(scheduler.EventRetry, "nightly"))
			} else {
				<-started
			}
			d.cancel() // SIGTERM
			if !tt.failFirst {
				stopping := d.await(schedtest.Kind(scheduler.EventStopping, ""))
				if stopping.Running != 1 || !stopping.At.Equal(clock.Now().Add(10*time.Minute)) {
					t.Fatalf("stopping event %+v, want one run with 10m to go", stopping)
				}
				if tt.finish {
					close(release)
				} else {
					clock.Set(stopping.At)
					d.await(schedtest.Kind(scheduler.EventCancel, ""))
				}
			}
			err := d.stop()
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Run returned %v, want %v", err, tt.wantErr)
			}
			slot := utc(t, "2021-01-02 02:30")
			settled, err := ledger.Settled(context.Background(), "nightly", slot)
			if err != nil || settled != tt.wantSettled {
				t.Fatalf("slot settled = %v (%v), want %v", settled, err, tt.wantSettled)
			}
			if n := len(runs.get()); n != 1 {
				t.Fatalf("%d attempts, want 1 (nothing started after SIGTERM)", n)
			}
			if tt.wantSettled {
				return
			}
			// The unsettled slot runs again at the next start.
			var again attempts
			next := startDaemon(t, clock, ledger, []scheduler.Job{nightly(t, "nightly", "30 2 * * *", time.UTC, recordingRun(&again))}, opts)
			if e := next.await(schedtest.Kind(scheduler.EventSettled, "nightly")); !e.Slot.Equal(slot) || e.Outcome != scheduler.Succeeded {
				t.Fatalf("after restart: %+v, want the slot of %s run", e, slot)
			}
			if err := next.stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestNewRefusesBadJobs(t *testing.T) {
	sp, _ := scheduler.ParseSpec("@daily", nil)
	run := func(context.Context, scheduler.Attempt) error { return nil }
	ledger := newLedger(t)
	for name, jobs := range map[string][]scheduler.Job{
		"empty name": {{Name: "", Spec: sp, Run: run}},
		"slash":      {{Name: "a/b", Spec: sp, Run: run}},
		"duplicate":  {{Name: "a", Spec: sp, Run: run}, {Name: "a", Spec: sp, Run: run}},
		"no run":     {{Name: "a", Spec: sp}},
		"no spec":    {{Name: "a", Run: run}},
	} {
		if _, err := scheduler.New(jobs, scheduler.Options{Ledger: ledger}); err == nil {
			t.Errorf("%s: New accepted %+v", name, jobs)
		}
	}
	if _, err := scheduler.New(nil, scheduler.Options{}); err == nil {
		t.Error("New accepted no ledger")
	}
}

// flakyLedger fails its first Load, as an unreachable store would.
type flakyLedger struct {
	scheduler.Ledger
	mu    sync.Mutex
	fails int
}

func (l *flakyLedger) Load(ctx context.Context, job string) (scheduler.JobState, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fails > 0 {
		l.fails--
		return scheduler.JobState{}, errors.New("store unreachable")
	}
	return l.Ledger.Load(ctx, job)
}

// Until the ledger can be read the scheduler is not ready and runs nothing;
// it retries after Backoff.
func TestNotReadyUntilLedgerLoads(t *testing.T) {
	clock := schedtest.NewClock(utc(t, "2021-01-01 12:00"))
	ledger := &flakyLedger{Ledger: newLedger(t), fails: 1}
	var runs attempts
	sp, _ := scheduler.ParseSpec("30 2 * * *", nil)
	events := schedtest.NewRecorder()
	s, err := scheduler.New([]scheduler.Job{{Name: "nightly", Spec: sp, Run: recordingRun(&runs)}},
		scheduler.Options{Clock: clock, Ledger: ledger, Backoff: time.Minute, OnEvent: events.Record})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	e, err := events.Await(guard, schedtest.Kind(scheduler.EventError, "nightly"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := events.Await(guard, schedtest.Idle)
	if err != nil {
		t.Fatal(err)
	}
	if s.Ready() || !w.At.Equal(e.At) || !e.At.Equal(clock.Now().Add(time.Minute)) {
		t.Fatalf("after a failed load: ready %v, retry at %s, sleeping until %s", s.Ready(), e.At, w.At)
	}
	clock.Set(w.At)
	if _, err := events.Await(guard, schedtest.Kind(scheduler.EventLoaded, "nightly")); err != nil {
		t.Fatal(err)
	}
	if _, err := events.Await(guard, schedtest.Idle); err != nil {
		t.Fatal(err)
	}
	if !s.Ready() {
		t.Fatal("not ready after the ledger loaded")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s.Ready() {
		t.Error("ready after Run returned")
	}
}

var errBusy = errors.New("lease held by another run")

// Two schedulers sharing a ledger (two daemons on one output store): the
// second finds the slot's job busy, and before its retry finds the slot
// settled by the first, so the slot runs once.
func TestSchedulersSharingALedger(t *testing.T) {
	ledger := newLedger(t)
	clock := schedtest.NewClock(utc(t, "2021-01-01 12:00"))
	var lock sync.Mutex // the job's lease
	var runs attempts
	release := make(chan struct{})
	run := func(ctx context.Context, a scheduler.Attempt) error {
		runs.add(a)
		if !lock.TryLock() {
			return errBusy
		}
		defer lock.Unlock()
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	jobs := []scheduler.Job{nightly(t, "nightly", "30 2 * * *", time.UTC, run)}
	opts := scheduler.Options{Retries: 3, Backoff: time.Minute}
	first := startDaemon(t, clock, ledger, jobs, opts)
	if _, _, err := schedtest.Step(first.events, clock, utc(t, "2021-01-02 12:00"), guard); err != nil {
		t.Fatal(err)
	}
	first.await(schedtest.Kind(scheduler.EventStart, "nightly"))

	clock.Advance(30 * time.Second)
	second := startDaemon(t, clock, ledger, jobs, opts) // finds 02:30 due, and busy
	retry := second.await(schedtest.Kind(scheduler.EventRetry, "nightly"))
	if !errors.Is(retry.Err, errBusy) {
		t.Fatalf("second scheduler: %+v, want a retry after busy", retry)
	}
	close(release)
	if e := first.await(schedtest.Kind(scheduler.EventSettled, "nightly")); e.Outcome != scheduler.Succeeded {
		t.Fatalf("first scheduler: %+v", e)
	}
	clock.Set(retry.At)
	if e := second.await(schedtest.Kind(scheduler.EventAlready, "nightly")); e.Attempt != 2 {
		t.Fatalf("second scheduler: %+v, want the slot found settled before attempt 2", e)
	}
	for _, d := range []*daemon{first, second} {
		if err := d.stop(); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(runs.get()); n != 2 {
		t.Fatalf("%d attempts, want 2 (one run, one refused)", n)
	}
	r, err := ledger.ReadSlot(context.Background(), "nightly", utc(t, "2021-01-02 02:30"))
	if err != nil || r.Outcome != scheduler.Succeeded || r.Attempts != 1 {
		t.Fatalf("ledger: %+v %v", r, err)
	}
}
