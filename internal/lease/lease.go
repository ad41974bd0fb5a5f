// Package lease keeps one active run per job with a lease object in the
// output store, built only on what every store gives: create-if-absent and
// write-if-generation-matches.
//
// A lease is a small JSON object (_scorer/leases/<job>.json, made by
// internal/state like every key under _scorer/). Acquire creates
// it, or takes over one whose holder let it expire, with a conditional write;
// Keep renews it (at most once a second) while the run works, retries a
// renewal that fails or is slow for as long as the lease cannot have expired,
// and stops the run the moment a renewal finds the lease taken (see Keep for
// the timing model). Fence is the
// fencing write: it stores the run's commit record in the lease object,
// conditional on the generation the holder last wrote, so a run that stalled
// and lost its lease can never commit (its fence fails); the commit record is
// then written to its own key by the holder, or, if the holder dies first, by
// the next holder (Inherited).
//
// A lease held by a process of this host that no longer exists is free at
// once. Expiry compares the holder's clock (ExpiresAt, written by the holder) with
// the next acquirer's clock, so clocks must agree to well within the TTL.
package lease

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/adtech/scorer/internal/backoff"
	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
)

// Errors.
var (
	// ErrHeld: another run holds the lease and it has not expired.
	ErrHeld = errors.New("lease held by another run")
	// ErrLost: the lease was taken over (after it expired) or deleted.
	ErrLost = errors.New("lease lost")
)

// MinRenew is the shortest renewal interval: a lease object is written at
// most once a second (GCS allows about one write per second per object).
const MinRenew = time.Second

