package scheduler

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// parser reads standard five-field cron expressions and the descriptors
// (@daily, @monthly, @every 1h...).
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// allHours is the Hour bit set of a "*" hour field.
const allHours = 1<<24 - 1

// Spec is a schedule: a cron expression read in a time zone. The zero Spec
// has no slots.
type Spec struct {
	expr  string
	loc   *time.Location
	sched cron.Schedule
	// wall: the expression is read on the local wall clock (see the package
	// documentation); sched then works on wall times written as UTC.
	wall bool
}

// ParseSpec parses a standard cron expression (minute hour day-of-month
// month day-of-week) or a descriptor (@daily, @every 1h) in loc (nil: UTC).
// The time zone is given apart: a TZ= or CRON_TZ= prefix is refused.
func ParseSpec(expr string, loc *time.Location) (Spec, error) {
	if loc == nil {
		loc = time.UTC
	}
	e := strings.TrimSpace(expr)
	if strings.HasPrefix(e, "TZ=") || strings.HasPrefix(e, "CRON_TZ=") {
		return Spec{}, fmt.Errorf("cron %q: give the time zone apart, not in the expression", expr)
	}
	s, err := parser.Parse(e)
	if err != nil {
		return Spec{}, fmt.Errorf("cron %q: %w", expr, err)
	}
	sp := Spec{expr: e, loc: loc, sched: s}
	switch s := s.(type) {
	case *cron.SpecSchedule:
		if s.Hour&allHours == allHours {
			s.Location = loc
		} else {
			sp.wall = true
			s.Location = time.UTC
		}
	case cron.ConstantDelaySchedule:
	default:
		return Spec{}, fmt.Errorf("cron %q: unsupported schedule %T", expr, s)
	}
	return sp, nil
}

// String returns the expression and the zone.
func (s Spec) String() string {
	if s.sched == nil {
		return "never"
	}
	return s.expr + " " + s.loc.String()
}

// Location is the spec's time zone.
func (s Spec) Location() *time.Location {
	if s.loc == nil {
		return time.UTC
	}
	return s.loc
}

// Next returns the first slot strictly after t, in the spec's zone, or the
// zero time if there is none within five years.
func (s Spec) Next(t time.Time) time.Time {
	if s.sched == nil {
		return time.Time{}
	}
	if !s.wall {
		n := s.sched.Next(t)
		if n.IsZero() {
			return n
		}
		return n.In(s.loc)
	}
	// Walk the wall times from two days before t's: a wall time's instant is
	// within a day of the same numbers read as UTC, so no slot after t is
	// passed over. Instants never decrease along wall times, and wall times
	// that a DST jump skips share the jump's instant: returning the first
	// instant after t runs them once.
	n := naive(t.In(s.loc)).Add(-48 * time.Hour)
	for range 100000 {
		n = s.sched.Next(n)
		if n.IsZero() {
			return n
		}
		if at := resolve(n, s.loc); at.After(t) {
			return at
		}
	}
	return time.Time{}
}

// Between returns the slots in (after, until], oldest first.
func (s Spec) Between(after, until time.Time) []time.Time {
	var out []time.Time
	for t := s.Next(after); !t.IsZero() && !t.After(until); t = s.Next(t) {
		out = append(out, t)
	}
	return out
}

// naive returns t's wall clock written as UTC.
func naive(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, mi, sec := t.Clock()
	return time.Date(y, mo, d, h, mi, sec, t.Nanosecond(), time.UTC)
}

// resolve returns the instant a wall time (n's numbers, read in loc) runs
// at: the earliest instant whose wall clock in loc shows n or later. For a
// wall time that exists once, that is the wall time; for one a DST jump
// skips, the jump; for one that a DST change repeats, its first occurrence.
func resolve(n time.Time, loc *time.Location) time.Time {
	t := time.Date(n.Year(), n.Month(), n.Day(), n.Hour(), n.Minute(), n.Second(), n.Nanosecond(), loc)
	switch w := naive(t); {
	case w.After(n): // n was skipped; t is after the jump
		start, _ := t.ZoneBounds()
		return start
	case w.Before(n): // n was skipped; t is before the jump
		_, end := t.ZoneBounds()
		return end
	}
	// n exists; if the clocks were turned back, it also exists in the zone
	// period before t's, and that occurrence is the first.
	if start, _ := t.ZoneBounds(); !start.IsZero() {
		_, off := start.Add(-time.Nanosecond).Zone()
		if e := n.Add(-time.Duration(off) * time.Second).In(loc); e.Before(t) && naive(e).Equal(n) {
			return e
		}
	}
	return t
}
