package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

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
	HealthzPath = "/healthz"
	ReadyzPath  = "/readyz"
	MetricsPath = "/metrics"
)

// DaemonHooks let tests drive the daemon in-process: a fake clock, the
// scheduler's events (after the daemon has handled them), the HTTP address
// once listening, and a progress reporter per run (which can hold a run at
// a batch until its context is cancelled). Every field may be nil.
type DaemonHooks struct {
	Clock     scheduler.Clock
	OnEvent   func(scheduler.Event)
	Listening func(addr string)
	Progress  func(ctx context.Context) jobs.Progress
}

// Daemon is scorer schedule: the scheduler running the configured jobs
// (schedule.jobs) on their cron schedules, their metrics and the HTTP
// endpoints /healthz, /readyz and /metrics.
type Daemon struct {
	app   *App
	cfg   Config
	hooks DaemonHooks
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
	out     store.Bucket
}

// NewDaemon assembles the daemon of an App: it opens the output store and
// sets up the scheduler from the schedule section. hooks may be nil.
func NewDaemon(ctx context.Context, a *App, hooks *DaemonHooks) (*Daemon, error) {
	cfg := a.cfg
	d := &Daemon{
		app: a, cfg: cfg, clock: scheduler.SystemClock(), jobs: map[string]ScheduleJob{},
		specs: map[string]scheduler.Spec{}, reg: prometheus.NewRegistry(),
	}
	if hooks != nil {
		d.hooks = *hooks
		if d.hooks.Clock != nil {
			d.clock = d.hooks.Clock
		}
	}
	if len(cfg.Schedule.Jobs) == 0 {
		return nil, UsageError{errors.New("schedule.jobs: no job to schedule")}
	}
	out, err := store.Open(ctx, cfg.Output)
	if err != nil {
		return nil, UsageError{fmt.Errorf("output: %w", err)}
	}
	d.runs = runlog.New(out)
	d.out = out

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
	build.WithLabelValues(a.version).Set(1)

	var sjobs []scheduler.Job
	for _, jc := range cfg.Schedule.Jobs {
		sp, err := jc.Spec() // validated with the config
		if err != nil {
			return nil, UsageError{err}
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
		Retryable:       Retryable,
		OnEvent:         d.onEvent,
	})
	if err != nil {
		return nil, UsageError{err}
	}
	return d, nil
}

// Run runs the daemon until ctx is cancelled (SIGTERM): it then starts
// nothing more and waits up to schedule.shutdown_timeout for a running run;
// past that it cancels the run and returns an error wrapping
// scheduler.ErrAborted (exit code 5).
func (d *Daemon) Run(ctx context.Context) error {
	log := d.app.log
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
		log.Info("serving "+HealthzPath+", "+ReadyzPath+" and "+MetricsPath, "addr", ln.Addr().String())
		if d.hooks.Listening != nil {
			d.hooks.Listening(ln.Addr().String())
		}
	}
	var names []string
	for _, jc := range d.cfg.Schedule.Jobs {
		names = append(names, fmt.Sprintf("%s (%s, %s)", jc.Name, jc.Kind, d.specs[jc.Name]))
	}
	log.Info("scheduler started", "jobs", strings.Join(names, "; "), "output", d.cfg.Output)
	served.Add(1)
	go func() {
		defer served.Done()
		d.healLoop(ctx)
	}()

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
func (d *Daemon) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+HealthzPath, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, "ok") // a probe that hung up gets no answer either way
	})
	mux.HandleFunc("GET "+ReadyzPath, func(w http.ResponseWriter, _ *http.Request) {
		if !d.sched.Ready() {
			http.Error(w, "not ready: reading the schedule's state from the output store, or shutting down", http.StatusServiceUnavailable)
			return
		}
		_, _ = fmt.Fprintln(w, "ready") // as above
	})
	prom := promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{})
	mux.HandleFunc("GET "+MetricsPath, func(w http.ResponseWriter, r *http.Request) {
		// Count the runs other processes recorded since the last scrape.
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		if err := d.metrics.Sync(ctx); err != nil {
			d.app.log.Warn("read the run records for the metrics", "err", err)
		}
		cancel()
		prom.ServeHTTP(w, r)
	})
	return mux
}

