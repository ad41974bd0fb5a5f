package runlog

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adtech/scorer/readers/store"
)

// Metrics counts run records as Prometheus metrics, labelled by kind (queue
// or backfill; not "job", which Prometheus gives to the scrape target).
// Counters count the runs that ended while the process was up, the runs of
// other processes included (Sync); the gauges start from the records
// already in the store (Baseline). Safe for concurrent use.
type Metrics struct {
	log *Log

	runs         *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	rowsRead     *prometheus.CounterVec
	rowsScored   *prometheus.CounterVec
	rowsRejected *prometheus.CounterVec
	bytesRead    *prometheus.CounterVec
	bytesWritten *prometheus.CounterVec
	lastSuccess  *prometheus.GaugeVec
	model        *prometheus.GaugeVec
	storeOps     *prometheus.CounterVec
	storeBytes   *prometheus.CounterVec
	storeListed  *prometheus.CounterVec
	syncErrors   prometheus.Counter
	driftPSI     *prometheus.GaugeVec
	missingRate  *prometheus.GaugeVec
	driftStatus  *prometheus.GaugeVec
	scoreMean    *prometheus.GaugeVec
	imageCache   *prometheus.CounterVec
	badImages    *prometheus.CounterVec

	syncMu sync.Mutex // one Sync at a time
	mu     sync.Mutex
	seen   map[string]bool
	lastOK map[string]time.Time // kind -> finish of the latest success
	// kind -> the model of the latest success, and when that run started
	models  map[string]Model
	modelAt map[string]time.Time
	// kind -> when the run whose drift the gauges show started
	driftAt map[string]time.Time
}

// baselineReads bounds the records Baseline reads.
const baselineReads = 100

// NewMetrics creates the metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer, l *Log) *Metrics {
	byKind := []string{"kind"}
	m := &Metrics{
		log: l,
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scorer_runs_total",
			Help: "Runs that ended, by kind (queue, backfill), trigger (manual, schedule) and outcome.",
		},
			[]string{"kind", "trigger", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "scorer_run_duration_seconds",
			Help:    "Duration of the runs that ended (skipped slots left out).",
			Buckets: []float64{1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800},
		}, byKind),
		rowsRead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scorer_rows_read_total",
			Help: "Input rows read (scored plus rejected).",
		}, byKind),
		rowsScored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scorer_rows_scored_total",
			Help: "Rows scored.",
		}, byKind),
		rowsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scorer_rows_rejected_total",
			Help: "Bad input rows sent to the rejects table.",
		}, byKind),
		bytesRead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scorer_bytes_read_total",
			Help: "Bytes of input files read (as stored, e.g. compressed).",
		}, byKind),
		bytesWritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scorer_bytes_written_total",
			Help: "Bytes of Parquet files published.",
		}, byKind),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scorer_last_success_timestamp_seconds",
			Help: "When the latest successful run (published, or nothing to do) ended, Unix time.",
		}, byKind),
		model: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scorer_model_info",
			Help: "The model of the latest successful run: always 1, the model in the labels.",
		},
			[]string{"kind", "model", "version"}),
		storeOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scorer_store_operations_total",
			Help: "Operations the runs made on their stores (input, output), by operation (list, stat, read, write, copy, delete): calls, failed ones included, but writes completed.",
		},
			[]string{"store", "op"}),
		storeBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scorer_store_bytes_total",
			Help: "Bytes the runs read from and wrote to their stores (input, output), by direction (read, write).",
		},
			[]string{"store", "direction"}),
		storeListed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scorer_store_objects_listed_total",
			Help: "Objects the runs' list calls returned, by store (GCS bills a list request per 1000).",
		},
			[]string{"store"}),
		syncErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scorer_run_records_sync_errors_total",
			Help: "Failures to read the run records from the output store.",
		}),
		driftPSI: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scorer_feature_drift_psi",
			Help: "Population stability index of each input feature (and of the scores, feature \"score\") against the model's training profile, in the latest run that profiled its inputs (published or failed by drift.fail_above).",
		}, []string{"kind", "feature"}),
		missingRate: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scorer_feature_missing_rate",
			Help: "Share of the rows missing each input feature in the latest run that profiled its inputs.",
		}, []string{"kind", "feature"}),
		driftStatus: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scorer_drift_status",
			Help: "Drift verdict of the latest run that profiled its inputs: 0 ok, 1 warn (drift.warn_above), 2 fail (drift.fail_above, nothing published).",
		}, byKind),
		scoreMean: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scorer_score_mean",
			Help: "Mean score of the latest successful run that scored rows.",
		}, byKind),
		imageCache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scorer_image_cache_lookups_total",
			Help: "Distinct images of each scored batch whose embedding was cached (result hit) or computed by the image tower (result miss); the hit rate is hits over both.",
		}, []string{"kind", "result"}),
		badImages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scorer_bad_images_total",
			Help: "Rows × image features scored with the missing-image embedding because the image could not be used, by reason (missing, bad_uri, too_large, unsupported, too_many_pixels, corrupt).",
		}, []string{"kind", "reason"}),
		seen:    map[string]bool{},
		lastOK:  map[string]time.Time{},
		models:  map[string]Model{},
		modelAt: map[string]time.Time{},
		driftAt: map[string]time.Time{},
	}
	reg.MustRegister(m.runs, m.duration, m.rowsRead, m.rowsScored, m.rowsRejected, m.bytesRead,
		m.bytesWritten, m.lastSuccess, m.model, m.storeOps, m.storeBytes, m.storeListed, m.syncErrors,
		m.driftPSI, m.missingRate, m.driftStatus, m.scoreMean, m.imageCache, m.badImages)
	// The store series exist from the start, at zero: their label values
	// are known.
	for _, st := range []string{"input", "output"} {
		m.addStoreOps(st, store.OpCounts{})
	}
	return m
}

