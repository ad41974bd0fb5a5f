package runlog

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/adtech/scorer/internal/lease"
	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
)

// Prefix is where the records are kept in the output store
// (state.RunsPrefix).
const Prefix = state.RunsPrefix

// FormatVersion is the version of the record format.
const FormatVersion = state.RunFormat

// Outcome is how a run ended.
type Outcome string

// Outcomes.
const (
	// Running: the run has not ended, or its process died (Interrupted).
	Running Outcome = "running"
	// Succeeded: the run published its output (exit code 0).
	Succeeded Outcome = "succeeded"
	// NothingToDo: no input was waiting (exit code 0).
	NothingToDo Outcome = "nothing_to_do"
	// Failed: a failure safe to retry (exit code 1).
	Failed Outcome = "failed"
	// ConfigError: configuration or model bundle (exit code 2).
	ConfigError Outcome = "config_error"
	// BadInput: input data breaks the spec (exit code 3).
	BadInput Outcome = "bad_input"
	// Busy: another run held the job's lease (exit code 4).
	Busy Outcome = "busy"
	// Drifted: the inputs drifted beyond drift.fail_above (exit code 7);
	// nothing published. Record.Drift says which features.
	Drifted Outcome = "drifted"
	// Cancelled: stopped by a signal, or by the scheduler's shutdown
	// deadline; nothing published.
	Cancelled Outcome = "cancelled"
	// Skipped: a scheduled slot that did not run (the job was still running,
	// or the slot was beyond the catch-up limit).
	Skipped Outcome = "skipped"
	// Interrupted: a record left running by a process that died.
	Interrupted Outcome = "interrupted"
)

// Final reports whether o is an end state.
func (o Outcome) Final() bool { return o != Running && o != "" }

// OK reports whether o is a success (exit code 0).
func (o Outcome) OK() bool { return o == Succeeded || o == NothingToDo }

// Triggers.
const (
	Manual   = "manual"
	Schedule = "schedule"
)

// Record is one run.
type Record struct {
	FormatVersion int    `json:"format_version"`
	RunID         string `json:"run_id"`
	// Job is the job's lease name: "queue", "backfill.month=2020-09".
	Job string `json:"job"`
	// Kind is the kind of job: "queue" or "backfill".
	Kind string `json:"kind"`
	// Trigger: Manual or Schedule.
	Trigger  string       `json:"trigger"`
	Schedule *ScheduleRef `json:"schedule,omitempty"`

	Outcome  Outcome `json:"outcome"`
	ExitCode int     `json:"exit_code"`
	Error    string  `json:"error,omitempty"`

	Host    string `json:"host"`
	PID     int    `json:"pid"`
	Version string `json:"version"`

	StartedAt       time.Time `json:"started_at"`
	FinishedAt      time.Time `json:"finished_at,omitzero"`
	DurationSeconds float64   `json:"duration_seconds,omitempty"`

	Table     string `json:"table,omitempty"`
	Partition string `json:"partition,omitempty"`
	Shard     string `json:"shard,omitempty"`
	Model     *Model `json:"model,omitempty"`
	// Challengers are the models scored beside Model.
	Challengers []Model `json:"challengers,omitempty"`

	InputFiles   []string `json:"input_files,omitempty"`
	InputBytes   int64    `json:"input_bytes"`
	OutputFiles  []string `json:"output_files,omitempty"`
	OutputBytes  int64    `json:"output_bytes"`
	RowsRead     int64    `json:"rows_read"` // RowsScored + RowsRejected
	RowsScored   int64    `json:"rows_scored"`
	RowsRejected int64    `json:"rows_rejected"`
	Recovered    []string `json:"recovered,omitempty"`
	// StoreOps are the operations the run made on its stores (absent in
	// records of skipped times and of older versions).
	StoreOps *StoreOps `json:"store_ops,omitempty"`

	Report *Report `json:"report,omitempty"`
	// Drift is the run's drift verdict (absent in records of runs that
	// scored nothing and of older versions).
	Drift *Drift `json:"drift,omitempty"`
	// ReportURI is the HTML report the run wrote (scorer report).
	ReportURI string `json:"report_uri,omitempty"`
	// Images counts the champion's image embeddings (absent for a model
	// without image features).
	Images *Images `json:"images,omitempty"`
}

