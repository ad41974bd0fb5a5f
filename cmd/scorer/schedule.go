package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // the schedule's time zones, also where the OS has no zoneinfo

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/internal/runlog"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scheduler"
	"github.com/adtech/scorer/writers/table"
)

// The daemon's HTTP endpoints.
const (
	healthzPath = "/healthz"
	readyzPath  = "/readyz"
	metricsPath = "/metrics"
)

// scheduleHooks let tests drive scorer schedule in-process: a fake clock,
// the scheduler's events (after the daemon has handled them), the HTTP
// address once listening, and a progress reporter per run (which can hold a
// run at a batch until its context is cancelled).
type scheduleHooks struct {
	clock     scheduler.Clock
	onEvent   func(scheduler.Event)
	listening func(addr string)
	progress  func(ctx context.Context) jobs.Progress
}

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
		case kindQueue:
			if j.Month != "" {
				bad("%s.month: only for kind backfill", key)
			}
		case kindBackfill:
			if j.Month != "" && j.Month != "previous" {
				if _, _, err := jobs.ParseMonth(j.Month); err != nil {
					bad("%s.month: %q: want \"previous\" or YYYY-MM", key, j.Month)
				}
			}
		default:
			bad("%s.kind: queue or backfill, not %q", key, j.Kind)
		}
		if _, err := j.spec(); err != nil {
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

func (j ScheduleJob) spec() (scheduler.Spec, error) {
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

// month is the month a backfill job scores for a slot: the month before
// the slot's (in the job's zone), or the fixed one.
func (j ScheduleJob) month(slot time.Time) string {
	if j.Month != "" && j.Month != "previous" {
		return j.Month
	}
	return time.Date(slot.Year(), slot.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0).Format("2006-01")
}

// leaseJob is the name of the job a slot runs (its lease and run records).
func (j ScheduleJob) leaseJob(slot time.Time) string {
	if j.Kind == kindBackfill {
		return jobs.BackfillJob(j.month(slot))
	}
	return jobs.JobQueue
}

func runSchedule(ctx context.Context, env *environment, args []string) error {
	f := newFlags("schedule", "[flags]", `
Run the configured jobs (schedule.jobs) on their cron schedules until SIGTERM
or SIGINT: a queue run (as scorer run, for the scheduled day) or a backfill
(as scorer backfill, of the previous month). A job still running when its next
time comes skips that time; runs that were due while no scheduler ran are
caught up at start, oldest first; failures safe to retry are retried with
backoff. Every run is recorded in <output>/_scorer/runs/ (see scorer history).
/healthz, /readyz and /metrics are served on schedule.listen.

On SIGTERM it starts nothing more and waits up to schedule.shutdown_timeout for
a running run; past that it cancels the run (nothing of it is published; it
runs again at the next start) and exits 5. It exits 0 when nothing was cut
short. See docs/scheduler.md.`, env.stderr)
	f.override("listen", "HTTP address for /healthz, /readyz and /metrics (\"\" for none)",
		func(c *Config, v string) error { c.Schedule.Listen = v; return nil })
	f.storeFlags().runFlags().logFlags()
	cfg, err := f.parse(args, env)
	if err != nil {
		return err
	}
	cfg.Progress = "off"
	d, err := newDaemon(ctx, env, cfg)
	if err != nil {
		return err
	}
	return d.run(ctx)
}

// daemon is scorer schedule: the scheduler, its jobs, metrics and HTTP.
type daemon struct {
	env   *environment
	cfg   Config
	hooks scheduleHooks
	clock scheduler.Clock
	jobs  map[string]ScheduleJob
	specs map[string]scheduler.Spec
	runs  *runlog.Log
	sched *scheduler.Scheduler

	reg     *prometheus.Registry
	metrics *runlog.Metrics
	nextRun *prometheus.GaugeVec
	running *prometheus.GaugeVec
	skips   *prometheus.CounterVec
}

func newDaemon(ctx context.Context, env *environment, cfg Config) (*daemon, error) {
	d := &daemon{
		env: env, cfg: cfg, clock: scheduler.SystemClock(), jobs: map[string]ScheduleJob{},
		specs: map[string]scheduler.Spec{}, reg: prometheus.NewRegistry(),
	}
	if env.sched != nil {
		d.hooks = *env.sched
		if d.hooks.clock != nil {
			d.clock = d.hooks.clock
		}
	}
	if len(cfg.Schedule.Jobs) == 0 {
		return nil, usageError{errors.New("schedule.jobs: no job to schedule")}
	}
	out, err := store.Open(ctx, cfg.Output)
	if err != nil {
		return nil, usageError{fmt.Errorf("output: %w", err)}
	}
	d.runs = runlog.New(out)

	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d.metrics = runlog.NewMetrics(d.reg, d.runs)
	d.nextRun = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "scorer_schedule_next_run_timestamp_seconds",
		Help: "When the scheduled job runs next, Unix time.",
	}, []string{"schedule"})
	d.running = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "scorer_schedule_running",
		Help: "1 while the scheduled job runs.",
	}, []string{"schedule"})
	d.skips = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "scorer_schedule_skipped_total",
		Help: "Scheduled times not run, by reason: overlap (the job was still running), catch_up_limit.",
	},
		[]string{"schedule", "reason"})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "scorer_build_info",
		Help: "The scorer version: always 1.",
	}, []string{"version"})
	d.reg.MustRegister(d.nextRun, d.running, d.skips, build)
	build.WithLabelValues(version).Set(1)

	var sjobs []scheduler.Job
	for _, jc := range cfg.Schedule.Jobs {
		sp, err := jc.spec() // validated with the config
		if err != nil {
			return nil, usageError{err}
		}
		d.jobs[jc.Name], d.specs[jc.Name] = jc, sp
		d.running.WithLabelValues(jc.Name).Set(0)
		sjobs = append(sjobs, scheduler.Job{Name: jc.Name, Spec: sp, Run: d.runFunc(jc)})
	}
	d.sched, err = scheduler.New(sjobs, scheduler.Options{
		Clock:           d.clock,
		Ledger:          scheduler.NewStoreLedger(out),
		Retries:         cfg.Schedule.Retries,
		Backoff:         cfg.Schedule.Backoff,
		MaxBackoff:      cfg.Schedule.MaxBackoff,
		MaxCatchUp:      cfg.Schedule.MaxCatchUp,
		ShutdownTimeout: cfg.Schedule.ShutdownTimeout,
		Retryable:       retryable,
		OnEvent:         d.onEvent,
	})
	if err != nil {
		return nil, usageError{err}
	}
	return d, nil
}

