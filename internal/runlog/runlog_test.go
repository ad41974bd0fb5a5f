package runlog_test

import (
	"context"
	"math"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adtech/scorer/internal/lease"
	"github.com/adtech/scorer/internal/runlog"
	"github.com/adtech/scorer/readers/store"
)

func TestScoreHistogram(t *testing.T) {
	tests := []struct {
		name   string
		scores func(i int) float32
	}{
		{"uniform", func(i int) float32 { return float32(i%10007) / 10007 }},
		{"skewed", func(i int) float32 { x := float64(i%997) / 997; return float32(x * x * x) }},
		{"narrow", func(i int) float32 { return 0.42 + float32(i%101)/1e5 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 50000
			var h runlog.ScoreHistogram
			all := make([]float64, 0, n)
			batch := make([]float32, 0, 1000)
			for i := range n {
				v := tt.scores(i)
				all = append(all, float64(v))
				batch = append(batch, v)
				if len(batch) == cap(batch) {
					h.Add(batch)
					batch = batch[:0]
				}
			}
			h.Add([]float32{float32(math.NaN())})
			sort.Float64s(all)
			for _, q := range []float64{0.01, 0.25, 0.5, 0.9, 0.99} {
				exact := all[int(q*float64(n-1))]
				if got := h.Quantile(q); math.Abs(got-exact) > 1.0/runlog.ScoreBins {
					t.Errorf("q%.2f = %.5f, exact %.5f: off by more than a bin", q, got, exact)
				}
			}
			s := h.Summary()
			var sum int64
			for _, c := range s.Histogram {
				sum += c
			}
			if s.Count != n || sum != n || s.NaN != 1 || len(s.Histogram) != runlog.ReportBins {
				t.Errorf("summary count %d, histogram total %d over %d bins, NaN %d; want %d, %d, %d bins, 1",
					s.Count, sum, len(s.Histogram), s.NaN, n, n, runlog.ReportBins)
			}
			if s.Min != math.Round(all[0]*1e6)/1e6 || s.Quantiles.P50 < s.Min || s.Quantiles.P99 > s.Max {
				t.Errorf("summary %+v inconsistent with min %g", s, all[0])
			}
		})
	}
	var empty runlog.ScoreHistogram
	if empty.Summary() != nil || !math.IsNaN(empty.Quantile(0.5)) {
		t.Error("an empty histogram has a summary")
	}
}

func newLog(t *testing.T, now time.Time) (*runlog.Log, store.Bucket) {
	b := store.NewFileBucket(t.TempDir())
	l := runlog.New(b)
	l.Now = func() time.Time { return now }
	return l, b
}

func record(runID, job, trigger string, started time.Time) *runlog.Record {
	kind := "queue"
	if job != "queue" {
		kind = "backfill"
	}
	return &runlog.Record{RunID: runID, Job: job, Kind: kind, Trigger: trigger, StartedAt: started, Host: "h", PID: 1}
}

func finish(r *runlog.Record, o runlog.Outcome, rows int64) *runlog.Record {
	r.Outcome, r.FinishedAt, r.DurationSeconds = o, r.StartedAt.Add(2*time.Second), 2
	r.RowsScored, r.RowsRead, r.InputBytes, r.OutputBytes = rows, rows, 10*rows, 3*rows
	r.Model = &runlog.Model{Name: "ctr-demo", Version: "2020-08.1"}
	return r
}