// Images are a run's image counts: per batch, its distinct images whose
// embedding was cached (CacheHits) or computed (CacheMisses); and the
// rows × image features scored with the missing-image embedding, by
// reason.
type Images struct {
	CacheHits   int64            `json:"cache_hits"`
	CacheMisses int64            `json:"cache_misses"`
	HitRate     float64          `json:"hit_rate"`
	Bad         int64            `json:"bad"`
	BadByReason map[string]int64 `json:"bad_by_reason,omitempty"`
}

// Drift is a run's drift verdict: the worst feature's status and every
// feature's (and the scores') drift.
type Drift struct {
	Status   string         `json:"status"` // ok, warn or fail
	Features []DriftFeature `json:"features,omitempty"`
}

// DriftFeature is one feature's drift in a run: its PSI against the
// training profile (null: not computed), its missing rate, its status and,
// if it warned or failed, the threshold it crossed.
type DriftFeature struct {
	Feature     string   `json:"feature"`
	Status      string   `json:"status"`
	PSI         *float64 `json:"psi"`
	MissingRate *float64 `json:"missing_rate"`
	Threshold   float64  `json:"threshold,omitempty"`
}

// StoreOps are the operations a run made on its input and output stores,
// counted by store.Counted: the calls its billing follows (docs/operations.md
// maps them to GCS operation classes). Output counts everything the run did
// to the output store up to its final record, which they leave out (one more
// write): the heal of interrupted publishes when the process healed on the
// run's behalf, its run record, lease, staging, publish and clean-up.
type StoreOps struct {
	Input  store.OpCounts `json:"input"`
	Output store.OpCounts `json:"output"`
}

// ScheduleRef says which scheduled slot a run was for.
type ScheduleRef struct {
	// Job is the schedule job's name in the config.
	Job string `json:"job"`
	// Slot is the time the run was scheduled for, in the job's time zone.
	Slot    time.Time `json:"slot"`
	Attempt int       `json:"attempt"`
	// Late: caught up after downtime.
	Late bool `json:"late,omitempty"`
}

// Model names a model bundle.
type Model struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

func (m *Model) String() string {
	if m == nil || m.Name == "" {
		return ""
	}
	return m.Name + " " + m.Version
}

// Report is a run's short report.
type Report struct {
	RowsPerSecond  float64       `json:"rows_per_second"`
	BytesPerSecond float64       `json:"bytes_per_second"`
	Scores         *ScoreSummary `json:"scores,omitempty"`
}

// Key is the record's key.
func (r *Record) Key() string { return state.RunKey(r.Job, r.RunID) }

// Log reads and writes run records in an output store. Safe for concurrent
// use.
type Log struct {
	b store.Bucket
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// New returns the run log of an output store.
func New(b store.Bucket) *Log { return &Log{b: b, Now: time.Now} }

// StartGrace is how long a record may stay "running" without its run
// holding a live lease before it is taken as interrupted: a run writes its
// record before it takes the lease, and a sharded backfill's last shard
// waits for the month's lease.
const StartGrace = 10 * time.Minute

// Start writes the record of a run that starts (outcome Running).
func (l *Log) Start(ctx context.Context, r *Record) error {
	r.FormatVersion, r.Outcome = FormatVersion, Running
	return l.write(ctx, r, true)
}

// Finish writes the record of a run that ended; r.Outcome must be final.
func (l *Log) Finish(ctx context.Context, r *Record) error {
	if !r.Outcome.Final() {
		return fmt.Errorf("run record %s: outcome %q is not final", r.RunID, r.Outcome)
	}
	r.FormatVersion = FormatVersion
	return l.write(ctx, r, false)
}

// write stores a record: create-if-absent when create is set (Start), else
// over whatever is there (Finish).
func (l *Log) write(ctx context.Context, r *Record, create bool) error {
	if r.RunID == "" || r.Job == "" || strings.Contains(r.RunID, "/") {
		return fmt.Errorf("run record: bad job %q or run id %q", r.Job, r.RunID)
	}
	data, err := state.Encode(r)
	if err != nil {
		return err
	}
	put := state.Put
	if create {
		put = state.Create
	}
	if _, err := put(ctx, l.b, r.Key(), data); err != nil {
		return fmt.Errorf("write run record: %w", err)
	}
	return nil
}

// Keys lists the keys of every record, newest first (by run id, which
// starts with the start time).
func (l *Log) Keys(ctx context.Context) ([]string, error) {
	objs, err := l.b.List(ctx, Prefix)
	if err != nil {
		return nil, fmt.Errorf("list run records: %w", err)
	}
	keys := make([]string, 0, len(objs))
	for _, o := range objs {
		if strings.HasSuffix(o.Key, ".json") {
			keys = append(keys, o.Key)
		}
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c := strings.Compare(path.Base(b), path.Base(a)); c != 0 {
			return c
		}
		return strings.Compare(b, a)
	})
	return keys, nil
}