// retryable says whether a failed run is retried: exit codes 1 (failed,
// safe to rerun) and 4 (busy), not 2 (configuration) or 3 (bad input).
func retryable(err error) bool {
	c := exitCode(err)
	return c == exitRetry || c == exitBusy
}

func (d *daemon) run(ctx context.Context) error {
	log := d.env.log
	var srv *http.Server
	var served sync.WaitGroup
	defer served.Wait()
	served.Add(1)
	go func() { // not to delay the first runs; a scrape waits for it
		defer served.Done()
		if err := d.metrics.Baseline(ctx); err != nil {
			log.Warn("read the run records for the metrics", "err", err)
		}
	}()
	if addr := d.cfg.Schedule.Listen; addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		srv = &http.Server{Handler: d.handler(), ReadHeaderTimeout: 10 * time.Second}
		served.Add(1)
		go func() {
			defer served.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("http server", "err", err)
			}
		}()
		log.Info("serving "+healthzPath+", "+readyzPath+" and "+metricsPath, "addr", ln.Addr().String())
		if d.hooks.listening != nil {
			d.hooks.listening(ln.Addr().String())
		}
	}
	var names []string
	for _, jc := range d.cfg.Schedule.Jobs {
		names = append(names, fmt.Sprintf("%s (%s, %s)", jc.Name, jc.Kind, d.specs[jc.Name]))
	}
	log.Info("scheduler started", "jobs", strings.Join(names, "; "), "output", d.cfg.Output)

	err := d.sched.Run(ctx)

	if srv != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	if err != nil {
		return err
	}
	log.Info("scheduler stopped: no run was cut short")
	return nil
}

