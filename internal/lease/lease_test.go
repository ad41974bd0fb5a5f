package lease

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestLeaseLifecycle(t *testing.T) {
	ctx := context.Background()
	b := store.NewFileBucket(t.TempDir())
	clk := &clock{t: time.Date(2020, 9, 2, 1, 0, 0, 0, time.UTC)}
	opts := Options{TTL: 10 * time.Second, Now: clk.now}

	a, err := Acquire(ctx, b, "queue", "run-a", opts)
	if err != nil {
		t.Fatal(err)
	}
	// A second run is refused while the lease is live, and renewals keep it live.
	for range 3 {
		clk.add(6 * time.Second)
		if err := a.Renew(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := Acquire(ctx, b, "queue", "run-b", opts); !errors.Is(err, ErrHeld) {
			t.Fatalf("second acquire while held: %v, want ErrHeld", err)
		}
	}
	// Other jobs have their own lease.
	if o, err := Acquire(ctx, b, "backfill", "run-c", opts); err != nil {
		t.Fatalf("another job's lease: %v", err)
	} else if err := o.Release(ctx, true); err != nil {
		t.Fatal(err)
	}

	// A stalls past its TTL: B takes over; A can neither renew nor fence.
	clk.add(11 * time.Second)
	bl, err := Acquire(ctx, b, "queue", "run-b", opts)
	if err != nil {
		t.Fatalf("acquire an expired lease: %v", err)
	}
	if err := a.Renew(ctx); !errors.Is(err, ErrLost) {
		t.Fatalf("stalled holder renewed: %v, want ErrLost", err)
	}
	if err := a.Fence(ctx, "commits/run-a.json", []byte(`{"run_id":"run-a"}`)); !errors.Is(err, ErrLost) {
		t.Fatalf("stalled holder fenced a commit: %v, want ErrLost", err)
	}
	if err := a.Release(ctx, false); err != nil {
		t.Fatalf("releasing a lost lease must leave it alone: %v", err)
	}
	if _, err := Acquire(ctx, b, "queue", "run-d", opts); !errors.Is(err, ErrHeld) {
		t.Fatalf("the lost holder's release freed B's lease: %v", err)
	}

	// B fences a commit and dies before writing it: the next holder inherits it.
	if err := bl.Fence(ctx, "commits/run-b.json", []byte(`{"run_id":"run-b"}`)); err != nil {
		t.Fatal(err)
	}
	clk.add(11 * time.Second)
	c, err := Acquire(ctx, b, "queue", "run-e", opts)
	if err != nil {
		t.Fatal(err)
	}
	if key, data := c.Inherited(); key != "commits/run-b.json" || string(data) != `{"run_id":"run-b"}` {
		t.Fatalf("inherited %s %q, want B's fenced commit", key, data)
	}
	// C writes the inherited commit, then releases: the next run inherits nothing.
	if err := c.Release(ctx, true); err != nil {
		t.Fatal(err)
	}
	d, err := Acquire(ctx, b, "queue", "run-f", opts)
	if err != nil {
		t.Fatalf("acquire a released lease: %v", err)
	}
	if key, data := d.Inherited(); key != "" || data != nil {
		t.Fatalf("inherited %s %q after a committed release", key, data)
	}
}

func TestKeepCancelsWhenLost(t *testing.T) {
	ctx := context.Background()
	b := store.NewFileBucket(t.TempDir())
	l, err := Acquire(ctx, b, "queue", "run-a", Options{TTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// Someone else overwrites the lease (as a takeover would).
	if err := store.WriteAll(ctx, b, state.LeaseKey("queue"), []byte(`{"run_id":"other"}`), store.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	lost := make(chan error, 1)
	kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	go l.Keep(kctx, func(err error) { lost <- err })
	select {
	case err := <-lost:
		if !errors.Is(err, ErrLost) {
			t.Fatalf("Keep reported %v, want ErrLost", err)
		}
	case <-kctx.Done():
		t.Fatal("Keep did not notice the lost lease")
	}
}

func TestRenewalIntervalFloor(t *testing.T) {
	if _, err := Acquire(context.Background(), store.NewFileBucket(t.TempDir()), "j", "r", Options{TTL: time.Second}); err == nil {
		t.Fatal("a TTL under 2 s was accepted; renewals are at most once a second")
	}
}

func TestCheckStopsAStalledHolder(t *testing.T) {
	ctx := context.Background()
	b := store.NewFileBucket(t.TempDir())
	clk := &clock{t: time.Date(2020, 9, 2, 1, 0, 0, 0, time.UTC)}
	opts := Options{TTL: 2 * time.Second, Now: clk.now}
	a, err := Acquire(ctx, b, "queue", "run-a", opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Check(ctx); err != nil {
		t.Fatalf("check right after acquiring: %v", err)
	}
	// A stalls; its lease expires and B takes the job over.
	clk.add(3 * time.Second)
	if _, err := Acquire(ctx, b, "queue", "run-b", opts); err != nil {
		t.Fatal(err)
	}
	time.Sleep(MinRenew + 100*time.Millisecond) // the stall, as A's own clock sees it
	if err := a.Check(ctx); !errors.Is(err, ErrLost) {
		t.Fatalf("a holder that stalled past its lease passed the check: %v", err)
	}
}

func TestHolderDead(t *testing.T) {
	me := strings.SplitN(holderID(), "/", 3)
	if len(me) != 3 {
		t.Fatalf("holderID() = %q, want host/pid/pidns", holderID())
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	gone := cmd.Process.Pid // exited and reaped
	tests := []struct {
		holder string
		dead   bool
	}{
		{holderID(), false},
		{fmt.Sprintf("%s/%d/%s", me[0], gone, me[2]), true},
		{fmt.Sprintf("%s/%d/pid:[1]", me[0], gone), false}, // another pid namespace
		{fmt.Sprintf("other-host/%d/%s", gone, me[2]), false},
		{fmt.Sprintf("%s/%d", me[0], gone), false}, // no namespace: judged by expiry
	}
	for _, tt := range tests {
		if got := holderDead(tt.holder); got != tt.dead {
			t.Errorf("holderDead(%q) = %v, want %v", tt.holder, got, tt.dead)
		}
	}
}