func TestLogRecentAndInterrupted(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2021, 1, 2, 12, 0, 0, 0, time.UTC)
	l, b := newLog(t, now)
	old := now.Add(-time.Hour)
	recs := []*runlog.Record{
		record("20210102T110000Z-00000001", "queue", runlog.Manual, old),                    // finished
		record("20210102T110100Z-00000002", "backfill.month=2020-12", runlog.Schedule, old), // died
		record("20210102T110200Z-00000003", "queue", runlog.Schedule, old),                  // running, holds the lease
		record("20210102T115900Z-00000004", "queue", runlog.Manual, now.Add(-time.Minute)),  // just started
	}
	for _, r := range recs {
		if err := l.Start(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Start(ctx, recs[0]); err == nil {
		t.Error("a second start of the same run succeeded")
	}
	if err := l.Finish(ctx, finish(recs[0], runlog.Succeeded, 10)); err != nil {
		t.Fatal(err)
	}
	if _, err := lease.Acquire(ctx, b, "queue", recs[2].RunID, lease.Options{TTL: time.Hour, Now: func() time.Time { return now }}); err != nil {
		t.Fatal(err)
	}
	got, err := l.Recent(ctx, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	outcomes := map[string]runlog.Outcome{}
	for _, r := range got {
		ids = append(ids, r.RunID)
		outcomes[r.RunID] = r.Outcome
	}
	want := []string{recs[3].RunID, recs[2].RunID, recs[1].RunID, recs[0].RunID}
	if !slices.Equal(ids, want) {
		t.Fatalf("Recent: %v, want newest first %v", ids, want)
	}
	for id, o := range map[string]runlog.Outcome{
		recs[0].RunID: runlog.Succeeded, recs[1].RunID: runlog.Interrupted,
		recs[2].RunID: runlog.Running, recs[3].RunID: runlog.Running,
	} {
		if outcomes[id] != o {
			t.Errorf("%s: %s, want %s", id, outcomes[id], o)
		}
	}
	two, err := l.Recent(ctx, 2, func(r *runlog.Record) bool { return r.Kind == "queue" })
	if err != nil || len(two) != 2 || two[0].RunID != recs[3].RunID || two[1].RunID != recs[2].RunID {
		t.Fatalf("Recent(2, queue) = %v, %v", two, err)
	}

	// Runs that start within one second sort by their random suffix, not
	// by time: the newest of them is the one recorded as started last,
	// whatever its suffix.
	sameSecond := now.Add(-30 * time.Second)
	first := record("20210102T115930Z-ffffffff", "queue", runlog.Manual, sameSecond)
	second := record("20210102T115930Z-00000000", "queue", runlog.Manual, sameSecond.Add(500*time.Millisecond))
	for _, r := range []*runlog.Record{first, second} {
		if err := l.Start(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	newest, err := l.Recent(ctx, 1, nil)
	if err != nil || len(newest) != 1 || newest[0].RunID != second.RunID {
		t.Fatalf("Recent(1) = %v, %v; want %s (started last in its second)", ids2(newest), err, second.RunID)
	}
}

func ids2(recs []*runlog.Record) []string {
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.RunID)
	}
	return ids
}

func TestMetricsCountEveryProcessesRuns(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2021, 1, 2, 12, 0, 0, 0, time.UTC)
	l, _ := newLog(t, now)
	write := func(r *runlog.Record) {
		t.Helper()
		o := r.Outcome // Start sets it to running
		if err := l.Start(ctx, r); err != nil {
			t.Fatal(err)
		}
		if o == "" {
			return
		}
		r.Outcome = o
		if err := l.Finish(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// Before the daemon starts: a success, counted in no counter but in
	// the gauges.
	before := finish(record("20210101T000000Z-00000001", "queue", runlog.Manual, now.Add(-36*time.Hour)), runlog.Succeeded, 7)
	write(before)

	reg := prometheus.NewRegistry()
	m := runlog.NewMetrics(reg, l)
	if err := m.Baseline(ctx); err != nil {
		t.Fatal(err)
	}
	if got := value(t, reg, "scorer_last_success_timestamp_seconds", map[string]string{"kind": "queue"}); got != float64(before.FinishedAt.Unix()) {
		t.Errorf("last success after baseline %v, want %v", got, before.FinishedAt.Unix())
	}

	// The daemon's own run (observed at once), a manual run of another
	// process (found by Sync), and one still running (counted when it ends).
	own := finish(record("20210102T020000Z-00000002", "queue", runlog.Schedule, now.Add(-10*time.Hour)), runlog.Succeeded, 100)
	write(own)
	m.Observe(own)
	manual := finish(record("20210102T030000Z-00000003", "backfill.month=2020-12", runlog.Manual, now.Add(-9*time.Hour)), runlog.BadInput, 0)
	write(manual)
	running := record("20210102T115900Z-00000004", "queue", runlog.Manual, now.Add(-time.Minute))
	write(running)
	for range 2 { // syncing twice counts nothing twice
		if err := m.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	check := func(name string, labels map[string]string, want float64) {
		t.Helper()
		if got := value(t, reg, name, labels); got != want {
			t.Errorf("%s%v = %v, want %v", name, labels, got, want)
		}
	}
	check("scorer_runs_total", map[string]string{"kind": "queue", "trigger": "schedule", "outcome": "succeeded"}, 1)
	check("scorer_runs_total", map[string]string{"kind": "backfill", "trigger": "manual", "outcome": "bad_input"}, 1)
	check("scorer_rows_scored_total", map[string]string{"kind": "queue"}, 100)
	check("scorer_bytes_read_total", map[string]string{"kind": "queue"}, 1000)
	check("scorer_bytes_written_total", map[string]string{"kind": "queue"}, 300)
	check("scorer_last_success_timestamp_seconds", map[string]string{"kind": "queue"}, float64(own.FinishedAt.Unix()))
	check("scorer_model_info", map[string]string{"kind": "queue", "model": "ctr-demo", "version": "2020-08.1"}, 1)

	finish(running, runlog.NothingToDo, 0)
	if err := l.Finish(ctx, running); err != nil {
		t.Fatal(err)
	}
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	check("scorer_runs_total", map[string]string{"kind": "queue", "trigger": "manual", "outcome": "nothing_to_do"}, 1)
	if n := testutil.CollectAndCount(reg, "scorer_runs_total"); n != 3 {
		t.Errorf("%d series of scorer_runs_total, want 3 (the run from before the baseline is not counted)", n)
	}
}

// The store counters start at zero for both stores and add up the
// store_ops of the records, observed or synced; a record without them (an
// older version's) counts nothing there.
func TestMetricsCountStoreOperations(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2021, 1, 2, 12, 0, 0, 0, time.UTC)
	l, _ := newLog(t, now)
	reg := prometheus.NewRegistry()
	m := runlog.NewMetrics(reg, l)
	if err := m.Baseline(ctx); err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{"input", "output"} {
		for _, op := range []string{"list", "stat", "read", "write", "copy", "delete"} {
			if v := value(t, reg, "scorer_store_operations_total", map[string]string{"store": st, "op": op}); v != 0 {
				t.Errorf("%s %s before any run: %v", st, op, v)
			}
		}
		for _, dir := range []string{"read", "write"} {
			if v := value(t, reg, "scorer_store_bytes_total", map[string]string{"store": st, "direction": dir}); v != 0 {
				t.Errorf("%s %s bytes before any run: %v", st, dir, v)
			}
		}
	}

	ops := &runlog.StoreOps{
		Input:  store.OpCounts{List: 1, Listed: 2, Read: 2, ReadBytes: 1000},
		Output: store.OpCounts{List: 5, Listed: 9, Stat: 4, Read: 3, ReadBytes: 300, Write: 6, WriteAttempts: 7, WriteBytes: 5000, Copy: 1, Delete: 2},
	}
	own := finish(record("20210102T020000Z-00000001", "queue", runlog.Schedule, now.Add(-2*time.Hour)), runlog.Succeeded, 10)
	other := finish(record("20210102T030000Z-00000002", "backfill.month=2020-12", runlog.Manual, now.Add(-time.Hour)), runlog.Succeeded, 10)
	old := finish(record("20210102T040000Z-00000003", "queue", runlog.Manual, now.Add(-time.Hour)), runlog.Failed, 0)
	own.StoreOps, other.StoreOps = ops, ops
	for _, r := range []*runlog.Record{own, other, old} {
		if err := l.Finish(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	m.Observe(own)
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"scorer_store_operations_total", map[string]string{"store": "input", "op": "list"}, 2},
		{"scorer_store_operations_total", map[string]string{"store": "input", "op": "read"}, 4},
		{"scorer_store_operations_total", map[string]string{"store": "input", "op": "write"}, 0},
		{"scorer_store_operations_total", map[string]string{"store": "output", "op": "list"}, 10},
		{"scorer_store_operations_total", map[string]string{"store": "output", "op": "stat"}, 8},
		{"scorer_store_operations_total", map[string]string{"store": "output", "op": "read"}, 6},
		{"scorer_store_operations_total", map[string]string{"store": "output", "op": "write"}, 12}, // completed, not attempted
		{"scorer_store_operations_total", map[string]string{"store": "output", "op": "copy"}, 2},
		{"scorer_store_operations_total", map[string]string{"store": "output", "op": "delete"}, 4},
		{"scorer_store_bytes_total", map[string]string{"store": "input", "direction": "read"}, 2000},
		{"scorer_store_bytes_total", map[string]string{"store": "output", "direction": "read"}, 600},
		{"scorer_store_bytes_total", map[string]string{"store": "output", "direction": "write"}, 10000},
		{"scorer_store_objects_listed_total", map[string]string{"store": "input"}, 4},
		{"scorer_store_objects_listed_total", map[string]string{"store": "output"}, 18},
	} {
		if got := value(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(reg, "scorer_store_operations_total"); n != 12 {
		t.Errorf("%d series of scorer_store_operations_total, want 12", n)
	}
}

// value returns the value of one series.
func value(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := len(m.GetLabel()) == len(labels)
			for _, lp := range m.GetLabel() {
				match = match && labels[lp.GetName()] == lp.GetValue()
			}
			switch {
			case !match:
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// The drift gauges show the latest run with a drift verdict, failed by
// drift or not, whatever order the records are seen in; a feature whose
// PSI was not computed has no series; the score mean is the latest
// success's.
func TestMetricsDriftGauges(t *testing.T) {
	now := time.Date(2021, 1, 2, 12, 0, 0, 0, time.UTC)
	l, _ := newLog(t, now)
	reg := prometheus.NewRegistry()
	m := runlog.NewMetrics(reg, l)
	f := func(v float64) *float64 { return &v }
	older := finish(record("20210102T010000Z-00000001", "backfill.month=2020-11", runlog.Manual, now.Add(-3*time.Hour)), runlog.Succeeded, 10)
	older.Drift = &runlog.Drift{Status: "warn", Features: []runlog.DriftFeature{
		{Feature: "site", Status: "warn", PSI: f(0.4), MissingRate: f(0), Threshold: 0.25},
		{Feature: "country", Status: "ok", PSI: f(0.01), MissingRate: f(0.5)},
	}}
	older.Report = &runlog.Report{Scores: &runlog.ScoreSummary{Count: 10, Mean: 0.3}}
	latest := finish(record("20210102T020000Z-00000002", "backfill.month=2020-12", runlog.Manual, now.Add(-2*time.Hour)), runlog.Drifted, 0)
	latest.Drift = &runlog.Drift{Status: "fail", Features: []runlog.DriftFeature{
		{Feature: "site", Status: "fail", PSI: f(2.5), MissingRate: f(0), Threshold: 1},
		{Feature: "country", Status: "ok", PSI: nil, MissingRate: f(1)},
	}}
	m.Observe(latest)
	m.Observe(older) // seen later, older: changes no gauge but the score mean
	check := func(name string, labels map[string]string, want float64) {
		t.Helper()
		if got := value(t, reg, name, labels); got != want {
			t.Errorf("%s%v = %v, want %v", name, labels, got, want)
		}
	}
	check("scorer_feature_drift_psi", map[string]string{"kind": "backfill", "feature": "site"}, 2.5)
	check("scorer_feature_missing_rate", map[string]string{"kind": "backfill", "feature": "country"}, 1)
	check("scorer_drift_status", map[string]string{"kind": "backfill"}, 2)
	check("scorer_score_mean", map[string]string{"kind": "backfill"}, 0.3)
	if n := testutil.CollectAndCount(reg, "scorer_feature_drift_psi"); n != 1 {
		t.Errorf("%d series of scorer_feature_drift_psi, want 1 (country's PSI was not computed in the latest run)", n)
	}
}