// handler serves the health, readiness and metrics endpoints.
func (d *daemon) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+healthzPath, func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET "+readyzPath, func(w http.ResponseWriter, _ *http.Request) {
		if !d.sched.Ready() {
			http.Error(w, "not ready: reading the schedule's state from the output store, or shutting down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	prom := promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{})
	mux.HandleFunc("GET "+metricsPath, func(w http.ResponseWriter, r *http.Request) {
		// Count the runs other processes recorded since the last scrape.
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		if err := d.metrics.Sync(ctx); err != nil {
			d.env.log.Warn("read the run records for the metrics", "err", err)
		}
		cancel()
		prom.ServeHTTP(w, r)
	})
	return mux
}

// runFunc runs one attempt of a scheduled job, recorded like a manual run.
func (d *daemon) runFunc(jc ScheduleJob) scheduler.RunFunc {
	return func(ctx context.Context, a scheduler.Attempt) error {
		rec := &runlog.Record{
			Job: jc.leaseJob(a.Slot), Kind: jc.Kind, Trigger: runlog.Schedule,
			Schedule: &runlog.ScheduleRef{Job: a.Job, Slot: a.Slot, Attempt: a.Number, Late: a.Late},
		}
		log := d.env.log.With("schedule", a.Job, "slot", a.Slot.Format(time.RFC3339), "attempt", a.Number)
		_, err := recordedScore(ctx, d.env, d.cfg, rec, func(o *opened) jobs.ScoreJob {
			var j jobs.ScoreJob
			if jc.Kind == kindBackfill {
				j = backfillJob(d.cfg, o, d.env, jc.month(a.Slot), nil)
			} else {
				j = queueJob(d.cfg, o, d.env, a.Slot.Format(time.DateOnly))
			}
			j.Log = log
			if d.hooks.progress != nil {
				j.Progress = d.hooks.progress(ctx)
			}
			return j
		})
		d.metrics.Observe(rec)
		if err == nil {
			log.Info("run done", "run_id", rec.RunID, "outcome", rec.Outcome, "rows_scored", rec.RowsScored,
				"rows_rejected", rec.RowsRejected, "duration", roundDuration(rec.DurationSeconds))
		}
		return err
	}
}

// onEvent logs the scheduler's events, keeps the gauges and records skipped
// times as runs.
func (d *daemon) onEvent(e scheduler.Event) {
	if d.hooks.onEvent != nil {
		defer d.hooks.onEvent(e)
	}
	log := d.env.log
	attrs := []any{"schedule", e.Job}
	if !e.Slot.IsZero() {
		attrs = append(attrs, "slot", e.Slot.Format(time.RFC3339))
	}
	switch e.Kind {
	case scheduler.EventLoaded:
		log.Info("schedule loaded", append(attrs, "due", e.Count, "next", e.At.Format(time.RFC3339))...)
		d.setNext(e.Job)
	case scheduler.EventWait:
		log.Debug("waiting", "until", e.At.Format(time.RFC3339), "running", e.Running)
	case scheduler.EventStart:
		log.Info("run starting", append(attrs, "attempt", e.Attempt, "late", e.Late)...)
		d.running.WithLabelValues(e.Job).Set(1)
	case scheduler.EventFinish:
		d.running.WithLabelValues(e.Job).Set(0)
		if e.Err != nil {
			log.Warn("run failed", append(attrs, "attempt", e.Attempt, "exit_code", exitCode(e.Err), "err", e.Err)...)
		}
	case scheduler.EventRetry:
		log.Warn("retrying", append(attrs, "attempt", e.Attempt, "at", e.At.Format(time.RFC3339))...)
	case scheduler.EventSkip:
		reason := "overlap"
		if errors.Is(e.Err, scheduler.ErrCatchUpLimit) {
			reason = "catch_up_limit"
		}
		log.Warn("skipped", append(attrs, "reason", e.Err, "slots", e.Count)...)
		d.skips.WithLabelValues(e.Job, reason).Add(float64(e.Count))
		d.recordSkip(e)
		d.setNext(e.Job)
	case scheduler.EventSettled:
		if e.Outcome == scheduler.Failed {
			log.Error("scheduled run failed for good", append(attrs, "attempts", e.Attempt)...)
		} else {
			log.Info("scheduled time done", append(attrs, "outcome", e.Outcome, "attempts", e.Attempt)...)
		}
		d.setNext(e.Job)
	case scheduler.EventAlready:
		log.Info("already run by another scheduler", attrs...)
	case scheduler.EventStopping:
		if e.Running > 0 {
			log.Warn("stopping: no new runs; waiting for the running ones", "running", e.Running, "deadline", e.At.Format(time.RFC3339))
		} else {
			log.Info("stopping: nothing running")
		}
	case scheduler.EventCancel:
		log.Error("shutdown deadline passed: cancelling the running runs (nothing of them is published)", "running", e.Running)
	case scheduler.EventError:
		log.Error("schedule state", append(attrs, "err", e.Err)...)
	}
}

func (d *daemon) setNext(job string) {
	if next := d.specs[job].Next(d.clock.Now()); !next.IsZero() {
		d.nextRun.WithLabelValues(job).Set(float64(next.Unix()))
	}
}

// recordSkip writes a run record for scheduled times that did not run, so
// that history and the metrics show them.
func (d *daemon) recordSkip(e scheduler.Event) {
	jc := d.jobs[e.Job]
	now := time.Now()
	host, _ := os.Hostname()
	msg := e.Err.Error()
	if e.Count > 1 {
		msg = fmt.Sprintf("%s: %d scheduled times, the newest shown", msg, e.Count)
	}
	rec := &runlog.Record{
		RunID: table.NewRunID(now), Job: jc.leaseJob(e.Slot), Kind: jc.Kind, Trigger: runlog.Schedule,
		Schedule: &runlog.ScheduleRef{Job: e.Job, Slot: e.Slot}, Outcome: runlog.Skipped, Error: msg,
		Host: host, PID: os.Getpid(), Version: version, StartedAt: now.UTC(), FinishedAt: now.UTC(),
	}
	if err := d.runs.Finish(context.Background(), rec); err != nil {
		d.env.log.Warn("write the run record of a skipped time", "schedule", e.Job, "err", err)
		return
	}
	d.metrics.Observe(rec)
}
