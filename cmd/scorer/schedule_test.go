package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/adtech/scorer/internal/app"
	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/internal/runlog"
	"github.com/adtech/scorer/scheduler"
	"github.com/adtech/scorer/scheduler/schedtest"
)

// guard bounds every wait on the daemon's goroutines: it fails a hung test;
// no test depends on real time passing (the daemon runs on a fake clock).
const guard = 60 * time.Second

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// scheduleDaemon is scorer schedule running in-process on a fake clock.
type scheduleDaemon struct {
	t       *testing.T
	clock   *schedtest.Clock
	events  *schedtest.Recorder
	addr    string
	stderr  syncBuffer
	cancel  context.CancelFunc
	exit    chan int
	held    chan struct{} // a held run reached its first batch
	release chan struct{} // lets held runs go on
	once    sync.Once
	code    int
}

// startSchedule starts scorer schedule with a config file. With hold, each
// run stops at its first batch until release is closed or its context is
// cancelled.
func startSchedule(t *testing.T, config string, clock *schedtest.Clock, hold bool) *scheduleDaemon {
	t.Helper()
	d := &scheduleDaemon{
		t: t, clock: clock, events: schedtest.NewRecorder(), exit: make(chan int, 1),
		held: make(chan struct{}, 10), release: make(chan struct{}),
	}
	addr := make(chan string, 1)
	hooks := &app.DaemonHooks{Clock: clock, OnEvent: d.events.Record, Listening: func(a string) { addr <- a }}
	if hold {
		hooks.Progress = func(ctx context.Context) jobs.Progress {
			return &heldProgress{ctx: ctx, held: d.held, release: d.release}
		}
	}
	env := &environment{
		stdout: io.Discard, stderr: &d.stderr, sched: hooks,
		getenv: func(string) (string, bool) { return "", false },
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go func() { d.exit <- run(ctx, env, []string{"schedule", "--config", config}) }()
	select {
	case d.addr = <-addr:
	case code := <-d.exit:
		t.Fatalf("scorer schedule exited %d at start:\n%s", code, d.stderr.String())
	case <-time.After(guard):
		t.Fatal("scorer schedule did not start listening")
	}
	t.Cleanup(func() {
		d.cancel()
		d.clock.Advance(24 * time.Hour) // past any shutdown deadline
		d.stop()
	})
	return d
}

// stop sends the daemon SIGTERM (cancels its context) and returns its exit
// code.
func (d *scheduleDaemon) stop() int {
	d.once.Do(func() {
		d.cancel()
		select {
		case d.code = <-d.exit:
		case <-time.After(guard):
			d.code = -1
			d.t.Errorf("scorer schedule did not exit:\n%s", d.stderr.String())
		}
	})
	return d.code
}

// runUntil moves the clock from scheduled time to scheduled time, letting
// each run finish, until the next is after end.
func (d *scheduleDaemon) runUntil(end time.Time) {
	d.t.Helper()
	for {
		_, moved, err := schedtest.Step(d.events, d.clock, end, guard)
		if err != nil {
			d.t.Fatalf("%v\n%s", err, d.stderr.String())
		}
		if !moved {
			return
		}
	}
}

func (d *scheduleDaemon) await(match func(scheduler.Event) bool) scheduler.Event {
	d.t.Helper()
	e, err := d.events.Await(guard, match)
	if err != nil {
		d.t.Fatalf("%v\n%s", err, d.stderr.String())
	}
	return e
}

// get fetches a path from the daemon's HTTP listener.
func (d *scheduleDaemon) get(path string) (int, string) {
	d.t.Helper()
	resp, err := http.Get("http://" + d.addr + path)
	if err != nil {
		d.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }() // read to the end below; a close error changes nothing
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// heldProgress holds a run at its first batch.
type heldProgress struct {
	ctx     context.Context //nolint:containedctx // the run's context, to let go of the run when it is cancelled
	held    chan<- struct{}
	release <-chan struct{}
	once    sync.Once
}

func (p *heldProgress) Start(int64) {}
func (p *heldProgress) Finish()     {}
func (p *heldProgress) Update(int64, int64) {
	p.once.Do(func() {
		p.held <- struct{}{}
		select {
		case <-p.release:
		case <-p.ctx.Done():
		}
	})
}

// writeScheduleConfig writes a config running the demo with the given
// schedule.jobs (YAML list items) into a fresh output store.
func writeScheduleConfig(t *testing.T, out, jobsYAML string) string {
	t.Helper()
	in, _ := filepath.Abs(demoStore)
	model, _ := filepath.Abs(demoModel)
	cfg := fmt.Sprintf(`input: %s
model: %s
output: %s
batch_size: 500   # many batches: a held run notices its cancellation
log: {format: json, level: info}
schedule:
  listen: 127.0.0.1:0
  shutdown_timeout: 10m
  retries: 2
  backoff: 1m
  jobs:
%s`, in, model, out, jobsYAML)
	path := filepath.Join(t.TempDir(), "scorer.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// metric returns the value of a series in a Prometheus text exposition,
// or -1 if there is none.
func metric(exposition, name string, labels map[string]string) float64 {
	for _, line := range strings.Split(exposition, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		series, val := line[:i], line[i+1:]
		n, lbl, _ := strings.Cut(series, "{")
		if n != name || strings.Count(lbl, `="`) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			match = match && strings.Contains(lbl, k+`="`+v+`"`)
		}
		if match {
			f, _ := strconv.ParseFloat(val, 64)
			return f
		}
	}
	return -1
}

func berlin(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// The daemon on the demo data, on a fake clock: the night of October 1st
// runs the nightly queue (for that day), the monthly backfill (of
// September) and a backfill of a month without dumps (bad input: not
// retried). A manual run in between counts too. /metrics, scraped over
// HTTP, and scorer history show exactly those runs.
func TestScheduleDaemon(t *testing.T) {
	out := t.TempDir()
	loc := berlin(t)
	conf := writeScheduleConfig(t, out, `
    - {name: nightly-queue, kind: queue, cron: "30 2 * * *", time_zone: Europe/Berlin}
    - {name: monthly-backfill, kind: backfill, cron: "0 4 1 * *", time_zone: Europe/Berlin}
    - {name: old-month, kind: backfill, month: "2020-07", cron: "0 5 1 * *", time_zone: Europe/Berlin}
`)
	clock := schedtest.NewClock(time.Date(2020, 9, 30, 12, 0, 0, 0, loc))
	d := startSchedule(t, conf, clock, false)
	if code, body := d.get(app.HealthzPath); code != http.StatusOK {
		t.Fatalf("%s: %d %s", app.HealthzPath, code, body)
	}
	idle := d.await(schedtest.Idle) // every job's state is loaded
	if code, body := d.get(app.ReadyzPath); code != http.StatusOK {
		t.Fatalf("%s: %d %s", app.ReadyzPath, code, body)
	}

	clock.Set(idle.At)
	d.runUntil(time.Date(2020, 10, 1, 12, 0, 0, 0, loc))
	mustSucceed(t, scorer(t, nil, append([]string{"run", "--date", "2020-10-01"}, demoArgs(out)...)...))

	// What the scheduler did.
	settled := map[string]scheduler.Event{}
	for _, e := range d.events.All() {
		if e.Kind == scheduler.EventSettled {
			if _, dup := settled[e.Job]; dup {
				t.Errorf("%s settled twice", e.Job)
			}
			settled[e.Job] = e
		}
	}
	for job, want := range map[string]struct {
		outcome scheduler.Outcome
		slot    string
	}{
		"nightly-queue":    {scheduler.Succeeded, "2020-10-01T02:30:00+02:00"},
		"monthly-backfill": {scheduler.Succeeded, "2020-10-01T04:00:00+02:00"},
		"old-month":        {scheduler.Failed, "2020-10-01T05:00:00+02:00"},
	} {
		e := settled[job]
		if e.Outcome != want.outcome || e.Attempt != 1 || e.Slot.Format(time.RFC3339) != want.slot {
			t.Errorf("%s: settled %s after %d attempts at %s, want %s after 1 at %s", job, e.Outcome, e.Attempt, e.Slot.Format(time.RFC3339), want.outcome, want.slot)
		}
	}
	checkPublished(t, out, "request_scores", "date=2020-10-01")
	checkPublished(t, out, "ad_scores", "month=2020-09")
	monthRows := countDemoRows(t, "2020-09")
	queued := readTable(t, filepath.Join(out, "request_scores"), "request_id", "date").rows

	// /metrics over HTTP.
	code, body := d.get(app.MetricsPath)
	if code != http.StatusOK {
		t.Fatalf("%s: %d", app.MetricsPath, code)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"scorer_runs_total", map[string]string{"kind": "queue", "trigger": "schedule", "outcome": "succeeded"}, 1},
		{"scorer_runs_total", map[string]string{"kind": "backfill", "trigger": "schedule", "outcome": "succeeded"}, 1},
		{"scorer_runs_total", map[string]string{"kind": "backfill", "trigger": "schedule", "outcome": "bad_input"}, 1},
		{"scorer_runs_total", map[string]string{"kind": "queue", "trigger": "manual", "outcome": "nothing_to_do"}, 1},
		{"scorer_rows_scored_total", map[string]string{"kind": "backfill"}, float64(monthRows)},
		{"scorer_rows_read_total", map[string]string{"kind": "queue"}, float64(queued)},
		{"scorer_rows_scored_total", map[string]string{"kind": "queue"}, float64(queued)},
		{"scorer_rows_rejected_total", map[string]string{"kind": "queue"}, 0},
		{"scorer_run_duration_seconds_count", map[string]string{"kind": "backfill"}, 2},
		{"scorer_run_duration_seconds_count", map[string]string{"kind": "queue"}, 2},
		{"scorer_model_info", map[string]string{"kind": "backfill", "model": "ctr-demo", "version": "2020-08.1"}, 1},
		{"scorer_schedule_running", map[string]string{"schedule": "nightly-queue"}, 0},
		{
			"scorer_schedule_next_run_timestamp_seconds",
			map[string]string{"schedule": "nightly-queue"},
			float64(time.Date(2020, 10, 2, 2, 30, 0, 0, loc).Unix()),
		},
		{"scorer_build_info", map[string]string{"version": version}, 1},
	} {
		if got := metric(body, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
	}{
		{"scorer_bytes_read_total", map[string]string{"kind": "backfill"}},
		{"scorer_bytes_written_total", map[string]string{"kind": "backfill"}},
		{"scorer_last_success_timestamp_seconds", map[string]string{"kind": "queue"}},
	} {
		if got := metric(body, c.name, c.labels); got <= 0 {
			t.Errorf("%s%v = %v, want > 0", c.name, c.labels, got)
		}
	}

	// scorer history: the same runs.
	recs := historyJSON(t, out)
	want := []struct {
		job, trigger string
		outcome      runlog.Outcome
	}{ // newest first
		{"queue", runlog.Manual, runlog.NothingToDo},
		{"backfill.month=2020-07", "old-month", runlog.BadInput},
		{"backfill.month=2020-09", "monthly-backfill", runlog.Succeeded},
		{"queue", "nightly-queue", runlog.Succeeded},
	}
	if len(recs) != len(want) {
		t.Fatalf("history: %d runs, want %d: %+v", len(recs), len(want), recs)
	}
	for i, w := range want {
		r := recs[i]
		if r.Job != w.job || trigger(&r) != w.trigger || r.Outcome != w.outcome {
			t.Errorf("history %d: %s %s %s, want %s %s %s", i, r.Job, trigger(&r), r.Outcome, w.job, w.trigger, w.outcome)
		}
	}
	if r := recs[3]; r.Partition != "date=2020-10-01" || r.Schedule.Slot.Format(time.RFC3339) != "2020-10-01T02:30:00+02:00" || r.Report == nil {
		t.Errorf("the nightly run's record: partition %s, slot %s, report %+v", r.Partition, r.Schedule.Slot, r.Report)
	}
	table := scorer(t, nil, "history", "--output", out)
	mustSucceed(t, table)
	if n := strings.Count(table.stdout, "\n"); n != 5 || !strings.Contains(table.stdout, "monthly-backfill") {
		t.Errorf("history table:\n%s", table.stdout)
	}

	if code := d.stop(); code != exitOK {
		t.Fatalf("SIGTERM with nothing running: exit %d, want 0\n%s", code, d.stderr.String())
	}
}

// SIGTERM while a scheduled backfill runs: if the run finishes within
// schedule.shutdown_timeout, the daemon exits 0 and the month is published;
// if not, the run is cancelled at the deadline, nothing of it is published,
// the daemon exits 5 and the next start runs the month again.
func TestScheduleSIGTERMDuringRun(t *testing.T) {
	tests := []struct {
		name     string
		finish   bool
		wantCode int
	}{
		{"the run finishes in time", true, exitOK},
		{"the deadline passes", false, exitAborted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			conf := writeScheduleConfig(t, out, `
    - {name: monthly-backfill, kind: backfill, cron: "0 4 1 * *"}
`)
			clock := schedtest.NewClock(time.Date(2020, 10, 1, 3, 0, 0, 0, time.UTC))
			d := startSchedule(t, conf, clock, true)
			if _, _, err := schedtest.Step(d.events, clock, time.Date(2020, 10, 2, 0, 0, 0, 0, time.UTC), guard); err != nil {
				t.Fatal(err)
			}
			select { // the backfill of September is under way
			case <-d.held:
			case <-time.After(guard):
				t.Fatalf("the run never started:\n%s", d.stderr.String())
			}
			d.cancel() // SIGTERM
			stopping := d.await(schedtest.Kind(scheduler.EventStopping, ""))
			if code, _ := d.get(app.ReadyzPath); code != http.StatusServiceUnavailable {
				t.Errorf("%s while stopping: %d, want 503", app.ReadyzPath, code)
			}
			if tt.finish {
				close(d.release)
			} else {
				clock.Set(stopping.At)
				d.await(schedtest.Kind(scheduler.EventCancel, ""))
			}
			if code := d.stop(); code != tt.wantCode {
				t.Fatalf("exit code %d, want %d\n%s", code, tt.wantCode, d.stderr.String())
			}
			recs := historyJSON(t, out)
			if len(recs) != 1 {
				t.Fatalf("%d run records, want 1", len(recs))
			}
			if tt.finish {
				if recs[0].Outcome != runlog.Succeeded {
					t.Errorf("run record: %s, want succeeded", recs[0].Outcome)
				}
				checkPublished(t, out, "ad_scores", "month=2020-09")
				return
			}
			if r := recs[0]; r.Outcome != runlog.Cancelled || r.ExitCode != exitRetry {
				t.Errorf("run record: %s exit %d, want cancelled exit 1", r.Outcome, r.ExitCode)
			}
			if !strings.Contains(d.stderr.String(), `"exit_code":5`) {
				t.Errorf("the log does not end with exit code 5:\n%s", d.stderr.String())
			}
			// Nothing published, nothing committed, nothing staged.
			for _, dir := range []string{"ad_scores", "ad_scores_rejects", filepath.Join("_scorer", "staging")} {
				if files := listTree(t, filepath.Join(out, dir)); len(files) > 0 {
					t.Errorf("%s after the cancelled run: %v", dir, files)
				}
			}
			if commits, _ := filepath.Glob(filepath.Join(out, "_scorer", "commits", "*")); len(commits) > 0 {
				t.Errorf("commits after the cancelled run: %v", commits)
			}

			// The next start catches the month up.
			again := startSchedule(t, conf, clock, false)
			if e := again.await(schedtest.Kind(scheduler.EventSettled, "monthly-backfill")); e.Outcome != scheduler.Succeeded {
				t.Fatalf("after restart: %+v", e)
			}
			if code := again.stop(); code != exitOK {
				t.Fatalf("exit code %d, want 0", code)
			}
			checkPublished(t, out, "ad_scores", "month=2020-09")
			recs = historyJSON(t, out)
			if len(recs) != 2 || recs[0].Outcome != runlog.Succeeded || !recs[0].Schedule.Late {
				t.Errorf("history after the restart: %+v", recs)
			}
		})
	}
}

func TestScheduleConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, fmt.Sprintf("c%d.yaml", len(body)))
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, yaml, msg string
	}{
		{"bad cron", "schedule:\n  jobs: [{name: a, kind: queue, cron: '61 * * * *'}]\n", "schedule.jobs[0]: cron"},
		{"zone in the expression", "schedule:\n  jobs: [{name: a, kind: queue, cron: 'CRON_TZ=UTC 0 1 * * *'}]\n", "time zone apart"},
		{"bad zone", "schedule:\n  jobs: [{name: a, kind: queue, cron: '0 1 * * *', time_zone: Mars/Olympus}]\n", "time_zone"},
		{"bad kind", "schedule:\n  jobs: [{name: a, kind: train, cron: '@daily'}]\n", "schedule.jobs[0].kind"},
		{"same name twice", "schedule:\n  jobs: [{name: a, kind: queue, cron: '@daily'}, {name: a, kind: backfill, cron: '@monthly'}]\n", "used twice"},
		{"bad name", "schedule:\n  jobs: [{name: 'Nightly Queue', kind: queue, cron: '@daily'}]\n", "schedule.jobs[0].name"},
		{"month on a queue job", "schedule:\n  jobs: [{name: a, kind: queue, cron: '@daily', month: previous}]\n", "only for kind backfill"},
		{"bad month", "schedule:\n  jobs: [{name: a, kind: backfill, cron: '@monthly', month: last}]\n", "schedule.jobs[0].month"},
		{"bad listen", "schedule:\n  listen: 8080\n", "schedule.listen"},
		{"backoff", "schedule:\n  backoff: 10m\n  max_backoff: 1m\n", "max_backoff"},
		{"no shutdown timeout", "schedule:\n  shutdown_timeout: 0s\n", "shutdown_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := scorer(t, nil, "validate", "--config", write(tt.yaml))
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.msg) {
				t.Fatalf("exit %d, want %d with %q:\n%s", r.code, exitUsage, tt.msg, r.stderr)
			}
		})
	}
	if r := scorer(t, nil, "schedule", "--config", write("schedule:\n  jobs: []\n"), "--output", t.TempDir()); r.code != exitUsage {
		t.Errorf("schedule without jobs: exit %d, want %d", r.code, exitUsage)
	}
}