// addStoreOps adds one store's counts of a run to the store counters.
func (m *Metrics) addStoreOps(st string, c store.OpCounts) {
	add := func(cv *prometheus.CounterVec, n int64, labels ...string) {
		ctr := cv.WithLabelValues(labels...)
		if n > 0 { // a counter cannot go down (nor a bad record panic it)
			ctr.Add(float64(n))
		}
	}
	for _, op := range []struct {
		name string
		n    int64
	}{
		{"list", c.List},
		{"stat", c.Stat},
		{"read", c.Read},
		{"write", c.Write},
		{"copy", c.Copy},
		{"delete", c.Delete},
	} {
		add(m.storeOps, op.n, st, op.name)
	}
	add(m.storeBytes, c.ReadBytes, st, "read")
	add(m.storeBytes, c.WriteBytes, st, "write")
	add(m.storeListed, c.Listed, st)
}

// kindOf is the record's kind, from its job name for old records.
func kindOf(r *Record) string {
	if r.Kind != "" {
		return r.Kind
	}
	k, _, _ := strings.Cut(r.Job, ".")
	return k
}

// Observe counts a record that ended, once; a record seen before or still
// running is left alone.
func (m *Metrics) Observe(r *Record) {
	if !r.Outcome.Final() {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen[r.Key()] {
		return
	}
	m.seen[r.Key()] = true
	kind := kindOf(r)
	trigger := r.Trigger
	if trigger == "" {
		trigger = Manual
	}
	m.runs.WithLabelValues(kind, trigger, string(r.Outcome)).Inc()
	if r.Outcome != Skipped {
		m.duration.WithLabelValues(kind).Observe(r.DurationSeconds)
	}
	m.rowsRead.WithLabelValues(kind).Add(float64(r.RowsRead))
	m.rowsScored.WithLabelValues(kind).Add(float64(r.RowsScored))
	m.rowsRejected.WithLabelValues(kind).Add(float64(r.RowsRejected))
	m.bytesRead.WithLabelValues(kind).Add(float64(r.InputBytes))
	m.bytesWritten.WithLabelValues(kind).Add(float64(r.OutputBytes))
	if ops := r.StoreOps; ops != nil {
		m.addStoreOps("input", ops.Input)
		m.addStoreOps("output", ops.Output)
	}
	if im := r.Images; im != nil && im.CacheHits >= 0 && im.CacheMisses >= 0 {
		m.imageCache.WithLabelValues(kind, "hit").Add(float64(im.CacheHits))
		m.imageCache.WithLabelValues(kind, "miss").Add(float64(im.CacheMisses))
		for reason, n := range im.BadByReason {
			if n > 0 {
				m.badImages.WithLabelValues(kind, reason).Add(float64(n))
			}
		}
	}
	m.gaugesLocked(kind, r)
}

// gaugesLocked moves the last-success, model and score gauges to r if r
// is a later success, and the drift gauges if r is a later run with a
// drift verdict.
func (m *Metrics) gaugesLocked(kind string, r *Record) {
	if r.Drift != nil && r.StartedAt.After(m.driftAt[kind]) {
		m.driftAt[kind] = r.StartedAt
		m.driftPSI.DeletePartialMatch(prometheus.Labels{"kind": kind})
		m.missingRate.DeletePartialMatch(prometheus.Labels{"kind": kind})
		for _, f := range r.Drift.Features {
			if f.PSI != nil {
				m.driftPSI.WithLabelValues(kind, f.Feature).Set(*f.PSI)
			}
			if f.MissingRate != nil {
				m.missingRate.WithLabelValues(kind, f.Feature).Set(*f.MissingRate)
			}
		}
		m.driftStatus.WithLabelValues(kind).Set(float64(slices.Index([]string{"ok", "warn", "fail"}, r.Drift.Status)))
	}
	if !r.Outcome.OK() {
		return
	}
	if r.FinishedAt.After(m.lastOK[kind]) {
		m.lastOK[kind] = r.FinishedAt
		m.lastSuccess.WithLabelValues(kind).Set(float64(r.FinishedAt.UnixMilli()) / 1e3)
		if r.Report != nil && r.Report.Scores != nil && r.Report.Scores.Count > 0 {
			m.scoreMean.WithLabelValues(kind).Set(r.Report.Scores.Mean)
		}
	}
	if r.Model == nil || r.Model.Name == "" || !r.StartedAt.After(m.modelAt[kind]) {
		return
	}
	if old, ok := m.models[kind]; ok {
		m.model.DeleteLabelValues(kind, old.Name, old.Version)
	}
	m.models[kind], m.modelAt[kind] = *r.Model, r.StartedAt
	m.model.WithLabelValues(kind, r.Model.Name, r.Model.Version).Set(1)
}

// Baseline takes the records of runs that ended before it began as seen,
// without counting them, and sets the gauges from the newest of them. Call it once, before
// (or concurrently with) the first Sync, which waits for it.
func (m *Metrics) Baseline(ctx context.Context) error {
	m.syncMu.Lock() // a Sync waits for the baseline
	defer m.syncMu.Unlock()
	since := m.log.Now()
	keys, err := m.log.Keys(ctx)
	if err != nil {
		m.syncErrors.Inc()
		return err
	}
	var recs []*Record
	for i, k := range keys {
		if i >= baselineReads {
			m.markSeen(k)
			continue
		}
		r, err := m.log.Read(ctx, k)
		if errors.Is(err, store.ErrNotExist) {
			continue
		}
		if err != nil {
			m.syncErrors.Inc()
			return err
		}
		recs = append(recs, r)
	}
	if err := m.log.Resolve(ctx, recs); err != nil {
		m.syncErrors.Inc()
		return err
	}
	for _, r := range recs {
		switch {
		case !r.Outcome.Final(): // counted when it ends
		case r.FinishedAt.Before(since):
			m.mu.Lock()
			m.seen[r.Key()] = true
			m.gaugesLocked(kindOf(r), r)
			m.mu.Unlock()
		default: // ended since the baseline began: counted
			m.Observe(r)
		}
	}
	return nil
}

func (m *Metrics) markSeen(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen[key] = true
}

// Sync counts the records that ended since the last Sync or Baseline,
// written by any process: manual runs count like scheduled ones.
func (m *Metrics) Sync(ctx context.Context) error {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	keys, err := m.log.Keys(ctx)
	if err != nil {
		m.syncErrors.Inc()
		return err
	}
	m.mu.Lock()
	var todo []string
	for _, k := range keys {
		if !m.seen[k] {
			todo = append(todo, k)
		}
	}
	m.mu.Unlock()
	var recs []*Record
	for _, k := range todo {
		r, err := m.log.Read(ctx, k)
		if errors.Is(err, store.ErrNotExist) {
			continue
		}
		if err != nil {
			m.syncErrors.Inc()
			return err
		}
		recs = append(recs, r)
	}
	if err := m.log.Resolve(ctx, recs); err != nil {
		m.syncErrors.Inc()
		return err
	}
	for _, r := range recs {
		m.Observe(r)
	}
	return nil
}