// runFunc runs one attempt of a scheduled job, recorded like a manual run.
func (d *Daemon) runFunc(jc ScheduleJob) scheduler.RunFunc {
	return func(ctx context.Context, a scheduler.Attempt) error {
		rec := &runlog.Record{
			Job: jc.LeaseJob(a.Slot), Kind: jc.Kind, Trigger: runlog.Schedule,
			Schedule: &runlog.ScheduleRef{Job: a.Job, Slot: a.Slot, Attempt: a.Number, Late: a.Late},
		}
		log := d.app.log.With("schedule", a.Job, "slot", a.Slot.Format(time.RFC3339), "attempt", a.Number)
		_, err := d.app.score(ctx, rec, func(o *Opened) jobs.ScoreJob {
			var j jobs.ScoreJob
			if jc.Kind == KindBackfill {
				j = d.app.backfillJob(o, jc.MonthFor(a.Slot), nil)
			} else {
				j = d.app.queueJob(o, a.Slot.Format(time.DateOnly))
			}
			j.Log = log
			if d.hooks.Progress != nil {
				j.Progress = d.hooks.Progress(ctx)
			}
			return j
		})
		d.metrics.Observe(rec)
		if err == nil {
			log.Info("run done", "run_id", rec.RunID, "outcome", rec.Outcome, "rows_scored", rec.RowsScored,
				"rows_rejected", rec.RowsRejected, "duration", RoundDuration(rec.DurationSeconds))
		}
		return err
	}
}

// onEvent logs the scheduler's events, keeps the gauges and records skipped
// times as runs.
func (d *Daemon) onEvent(e scheduler.Event) {
	if d.hooks.OnEvent != nil {
		defer d.hooks.OnEvent(e)
	}
	log := d.app.log
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
			log.Warn("run failed", append(attrs, "attempt", e.Attempt, "exit_code", ExitCode(e.Err), "err", e.Err)...)
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

func (d *Daemon) setNext(job string) {
	if next := d.specs[job].Next(d.clock.Now()); !next.IsZero() {
		d.nextRun.WithLabelValues(job).Set(float64(next.Unix()))
	}
}

// recordSkip writes a run record for scheduled times that did not run, so
// that history and the metrics show them.
func (d *Daemon) recordSkip(e scheduler.Event) {
	jc := d.jobs[e.Job]
	now := time.Now()
	host, _ := os.Hostname()
	msg := e.Err.Error()
	if e.Count > 1 {
		msg = fmt.Sprintf("%s: %d scheduled times, the newest shown", msg, e.Count)
	}
	rec := &runlog.Record{
		RunID: table.NewRunID(now), Job: jc.LeaseJob(e.Slot), Kind: jc.Kind, Trigger: runlog.Schedule,
		Schedule: &runlog.ScheduleRef{Job: e.Job, Slot: e.Slot}, Outcome: runlog.Skipped, Error: msg,
		Host: host, PID: os.Getpid(), Version: d.app.version, StartedAt: now.UTC(), FinishedAt: now.UTC(),
	}
	if err := d.runs.Finish(context.Background(), rec); err != nil {
		d.app.log.Warn("write the run record of a skipped time", "schedule", e.Job, "err", err)
		return
	}
	d.metrics.Observe(rec)
}

// gcEvery is how often the daemon applies the retention section (scorer
// gc): once at start, then once a day.
const gcEvery = 24 * time.Hour

// collect applies retention once; a failure is logged and tried again at
// the next gcEvery.
func (d *Daemon) collect(ctx context.Context) {
	rep, err := d.app.GC(ctx, GCRequest{})
	if err != nil {
		if ctx.Err() == nil {
			d.app.log.Warn("retention (scorer gc): will try again", "err", err, "next_in", gcEvery.String())
		}
		return
	}
	var attrs []any
	for _, k := range rep.Kinds() {
		attrs = append(attrs, strings.ReplaceAll(k.Name, " ", "_"), k.Count)
	}
	d.app.log.Info("retention applied (scorer gc)", attrs...)
}

// healLoop heals the output store at start and every healEvery until ctx
// is done, so that a publish interrupted by a crash completes even when no
// scheduled run of its job comes; and applies retention (scorer gc) at
// start and every gcEvery, so that the store's state stays the size of the
// retention window.
func (d *Daemon) healLoop(ctx context.Context) {
	t := time.NewTicker(healEvery)
	defer t.Stop()
	var lastGC time.Time
	for {
		d.app.healed.Store(true)
		if _, err := d.app.heal(ctx, d.out); err != nil && ctx.Err() == nil {
			d.app.log.Warn("heal the output store", "output", d.out.URI(""), "err", err)
		}
		if now := d.app.now(); now.Sub(lastGC) >= gcEvery {
			lastGC = now
			d.collect(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
