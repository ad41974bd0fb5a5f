// Package scheduler runs jobs on cron schedules without overlap, without
// missing a run and without running one twice, across restarts and DST
// changes. It wraps github.com/robfig/cron/v3 for the cron grammar and its
// Next, and drives the ticks itself from an injected Clock.
//
// # Slots
//
// A job's schedule is a cron expression read in a time zone (Spec). Each time
// it names is a slot. Schedules whose hour field is not "*" (nightly, monthly)
// are read on the local wall clock, and each wall time runs once: a time that
// a DST change skips (02:30 on the spring-forward night in Europe) runs at the
// moment the clocks jump, and a time that it repeats (02:30 on the fall-back
// night) runs at its first occurrence. robfig/cron alone would skip the first
// and run the second twice. Schedules with an hour field of "*" (every N
// minutes, hourly) and "@every" run by elapsed time: every matching minute of
// every real hour.
//
// # The ledger
//
// Which slots are due is worked out from a durable Ledger, not from ticks
// alone. A slot is settled once it has run (succeeded, or failed for good
// after its retries or with an error that retrying cannot fix) or was
// skipped; a slot whose run was cut short by a shutdown, or by a crash, is not
// settled. When a Scheduler starts, every slot after the job's watermark that
// is not settled is due, and they run once each, oldest first (optionally only
// the newest MaxCatchUp of them). A job seen for the first time has nothing
// due: its watermark is set to the start time.
//
// # Runs
//
// Each job has at most one run at a time in a process: a slot that comes due
// while the job is still running is skipped (and settled as skipped). Runs
// get a context that is cancelled only when the shutdown deadline passes. A
// failure that Options.Retryable accepts is retried with exponential backoff
// up to Options.Retries times; panics are recovered and count as failures.
//
// # Shutdown
//
// When the context given to Run is cancelled, the scheduler starts nothing
// more (pending retries and queued catch-up slots are left for the next
// start), waits up to Options.ShutdownTimeout for running attempts, then
// cancels them and waits for them to return. Run returns nil if nothing was
// cut short, or an error wrapping ErrAborted.
package scheduler