// Read reads one record.
func (l *Log) Read(ctx context.Context, key string) (*Record, error) {
	data, err := state.Read(ctx, l.b, key)
	if err != nil {
		return nil, err
	}
	var r Record
	if err := state.Decode(data, &r); err != nil {
		return nil, fmt.Errorf("run record %s: %w", l.b.URI(key), err)
	}
	return &r, nil
}

// Recent returns up to n records that match (all if match is nil), newest
// first, with records of dead runs marked Interrupted. n <= 0: all.
func (l *Log) Recent(ctx context.Context, n int, match func(*Record) bool) ([]*Record, error) {
	keys, err := l.Keys(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Record
	// second is the run id's start second (its first 16 characters) of the
	// n-th match: runs of that second are ordered by their recorded start
	// below, so all of them are read before cutting to n.
	second := func(key string) string { return path.Base(key)[:min(16, len(path.Base(key)))] }
	var last string
	for i, k := range keys {
		if n > 0 && len(out) >= n {
			if last == "" {
				last = second(keys[i-1]) // the key of the n-th match
			}
			if second(k) != last {
				break
			}
		}
		r, err := l.Read(ctx, k)
		if errors.Is(err, store.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if match == nil || match(r) {
			out = append(out, r)
		}
	}
	// Run ids order runs by the second they started; within a second, by
	// the start time recorded.
	slices.SortStableFunc(out, func(a, b *Record) int { return b.StartedAt.Compare(a.StartedAt) })
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out, l.Resolve(ctx, out)
}

// Resolve marks the Running records whose run is gone as Interrupted: the
// run started more than StartGrace ago and no live lease names it (its
// job's lease, or for a shard of a sharded backfill, its shard's).
func (l *Log) Resolve(ctx context.Context, recs []*Record) error {
	now := l.Now()
	for _, r := range recs {
		if r.Outcome != Running || now.Sub(r.StartedAt) <= StartGrace {
			continue
		}
		live, err := l.live(ctx, r, now)
		if err != nil {
			return err
		}
		if !live {
			r.Outcome = Interrupted
		}
	}
	return nil
}

// live reports whether an unexpired lease names the record's run.
func (l *Log) live(ctx context.Context, r *Record, now time.Time) (bool, error) {
	keys := []string{state.LeaseKey(r.Job)}
	if r.Shard != "" {
		objs, err := l.b.List(ctx, state.ShardLeasesPrefix(r.Job))
		if err != nil {
			return false, fmt.Errorf("list leases: %w", err)
		}
		for _, o := range objs {
			keys = append(keys, o.Key)
		}
	}
	for _, k := range keys {
		data, err := state.Read(ctx, l.b, k)
		if errors.Is(err, store.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, err
		}
		var info lease.Info
		if state.Decode(data, &info) == nil && info.RunID == r.RunID && !info.Released && now.Before(info.ExpiresAt) {
			return true, nil
		}
	}
	return false, nil
}
