// Package lease keeps one active run per job with a lease object in the
// output store, built only on what every store gives: create-if-absent and
// write-if-generation-matches.
//
// A lease is a small JSON object (_scorer/leases/<job>.json, made by
// internal/state like every key under _scorer/). Acquire creates
// it, or takes over one whose holder let it expire, with a conditional write;
// Keep renews it (at most once a second) while the run works and cancels the
// run's context the moment a renewal finds the lease taken. Fence is the
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
	mu   sync.Mutex
	info Info
	gen  int64
	lost error
	// renewed is when the lease was last written, on the monotonic clock:
	// a process that was stopped sees the gap.
	renewed  time.Time
	inherKey string
	inher    []byte
}

// Options configure Acquire.
type Options struct {
	TTL time.Duration    // how long a lease lives without renewal (default 60 s)
	Now func() time.Time // clock (default time.Now)
}

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
	l := &Lease{b: b, key: state.LeaseKey(job), ttl: opts.TTL, now: opts.Now}
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
	newGen, err := state.Swap(ctx, l.b, l.key, data, gen)
	if err != nil {
		return err
	}
	l.gen = newGen
	l.renewed = time.Now()
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
	if l.lost == nil && time.Since(l.renewed) < MinRenew {
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

// Keep renews the lease every interval (ttl/4, at least MinRenew) until ctx
// is done, and calls lost if a renewal finds the lease gone or cannot renew
// before the lease would expire. Run it in its own goroutine.
func (l *Lease) Keep(ctx context.Context, lost func(error)) {
	every := max(l.ttl/4, MinRenew)
	t := time.NewTicker(every)
	defer t.Stop()
	lastOK := l.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A renewal that cannot finish before the lease would expire is as
		// good as lost: bound it, so that the run is stopped in time.
		rctx, cancel := context.WithDeadline(ctx, lastOK.Add(l.ttl-every))
		err := l.Renew(rctx)
		cancel()
		switch {
		case err == nil:
			lastOK = l.now()
		case errors.Is(err, ErrLost):
			lost(err)
			return
		case ctx.Err() != nil:
			return
		case l.now().Sub(lastOK) >= l.ttl-every:
			// Renewals keep failing (store unreachable): stop before the
			// lease can expire under us.
			lost(fmt.Errorf("%w: cannot renew: %w", ErrLost, err))
			return
		}
	}
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
