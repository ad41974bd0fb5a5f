package backoff_test

import (
	"math"
	"testing"
	"time"

	"github.com/adtech/scorer/internal/backoff"
)

func TestDelay(t *testing.T) {
	exact := backoff.Policy{Initial: time.Minute, Max: 15 * time.Minute}
	lowest := func(int64) int64 { return 0 }
	highest := func(n int64) int64 { return n - 1 }
	for _, tc := range []struct {
		name string
		p    backoff.Policy
		want []time.Duration // after attempts 1, 2, ...
	}{
		{"no jitter doubles up to max", exact, []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 15 * time.Minute, 15 * time.Minute}},
		{"max below initial", backoff.Policy{Initial: time.Second, Max: time.Millisecond}, []time.Duration{time.Millisecond, time.Millisecond}},
		{"equal jitter, lowest draw", backoff.Policy{Initial: 100 * time.Millisecond, Max: time.Second, Jitter: backoff.Equal, Rand: lowest}, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 500 * time.Millisecond}},
		{"equal jitter, highest draw", backoff.Policy{Initial: 100 * time.Millisecond, Max: time.Second, Jitter: backoff.Equal, Rand: highest}, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i, want := range tc.want {
				if got := tc.p.Delay(i + 1); got != want {
					t.Errorf("Delay(%d) = %s, want %s", i+1, got, want)
				}
			}
		})
	}
	t.Run("no overflow", func(t *testing.T) {
		p := backoff.Policy{Initial: time.Hour, Max: math.MaxInt64}
		if got := p.Delay(1000); got != math.MaxInt64 {
			t.Errorf("Delay(1000) = %d, want %d", got, int64(math.MaxInt64))
		}
	})
	t.Run("equal jitter stays in range", func(t *testing.T) {
		p := backoff.Policy{Initial: 10 * time.Millisecond, Max: 80 * time.Millisecond, Jitter: backoff.Equal}
		for n := 1; n <= 6; n++ {
			d := min(10*time.Millisecond<<(n-1), 80*time.Millisecond)
			for range 200 {
				if got := p.Delay(n); got < d/2 || got > d {
					t.Fatalf("Delay(%d) = %s, want within [%s, %s]", n, got, d/2, d)
				}
			}
		}
	})
}