// Info is the content of a lease object.
type Info struct {
	Holder     string    `json:"holder"` // host, pid and pid namespace
	RunID      string    `json:"run_id"`
	AcquiredAt time.Time `json:"acquired_at"`
	RenewedAt  time.Time `json:"renewed_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	Released   bool      `json:"released,omitempty"`
	// Pending is an object fenced by the holder (see Fence) that may not
	// be written yet: its key and exact bytes (base64 in the JSON).
	PendingKey string `json:"pending_key,omitempty"`
	Pending    []byte `json:"pending,omitempty"`
}

// Lease is a held lease. Its methods are safe for concurrent use.
type Lease struct {
	b    store.Bucket
	key  string
	ttl  time.Duration
	now  func() time.Time
	clk  Clock
	mu   sync.Mutex
	info Info
	gen  int64
	lost error
	// renewed is when the last successful write of the lease began, on
	// the monotonic clock (clk): the lease lives at least ttl from then,
	// and a process that was stopped sees the gap.
	renewed  time.Time
	inherKey string
	inher    []byte
}

// Options configure Acquire.
type Options struct {
	TTL time.Duration    // how long a lease lives without renewal (default 60 s)
	Now func() time.Time // wall clock written into the lease (default time.Now)
	// Clock measures elapsed time and waits (renewal intervals, per-call
	// timeouts, backoff, the give-up time); default: the system's
	// monotonic clock. Tests inject a fake one.
	Clock Clock
}

// Clock is the time source of renewals. Now is read for elapsed time only
// (with the system clock, its monotonic reading); Sleep and WithTimeout are
// time.Sleep (ended early by ctx) and context.WithTimeout on that clock.
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
	WithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc)
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (systemClock) WithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

// Timing is how a lease of a given TTL is kept (see Keep).
type Timing struct {
	TTL time.Duration
	// Interval is the pause between the start of a successful renewal and
	// the next one: TTL/4, at least MinRenew.
	Interval time.Duration
	// CallTimeout bounds one renewal attempt: Interval, and never past the
	// give-up time.
	CallTimeout time.Duration
	// Margin is how long before the lease would really expire the holder
	// gives up renewing and stops its run: TTL/4.
	Margin time.Duration
	// Backoff is the pause between failed attempts: Interval/8 doubling up
	// to Interval/2, with equal jitter, never past the give-up time.
	Backoff backoff.Policy
}

// TimingFor returns the timing of a lease of the given TTL.
func TimingFor(ttl time.Duration) Timing {
	every := max(ttl/4, MinRenew)
	return Timing{
		TTL:         ttl,
		Interval:    every,
		CallTimeout: every,
		Margin:      ttl / 4,
		Backoff:     backoff.Policy{Initial: every / 8, Max: every / 2, Jitter: backoff.Equal},
	}
}

// GiveUp is how long after the start of the last successful renewal the
// holder stops renewing: TTL - Margin.
func (t Timing) GiveUp() time.Duration { return t.TTL - t.Margin }

// Acquire takes the lease for job on behalf of runID, or returns an error
// wrapping ErrHeld with the holder named.
func Acquire(ctx context.Context, b store.Bucket, job, runID string, opts Options) (*Lease, error) {
	if opts.TTL <= 0 {
		opts.TTL = time.Minute
	}
	if opts.TTL < 2*MinRenew {
		return nil, fmt.Errorf("lease %s: ttl %s is shorter than twice the minimum renewal interval", job, opts.TTL)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Clock == nil {
		opts.Clock = systemClock{}
	}
	l := &Lease{b: b, key: state.LeaseKey(job), ttl: opts.TTL, now: opts.Now, clk: opts.Clock}
	now := l.now().UTC()
	l.info = Info{Holder: holderID(), RunID: runID, AcquiredAt: now, RenewedAt: now, ExpiresAt: now.Add(l.ttl)}

	cur, gen, err := read(ctx, b, l.key)
	switch {
	case errors.Is(err, store.ErrNotExist):
		err = l.write(ctx, 0)
	case err != nil:
		return nil, fmt.Errorf("acquire lease %s: %w", job, err)
	case !cur.Released && now.Before(cur.ExpiresAt) && !holderDead(cur.Holder):
		return nil, fmt.Errorf("acquire lease %s: %w: run %s (%s) until %s", job, ErrHeld, cur.RunID, cur.Holder, cur.ExpiresAt.Format(time.RFC3339))
	default: // expired or released: take over, inheriting a fenced commit
		l.inherKey, l.inher = cur.PendingKey, cur.Pending
		l.info.PendingKey, l.info.Pending = cur.PendingKey, cur.Pending
		err = l.write(ctx, gen)
	}
	if errors.Is(err, store.ErrPrecondition) {
		return nil, fmt.Errorf("acquire lease %s: %w (taken while acquiring)", job, ErrHeld)
	}
	if err != nil {
		return nil, fmt.Errorf("acquire lease %s: %w", job, err)
	}
	return l, nil
}

// Peek reads the lease of job without taking it, or returns an error
// wrapping store.ErrNotExist if there is none.
func Peek(ctx context.Context, b store.Bucket, job string) (Info, error) {
	info, _, err := read(ctx, b, state.LeaseKey(job))
	if err != nil {
		return Info{}, fmt.Errorf("peek lease %s: %w", job, err)
	}
	return info, nil
}

// read returns a lease and its generation, or an error wrapping
// store.ErrNotExist if there is none (or it was replaced while reading).
func read(ctx context.Context, b store.Bucket, key string) (Info, int64, error) {
	data, gen, err := state.ReadGen(ctx, b, key)
	if err != nil {
		return Info{}, 0, err
	}
	if gen == 0 {
		return Info{}, 0, fmt.Errorf("read lease %s: %w", b.URI(key), store.ErrNotExist)
	}
	var info Info
	if err := state.Decode(data, &info); err != nil {
		return Info{}, 0, fmt.Errorf("decode lease %s: %w", b.URI(key), err)
	}
	return info, gen, nil
}

// write stores l.info conditional on generation gen (0: the lease must be
// absent) and records the new generation. Called with l.mu held (or before
// l is shared).
func (l *Lease) write(ctx context.Context, gen int64) error {
	data, err := state.EncodeCompact(l.info)
	if err != nil {
		return err
	}
	start := l.clk.Now()
	newGen, err := state.Swap(ctx, l.b, l.key, data, gen)
	if errors.Is(err, store.ErrPrecondition) && gen != 0 {
		// An earlier attempt whose answer was lost (a timeout) may have
		// been applied: if the lease is still this run's, adopt its
		// generation and write again.
		// A read that fails leaves the question open (an error that is
		// not a failed precondition: Keep retries); a deleted lease is lost.
		cur, curGen, rerr := read(ctx, l.b, l.key)
		switch {
		case rerr != nil:
			return fmt.Errorf("check lease %s after a failed precondition: %w", l.key, rerr)
		case curGen != gen && cur.Holder == l.info.Holder && cur.RunID == l.info.RunID && !cur.Released:
			newGen, err = state.Swap(ctx, l.b, l.key, data, curGen)
		}
	}
	if err != nil {
		return err
	}
	l.gen = newGen
	l.renewed = start
	return nil
}

// holderID names this process: host, pid and pid namespace
// ("host/pid/pid:[4026531836]"), so that a pid is only ever compared within
// the namespace it belongs to (containers sharing a host name do not).
func holderID() string {
	host, _ := os.Hostname()
	ns, _ := os.Readlink("/proc/self/ns/pid")
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), ns)
}

// holderDead reports whether a lease's holder is a process of this host and
// pid namespace that no longer exists: a run that crashed on this machine
// (cron on one box) frees its job at once instead of after the TTL. Any
// other holder is judged by expiry alone.
func holderDead(holder string) bool {
	parts := strings.SplitN(holder, "/", 3)
	me := strings.SplitN(holderID(), "/", 3)
	if len(parts) != 3 || parts[0] != me[0] || parts[2] != me[2] || me[2] == "" {
		return false
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return false
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// Inherited returns the object (key and bytes) a previous holder fenced but
// may not have written, or "" and nil. The new holder writes it
// (store.CreateOrSame) before anything else, so a fenced commit is never
// lost.
func (l *Lease) Inherited() (key string, data []byte) { return l.inherKey, l.inher }

// Renew extends the lease, conditional on the generation last written. An
// error wrapping ErrLost means another run holds it now.
func (l *Lease) Renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.renewLocked(ctx)
}

func (l *Lease) renewLocked(ctx context.Context) error {
	if l.lost != nil {
		return l.lost
	}
	now := l.now().UTC()
	l.info.RenewedAt, l.info.ExpiresAt = now, now.Add(l.ttl)
	err := l.write(ctx, l.gen)
	if errors.Is(err, store.ErrPrecondition) || errors.Is(err, store.ErrNotExist) {
		l.lost = fmt.Errorf("renew lease %s: %w", l.key, ErrLost)
		return l.lost
	}
	if err != nil {
		return fmt.Errorf("renew lease %s: %w", l.key, err)
	}
	return nil
}

// Check makes sure the lease is still held before a change that only the
// holder may make: it renews the lease (a conditional write) unless it was
// written less than MinRenew ago on this process's monotonic clock, which
// a stalled process cannot fake. An error wrapping ErrLost means stop.
func (l *Lease) Check(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost == nil && l.clk.Now().Sub(l.renewed) < MinRenew {
		return nil
	}
	return l.renewLocked(ctx)
}

// ClearPending forgets an inherited object once it is written, so that the
// next holder does not write it again.
func (l *Lease) ClearPending(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.info.PendingKey, l.info.Pending = "", nil
	return l.renewLocked(ctx)
}

// Fence records an object to be written (a commit record) in the lease
// object, conditional on the lease still being ours. Once it returns nil
// the commit is decided: the object will be written, by this run or by the
// next holder of the lease (Inherited).
func (l *Lease) Fence(ctx context.Context, key string, data []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.info.PendingKey, l.info.Pending = key, data
	if err := l.renewLocked(ctx); err != nil {
		l.info.PendingKey, l.info.Pending = "", nil
		return fmt.Errorf("fence %s: %w", key, err)
	}
	return nil
}

// Keep renews the lease until ctx is done and calls lost (once) when the
// run must stop. Run it in its own goroutine. The timing (TimingFor):
//
//   - a renewal starts Interval after the start of the last successful
//     write of the lease (by Keep, Check, Fence or ClearPending), measured
//     on the monotonic clock;
//   - each attempt runs under CallTimeout; an attempt that fails (an error,
//     or its timeout) is retried after a backoff, as long as the give-up
//     time, TTL - Margin after the start of the last successful write, has
//     not come: the lease object still names this run until TTL after that
//     start, so nobody can have taken it;
//   - at the give-up time lost is called with an error wrapping ErrLost
//     ("cannot renew"): the run stops Margin before the lease could expire;
//   - a renewal that finds the lease taken or deleted (a failed
//     precondition that is not this run's own lost write) calls lost at once.
//
// A process stopped for longer than the give-up time (SIGSTOP, a VM pause)
// sees the gap on its monotonic clock when it wakes: Keep calls lost
// without another attempt. Its main goroutine may get to a Check or Fence
// first; those are conditional writes, so a run whose lease was taken never
// commits (and one whose lease nobody took may still finish).
func (l *Lease) Keep(ctx context.Context, lost func(error)) {
	tm := TimingFor(l.ttl)
	for {
		last := l.lastWrite()
		if !l.wait(ctx, last.Add(tm.Interval).Sub(l.clk.Now())) {
			return
		}
		if l.lastWrite().After(last) {
			continue // Check or Fence renewed it meanwhile
		}
		if err := l.renewBefore(ctx, last.Add(tm.GiveUp()), tm); err != nil {
			if ctx.Err() == nil {
				lost(err)
			}
			return
		}
	}
}

// lastWrite is when the last successful write of the lease began.
func (l *Lease) lastWrite() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.renewed
}

// renewBefore renews the lease, retrying failed attempts until giveUp. It
// returns nil once renewed, or the error that must stop the run (wrapping
// ErrLost), or ctx's error.
func (l *Lease) renewBefore(ctx context.Context, giveUp time.Time, tm Timing) error {
	var lastErr error
	for n := 1; ; n++ {
		left := giveUp.Sub(l.clk.Now())
		if left <= 0 {
			if lastErr == nil {
				lastErr = errors.New("stalled past the give-up time")
			}
			return fmt.Errorf("%w: cannot renew %s within %s of the last renewal (ttl %s): %w", ErrLost, l.key, tm.GiveUp(), tm.TTL, lastErr)
		}
		actx, cancel := l.clk.WithTimeout(ctx, min(tm.CallTimeout, left))
		err := l.Renew(actx)
		cancel()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrLost):
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		}
		lastErr = err
		if !l.wait(ctx, min(tm.Backoff.Delay(n), giveUp.Sub(l.clk.Now()))) {
			return ctx.Err()
		}
	}
}

// wait waits d on the lease's clock; false if ctx ended first.
func (l *Lease) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	return l.clk.Sleep(ctx, d) == nil
}

// Release gives the lease up, keeping a fenced commit for the next holder
// unless the caller wrote it (committed). A lost lease is left alone.
func (l *Lease) Release(ctx context.Context, committed bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return nil
	}
	if committed {
		l.info.PendingKey, l.info.Pending = "", nil
	}
	l.info.Released = true
	l.info.ExpiresAt = l.now().UTC()
	if err := l.write(ctx, l.gen); err != nil {
		return fmt.Errorf("release lease %s: %w", l.key, err)
	}
	return nil
}