// The Kubernetes Deployment of the daemon agrees with the binary: it runs
// scorer schedule with a config that validates, one replica at a time,
// probes the endpoints the daemon serves on the port it listens on, and
// gives a running run the shutdown timeout (and more) before SIGKILL.
func TestScheduleDeployment(t *testing.T) {
	data, err := os.ReadFile("../../deploy/kubernetes/deployment-schedule.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type probe struct {
		HTTPGet struct {
			Path string `yaml:"path"`
			Port any    `yaml:"port"`
		} `yaml:"httpGet"`
	}
	type doc struct {
		Kind string            `yaml:"kind"`
		Data map[string]string `yaml:"data"`
		Spec struct {
			Replicas int `yaml:"replicas"`
			Strategy struct {
				Type string `yaml:"type"`
			} `yaml:"strategy"`
			Template struct {
				Spec struct {
					TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
					Containers                    []struct {
						Args  []string `yaml:"args"`
						Ports []struct {
							Name          string `yaml:"name"`
							ContainerPort int    `yaml:"containerPort"`
						} `yaml:"ports"`
						Env []struct {
							Name, Value string
						} `yaml:"env"`
						VolumeMounts []struct {
							MountPath string `yaml:"mountPath"`
						} `yaml:"volumeMounts"`
						LivenessProbe  probe `yaml:"livenessProbe"`
						ReadinessProbe probe `yaml:"readinessProbe"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	var deploy, configMap *doc
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var d doc
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		switch d.Kind {
		case "Deployment":
			deploy = &d
		case "ConfigMap":
			configMap = &d
		}
	}
	if deploy == nil || configMap == nil || len(deploy.Spec.Template.Spec.Containers) != 1 {
		t.Fatal("want a Deployment with one container and a ConfigMap")
	}
	c := deploy.Spec.Template.Spec.Containers[0]
	if len(c.Args) == 0 || c.Args[0] != "schedule" {
		t.Errorf("container args %v, want scorer schedule", c.Args)
	}
	if deploy.Spec.Replicas != 1 || deploy.Spec.Strategy.Type != "Recreate" {
		t.Errorf("replicas %d, strategy %q: want 1 and Recreate (one scheduler at a time, also during a rollout)", deploy.Spec.Replicas, deploy.Spec.Strategy.Type)
	}
	// The config it mounts.
	var cfgPath string
	for _, e := range c.Env {
		if e.Name == "SCORER_CONFIG" {
			cfgPath = e.Value
		}
	}
	if len(c.VolumeMounts) != 1 || cfgPath != c.VolumeMounts[0].MountPath+"/config.yaml" {
		t.Fatalf("SCORER_CONFIG %q is not config.yaml in the mounted ConfigMap %+v", cfgPath, c.VolumeMounts)
	}
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte(configMap.Data["config.yaml"]), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := app.Load(file, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the Deployment's config: %v", err)
	}
	// Ports and probes.
	_, port, _ := strings.Cut(cfg.Schedule.Listen, ":")
	if len(c.Ports) != 1 || strconv.Itoa(c.Ports[0].ContainerPort) != port {
		t.Errorf("container ports %+v, want schedule.listen's port %s", c.Ports, port)
	}
	for name, p := range map[string]struct {
		probe probe
		path  string
	}{"liveness": {c.LivenessProbe, app.HealthzPath}, "readiness": {c.ReadinessProbe, app.ReadyzPath}} {
		if p.probe.HTTPGet.Path != p.path || (fmt.Sprint(p.probe.HTTPGet.Port) != port && fmt.Sprint(p.probe.HTTPGet.Port) != c.Ports[0].Name) {
			t.Errorf("%s probe %+v, want %s on port %s", name, p.probe.HTTPGet, p.path, port)
		}
	}
	if grace := time.Duration(deploy.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second; grace <= cfg.Schedule.ShutdownTimeout {
		t.Errorf("terminationGracePeriodSeconds %s is not longer than schedule.shutdown_timeout %s: Kubernetes would SIGKILL a run the daemon is still waiting for", grace, cfg.Schedule.ShutdownTimeout)
	}
}
