package app

import (
	"fmt"
	"net"
	"regexp"
	"time"
	_ "time/tzdata" // the schedule's time zones, also where the OS has no zoneinfo

	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/scheduler"
)

var scheduleJobName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

// validate checks the schedule section; errors name the key.
func (c ScheduleConfig) validate() []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			bad("listen: %q is not host:port (%v)", c.Listen, err)
		}
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout: must be positive, got %s", c.ShutdownTimeout)
	}
	if c.Retries < 0 {
		bad("retries: must be >= 0, got %d", c.Retries)
	}
	if c.Backoff <= 0 || c.MaxBackoff < c.Backoff {
		bad("backoff, max_backoff: need 0 < backoff <= max_backoff, got %s and %s", c.Backoff, c.MaxBackoff)
	}
	if c.MaxCatchUp < 0 {
		bad("max_catch_up: must be >= 0, got %d", c.MaxCatchUp)
	}
	seen := map[string]bool{}
	for i, j := range c.Jobs {
		key := fmt.Sprintf("jobs[%d]", i)
		if !scheduleJobName.MatchString(j.Name) {
			bad("%s.name: %q: want lowercase letters, digits, '.', '_' or '-'", key, j.Name)
		} else if seen[j.Name] {
			bad("%s.name: %q is used twice", key, j.Name)
		}
		seen[j.Name] = true
		switch j.Kind {
		case KindQueue:
			if j.Month != "" {
				bad("%s.month: only for kind backfill", key)
			}
		case KindBackfill:
			if j.Month != "" && j.Month != "previous" {
				if _, _, err := jobs.ParseMonth(j.Month); err != nil {
					bad("%s.month: %q: want \"previous\" or YYYY-MM", key, j.Month)
				}
			}
		default:
			bad("%s.kind: queue or backfill, not %q", key, j.Kind)
		}
		if _, err := j.Spec(); err != nil {
			bad("%s: %v", key, err)
		}
	}
	return errs
}

func (j ScheduleJob) location() (*time.Location, error) {
	if j.TimeZone == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(j.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("time_zone: %w", err)
	}
	return loc, nil
}

// Spec is the job's parsed schedule, in its time zone.
func (j ScheduleJob) Spec() (scheduler.Spec, error) {
	loc, err := j.location()
	if err != nil {
		return scheduler.Spec{}, err
	}
	sp, err := scheduler.ParseSpec(j.Cron, loc)
	if err != nil {
		return sp, fmt.Errorf("cron: %w", err)
	}
	return sp, nil
}

// MonthFor is the month a backfill job scores for a slot: the month before
// the slot's (in the job's zone), or the fixed one.
func (j ScheduleJob) MonthFor(slot time.Time) string {
	if j.Month != "" && j.Month != "previous" {
		return j.Month
	}
	return time.Date(slot.Year(), slot.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0).Format("2006-01")
}

// LeaseJob is the name of the job a slot runs (its lease and run records).
func (j ScheduleJob) LeaseJob(slot time.Time) string {
	if j.Kind == KindBackfill {
		return jobs.BackfillJob(j.MonthFor(slot))
	}
	return jobs.JobQueue
}
