// Package backoff computes the pause before a retry: one formula for the
// scheduler's job retries and the GCS store's request retries.
//
// The pause after the nth failed attempt (n >= 1) is
//
//	d(n) = min(Initial × 2^(n-1), Max)
//
// exactly, with Jitter None; with Jitter Equal it is drawn uniformly from
// [d(n)/2, d(n)] ("equal jitter": half fixed, half random), so that many
// clients failing together do not retry in step, while the pause still
// grows.
//
// Libraries that take their own backoff type (cloud.google.com/go/storage
// takes a gax.Backoff) are given the same Initial, Max and Multiplier; they
// apply their own jitter.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Multiplier is the growth of the pause from one attempt to the next.
const Multiplier = 2

// Jitter says how a pause is randomised.
type Jitter int

const (
	// None means the pause is d(n) exactly (the scheduler, whose retries are
	// minutes apart and recorded).
	None Jitter = iota
	// Equal means the pause is drawn from [d(n)/2, d(n)] (store requests).
	Equal
)

// Policy is an exponential backoff. The zero Jitter is None.
type Policy struct {
	Initial, Max time.Duration
	Jitter       Jitter
	// Rand returns a uniform draw from [0, n), n > 0; nil uses
	// math/rand/v2. Tests inject a deterministic one.
	Rand func(n int64) int64
}

// Delay returns the pause after the nth failed attempt (n >= 1; smaller n
// count as 1). Safe for concurrent use if Rand is.
func (p Policy) Delay(n int) time.Duration {
	d := p.Initial
	for i := 1; i < n && d < p.Max; i++ {
		if d > p.Max/Multiplier { // the next step passes Max (and may overflow)
			d = p.Max
			break
		}
		d *= Multiplier
	}
	d = min(d, p.Max)
	if p.Jitter == Equal && d > 0 {
		draw := rand.Int64N
		if p.Rand != nil {
			draw = p.Rand
		}
		d = d/2 + time.Duration(draw(int64(d/2)+1))
	}
	return d
}
