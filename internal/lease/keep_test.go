package lease

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
)

// fakeClock is a Clock that moves only when the test advances it. Every
// time the code under test blocks on it (Sleep) it sends a token on quiet,
// as the stalling store does: the test advances the clock only when the
// code is waiting for it, never racing it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	quiet  chan string
}

type fakeTimer struct {
	at   time.Time
	fire func()
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2020, 9, 2, 1, 0, 0, 0, time.UTC), quiet: make(chan string, 64)}
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) add(d time.Duration, fire func()) (remove func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), fire: fire}
	c.timers = append(c.timers, t)
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.timers = slices.DeleteFunc(c.timers, func(x *fakeTimer) bool { return x == t })
	}
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	ch := make(chan struct{})
	remove := c.add(d, func() { close(ch) })
	defer remove()
	c.quiet <- "sleep " + d.String()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-ch:
		return nil
	}
}

func (c *fakeClock) WithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	remove := c.add(d, func() { cancel(context.DeadlineExceeded) })
	return ctx, func() { remove(); cancel(context.Canceled) }
}

// advanceToNext moves the clock to the earliest timer and fires every timer
// due by then.
func (c *fakeClock) advanceToNext(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	if len(c.timers) == 0 {
		c.mu.Unlock()
		t.Fatal("advance: no timer pending")
	}
	next := c.timers[0].at
	for _, x := range c.timers {
		if x.at.Before(next) {
			next = x.at
		}
	}
	if next.After(c.now) {
		c.now = next
	}
	var due []*fakeTimer
	c.timers = slices.DeleteFunc(c.timers, func(x *fakeTimer) bool {
		if !x.at.After(c.now) {
			due = append(due, x)
			return true
		}
		return false
	})
	c.mu.Unlock()
	for _, x := range due {
		x.fire()
	}
}

// fault is what one write of the lease object does.
type fault int

const (
	pass      fault = iota
	fail            // a transient error (the store gave up: 503s)
	stall           // hangs until its context ends
	lostReply       // applied, but the caller sees an error (a lost answer)
)

// flakyBucket fails or stalls the writes of the lease object as its plan
// says, one entry per write (then passes). A stalling write sends a token
// on the clock's quiet channel once it hangs.
type flakyBucket struct {
	store.Bucket
	clk  *fakeClock
	mu   sync.Mutex
	plan []fault
	seen []fault
}

func (b *flakyBucket) next() fault {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := pass
	if len(b.plan) > 0 {
		f, b.plan = b.plan[0], b.plan[1:]
	}
	b.seen = append(b.seen, f)
	return f
}

func (b *flakyBucket) writes() []fault {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.seen)
}

var errUnavailable = errors.New("503 service unavailable (after 6 attempts)")

func (b *flakyBucket) NewWriter(ctx context.Context, key string, opts store.WriteOptions) (store.Writer, error) {
	if !strings.HasPrefix(key, "_scorer/leases/") {
		return b.Bucket.NewWriter(ctx, key, opts)
	}
	switch b.next() {
	case fail:
		return nil, fmt.Errorf("write %s: %w", key, errUnavailable)
	case stall:
		b.clk.quiet <- "stall"
		<-ctx.Done()
		return nil, fmt.Errorf("write %s: %w", key, context.Cause(ctx))
	case lostReply:
		w, err := b.Bucket.NewWriter(ctx, key, opts)
		if err != nil {
			return nil, err
		}
		return lostReplyWriter{w}, nil
	}
	return b.Bucket.NewWriter(ctx, key, opts)
}

type lostReplyWriter struct{ store.Writer }

func (w lostReplyWriter) Close() error {
	if err := w.Writer.Close(); err != nil {
		return err
	}
	return errUnavailable
}

// keeper runs Keep on a lease of ttl over a flaky bucket with a fake clock.
type keeper struct {
	clk    *fakeClock
	b      *flakyBucket
	l      *Lease
	start  time.Time
	lost   chan error
	cancel context.CancelFunc
	done   chan struct{}
}

