package jobs

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/adtech/scorer/readers"
)

// BadRowLimit is how many bad input rows a run tolerates: either a count or
// a fraction of the rows read. The zero value tolerates none.
type BadRowLimit struct {
	Count    int64   // tolerated count, when Fraction is 0
	Fraction float64 // tolerated fraction of rows read, in (0, 1)
}

// ParseBadRowLimit reads "0" (none), "100" (a count), "0.5%" or "0.005" (a
// fraction of the rows read).
func ParseBadRowLimit(s string) (BadRowLimit, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return BadRowLimit{}, nil
	}
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(pct), 64)
		if err != nil || !(f >= 0 && f < 100) { // also refuses NaN
			return BadRowLimit{}, fmt.Errorf("%q: want a percentage in [0, 100)", s)
		}
		return BadRowLimit{Fraction: f / 100}, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return BadRowLimit{}, fmt.Errorf("%q: a count must be >= 0", s)
		}
		return BadRowLimit{Count: n}, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f > 0 && f < 1) { // also refuses NaN
		return BadRowLimit{}, fmt.Errorf("%q: want a count (100), a fraction in (0, 1) (0.005) or a percentage (0.5%%)", s)
	}
	return BadRowLimit{Fraction: f}, nil
}

// Zero reports whether no bad row is tolerated.
func (l BadRowLimit) Zero() bool { return l.Count == 0 && l.Fraction == 0 }

// Exceeded reports whether bad rows out of total rows read break the limit.
// A count is checked as rows come (the run stops at the first bad row past
// it); a fraction only at the end of the input (final), so that where the bad
// rows sit in the input does not matter.
func (l BadRowLimit) Exceeded(bad, total int64, final bool) bool {
	if l.Fraction == 0 {
		return bad > l.Count
	}
	return final && float64(bad) > l.Fraction*float64(total)
}

func (l BadRowLimit) String() string {
	if l.Fraction > 0 {
		return strconv.FormatFloat(l.Fraction*100, 'g', -1, 64) + "%"
	}
	return strconv.FormatInt(l.Count, 10)
}

// badRows applies a BadRowLimit to the rows a reader could not convert and
// hands the tolerated ones to reject (if set). The reader serialises calls.
type badRows struct {
	limit  BadRowLimit
	reject func(readers.RowError) error
	count  atomic.Int64
	// dup, if set, takes the duplicate rows (ReasonDuplicate): they are
	// not bad input and never count against the limit.
	dup  func(readers.RowError) error
	dups *atomic.Int64
}

func (b *badRows) onBadRow(e readers.RowError) error {
	if b.dup != nil && e.Reason == ReasonDuplicate {
		b.dups.Add(1)
		return b.dup(e)
	}
	if b.limit.Zero() {
		return e // wraps ErrBadInput
	}
	n := b.count.Add(1)
	if b.limit.Exceeded(n, 0, false) {
		return fmt.Errorf("more than %s bad rows (max_bad_rows); the last: %w", b.limit, e)
	}
	if b.reject != nil {
		return b.reject(e)
	}
	return nil
}