func startKeeper(t *testing.T, ttl time.Duration, plan ...fault) *keeper {
	t.Helper()
	clk := newFakeClock()
	b := &flakyBucket{Bucket: store.NewFileBucket(t.TempDir()), clk: clk}
	l, err := Acquire(context.Background(), b, "queue", "run-a", Options{TTL: ttl, Now: clk.Now, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	b.plan, b.seen = plan, nil
	b.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	k := &keeper{clk: clk, b: b, l: l, start: clk.Now(), lost: make(chan error, 1), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(k.done)
		l.Keep(ctx, func(err error) { k.lost <- err })
	}()
	t.Cleanup(func() { cancel(); <-k.done })
	return k
}

// step waits until Keep waits on the clock (or a stalled write), or has
// called lost; in the first case it advances the clock to the next timer.
func (k *keeper) step(t *testing.T) (what string, lost error) {
	t.Helper()
	what, lost = k.wait(t)
	if lost == nil {
		k.clk.advanceToNext(t)
	}
	return what, lost
}

// wait waits until Keep waits on the clock (or a stalled write), or has
// called lost. While Keep waits, its state can be read without racing it.
func (k *keeper) wait(t *testing.T) (what string, lost error) {
	t.Helper()
	select {
	case what := <-k.quiet():
		return what, nil
	case err := <-k.lost:
		return "", err
	case <-time.After(time.Minute): // a hang, not synchronisation
		t.Fatal("Keep neither waited nor gave up")
	}
	return "", nil
}

func (k *keeper) quiet() <-chan string { return k.clk.quiet }

func (k *keeper) elapsed() time.Duration { return k.clk.Now().Sub(k.start) }

// A healthy run on a slow machine: the first renewal stalls past its call
// timeout, the next fails, the one after is applied but its answer is lost;
// the fourth renews (recognising the third as its own write). Keep must not
// stop the run: all of it happens before the give-up time.
func TestKeepRetriesARenewalUntilTheLeaseCouldExpire(t *testing.T) {
	ttl := 8 * time.Second // interval 2 s, call timeout 2 s, margin 2 s: give up 6 s after the last renewal
	tm := TimingFor(ttl)
	k := startKeeper(t, ttl, stall, fail, lostReply)
	var trace []string
	for {
		// Read Keep's state only while it waits: between a write and its
		// bookkeeping the two would disagree.
		what, lost := k.wait(t)
		if lost != nil {
			t.Fatalf("lease given up after %s (%v): %v", k.elapsed(), trace, lost)
		}
		if len(k.b.writes()) >= 4 && !k.l.lastWrite().Equal(k.start) {
			break
		}
		trace = append(trace, fmt.Sprintf("%s@%s", what, k.elapsed()))
		k.clk.advanceToNext(t)
	}
	renewedAt := k.l.lastWrite().Sub(k.start)
	if renewedAt <= tm.Interval+tm.CallTimeout || renewedAt >= tm.GiveUp() {
		t.Errorf("renewed %s after acquiring, want after the stalled attempt and before the give-up time %s (%v)", renewedAt, tm.GiveUp(), trace)
	}
	// The renewal is the lease's current generation: the next one works
	// without a conflict, and a second run is refused.
	if err := k.l.Renew(context.Background()); err != nil {
		t.Fatalf("renew after the retried renewal: %v", err)
	}
	if _, err := Acquire(context.Background(), k.b, "queue", "run-b", Options{TTL: ttl, Now: k.clk.Now, Clock: k.clk}); !errors.Is(err, ErrHeld) {
		t.Fatalf("second acquire: %v, want ErrHeld", err)
	}
	select {
	case err := <-k.lost:
		t.Fatalf("lost called: %v", err)
	default:
	}
	if w := k.b.writes(); !slices.Equal(w[:4], []fault{stall, fail, lostReply, pass}) {
		t.Errorf("writes %v", w)
	}
}

// Renewals that never succeed stop the run at the give-up time: margin
// before the lease recorded in the store expires, and not earlier.
func TestKeepGivesUpAMarginBeforeExpiry(t *testing.T) {
	ttl := 8 * time.Second
	tm := TimingFor(ttl)
	plan := make([]fault, 100)
	for i := range plan {
		plan[i] = []fault{stall, fail}[i%2]
	}
	k := startKeeper(t, ttl, plan...)
	for {
		_, lost := k.step(t)
		if lost == nil {
			continue
		}
		if !errors.Is(lost, ErrLost) || !strings.Contains(lost.Error(), "cannot renew") || !errors.Is(lost, errUnavailable) && !errors.Is(lost, context.DeadlineExceeded) {
			t.Errorf("lost(%v), want ErrLost with the renewal's last error", lost)
		}
		if got := k.elapsed(); got != tm.GiveUp() {
			t.Errorf("gave up %s after the last renewal, want %s (ttl %s - margin %s)", got, tm.GiveUp(), ttl, tm.Margin)
		}
		data, err := state.Read(context.Background(), k.b, state.LeaseKey("queue"))
		if err != nil {
			t.Fatal(err)
		}
		var info Info
		if err := state.Decode(data, &info); err != nil {
			t.Fatal(err)
		}
		if left := info.ExpiresAt.Sub(k.clk.Now()); left != tm.Margin {
			t.Errorf("the stored lease expires %s after giving up, want the margin %s", left, tm.Margin)
		}
		if n := len(k.b.writes()); n < 3 {
			t.Errorf("%d renewal attempts before giving up, want retries", n)
		}
		return
	}
}

// A renewal that finds the lease taken stops the run at once, without
// retrying.
func TestKeepStopsAtOnceWhenTaken(t *testing.T) {
	ttl := 8 * time.Second
	k := startKeeper(t, ttl)
	if err := store.WriteAll(context.Background(), k.b.Bucket, state.LeaseKey("queue"), []byte(`{"holder":"other","run_id":"other"}`), store.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		_, lost := k.step(t)
		if lost == nil {
			continue
		}
		if !errors.Is(lost, ErrLost) {
			t.Errorf("lost(%v), want ErrLost", lost)
		}
		if got, want := k.elapsed(), TimingFor(ttl).Interval; got != want {
			t.Errorf("stopped %s after acquiring, want at the first renewal (%s)", got, want)
		}
		if n := len(k.b.writes()); n != 1 {
			t.Errorf("%d renewal attempts, want 1", n)
		}
		return
	}
}

func TestTimingFor(t *testing.T) {
	for _, tc := range []struct {
		ttl, interval, margin time.Duration
	}{
		{time.Minute, 15 * time.Second, 15 * time.Second},
		{2 * time.Second, time.Second, 500 * time.Millisecond},
	} {
		tm := TimingFor(tc.ttl)
		if tm.Interval != tc.interval || tm.Margin != tc.margin || tm.CallTimeout != tc.interval || tm.GiveUp() != tc.ttl-tc.margin {
			t.Errorf("TimingFor(%s) = %+v", tc.ttl, tm)
		}
		if tm.GiveUp() <= tm.Interval {
			t.Errorf("TimingFor(%s): no time to retry a renewal", tc.ttl)
		}
	}
}
