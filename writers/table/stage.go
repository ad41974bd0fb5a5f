package table

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/writers"
)

// RunSpec describes a run.
type RunSpec struct {
	// RunID must be unique per bucket; see NewRunID and ValidateRunID.
	RunID string
	// Job names the ledger the run's inputs are recorded in (Consumed).
	Job   string
	Model Model
	// Inputs consumed by the run (more can be added with Run.AddInputs).
	Inputs []InputFile
	// Constants are appended to every row of every output, before the
	// output's own constants.
	Constants []writers.Constant
	// Fence, if set, is called with the exact bytes of the commit record
	// just before it is written; an error stops the commit. A lease uses it
	// to make the commit conditional on still holding the lease (see
	// internal/lease). After a Fence call the run's staging is kept even if
	// the commit fails, since the fenced record may still be adopted.
	Fence func(ctx context.Context, commit []byte) error
	// StagingRunID, when set, makes the run a shard of the run with that
	// id: its parts are staged under that run's staging (named after this
	// run's id, so shards never collide), and the run is sealed (Seal) rather
	// than committed; see Publisher.CommitSharded.
	StagingRunID string
}

// runMarker is written at Begin as <staging>/_run.json (state.RunMarkerKey), so that Recover can
// tell which job a staged, uncommitted run belongs to.
type runMarker struct {
	RunID     string    `json:"run_id"`
	Job       string    `json:"job"`
	StartedAt time.Time `json:"started_at"`
}

// Begin starts a run. Nothing is visible in any table until Commit.
func (p *Publisher) Begin(ctx context.Context, spec RunSpec) (*Run, error) {
	if err := ValidateRunID(spec.RunID); err != nil {
		return nil, fmt.Errorf("begin run: %w", err)
	}
	if spec.Job == "" {
		return nil, fmt.Errorf("begin run %s: empty job name: %w", spec.RunID, ErrInvalidName)
	}
	key := state.CommitKey(spec.RunID)
	if exists, err := state.Exists(ctx, p.bucket, key); err != nil {
		return nil, fmt.Errorf("begin run %s: %w", spec.RunID, err)
	} else if exists {
		return nil, fmt.Errorf("begin run %s: %w", spec.RunID, ErrRunExists)
	}
	marker, err := state.EncodeCompact(runMarker{RunID: spec.RunID, Job: spec.Job, StartedAt: p.now()})
	if err != nil {
		return nil, err
	}
	staging := spec.RunID
	if spec.StagingRunID != "" {
		if err := ValidateRunID(spec.StagingRunID); err != nil {
			return nil, fmt.Errorf("begin run %s: %w", spec.RunID, err)
		}
		staging = spec.StagingRunID
	}
	_, err = state.Create(ctx, p.bucket, state.RunMarkerKey(staging), marker)
	shared := spec.StagingRunID != "" && errors.Is(err, store.ErrPrecondition) // shards share one marker
	if err != nil && !shared {
		return nil, fmt.Errorf("begin run %s: %w", spec.RunID, err)
	}
	return &Run{p: p, spec: spec, inputs: slices.Clone(spec.Inputs)}, nil
}

type runState int

const (
	runOpen runState = iota
	runFailed
	runCommitted
	runAborted
)

// Run is one run's outputs and inputs, staged until Commit. Output, AddInputs,
// Commit and Abort must not be called concurrently with each other; the
// Writers of a run may be written from different goroutines.
type Run struct {
	p    *Publisher
	spec RunSpec

	mu      sync.Mutex
	state   runState
	fenced  bool // Fence was called: the commit may have been decided
	inputs  []InputFile
	outputs []*Writer
}

// stagingID is the run whose staging prefix holds this run's parts.
func (r *Run) stagingID() string {
	if r.spec.StagingRunID != "" {
		return r.spec.StagingRunID
	}
	return r.spec.RunID
}

// AddInputs records more input files consumed by the run.
func (r *Run) AddInputs(files ...InputFile) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inputs = append(r.inputs, files...)
}

// OutputSpec describes one output of a run.
type OutputSpec struct {
	Table     string
	Partition string // Hive style, e.g. "month=2020-09"
	Mode      Mode
	// Schema of the records passed to Write.
	Schema *arrow.Schema
	// Constants appended after the run's constants.
	Constants []writers.Constant
	// Plain names the string columns of unique values (ids): written PLAIN,
	// not dictionary-encoded (writers.PartConfig.Plain).
	Plain []string
}

// Output opens a writer for one (table, partition) of the run. Its parts are
// staged under _scorer/staging/<run_id>/.
func (r *Run) Output(spec OutputSpec) (*Writer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != runOpen {
		return nil, fmt.Errorf("output %s/%s: %w", spec.Table, spec.Partition, ErrClosed)
	}
	if err := ValidateTable(spec.Table); err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	if err := ValidatePartition(spec.Partition); err != nil {
		return nil, fmt.Errorf("output %s: %w", spec.Table, err)
	}
	if spec.Mode != Replace && spec.Mode != Append {
		return nil, fmt.Errorf("output %s/%s: mode %q: want %s or %s", spec.Table, spec.Partition, spec.Mode, Replace, Append)
	}
	for _, o := range r.outputs {
		if o.spec.Table == spec.Table && o.spec.Partition == spec.Partition {
			return nil, fmt.Errorf("output %s/%s: %w", spec.Table, spec.Partition, ErrDuplicateOutput)
		}
	}
	id := r.spec.RunID
	cfg := writers.PartConfig{
		RowGroupRows:       r.p.opts.RowGroupRows,
		PartRows:           r.p.opts.PartRows,
		DictionaryMaxBytes: r.p.opts.DictionaryMaxBytes,
		Constants:          append(slices.Clone(r.spec.Constants), spec.Constants...),
		Plain:              spec.Plain,
		Metadata:           map[string]string{"scorer.run_id": id, "scorer.table": spec.Table, "scorer.partition": spec.Partition},
		OnPart:             func(writers.PartFile) error { return r.p.hook(PointAfterPartStaged) },
	}
	pw, err := writers.NewPartWriter(r.p.bucket, spec.Schema,
		func(n int) string { return state.StagedKey(r.stagingID(), spec.Table, spec.Partition, PartName(id, n)) }, cfg)
	if err != nil {
		return nil, fmt.Errorf("output %s/%s: %w", spec.Table, spec.Partition, err)
	}
	t := &Writer{spec: spec, pw: pw}
	r.outputs = append(r.outputs, t)
	return t, nil
}

// Writer writes one output of a run. It has the Sink shape, but Close
// only seals the output: nothing is published until Run.Commit. Safe for use
// by one goroutine at a time; the caller keeps ownership of records.
type Writer struct {
	spec OutputSpec

	mu     sync.Mutex
	pw     *writers.PartWriter
	parts  []writers.PartFile
	closed bool
	err    error // first failure, sticky
}

// Write appends a record's rows to the output.
func (t *Writer) Write(ctx context.Context, rec arrow.RecordBatch) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return t.err
	}
	if t.closed {
		return fmt.Errorf("write %s/%s: %w", t.spec.Table, t.spec.Partition, ErrClosed)
	}
	if err := t.pw.Write(ctx, rec); err != nil {
		t.err = fmt.Errorf("write %s/%s: %w", t.spec.Table, t.spec.Partition, err)
		t.pw.Abort()
		return t.err
	}
	return nil
}

// Close finishes the output's last part. Calling it again returns the same
// result.
func (t *Writer) Close(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.err != nil {
		return t.err
	}
	parts, err := t.pw.Close(ctx)
	t.closed = true
	if err != nil {
		t.err = fmt.Errorf("close %s/%s: %w", t.spec.Table, t.spec.Partition, err)
		return t.err
	}
	t.parts = parts
	return nil
}

// Rows is the number of rows written so far.
func (t *Writer) Rows() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pw.Rows()
}

func (t *Writer) abort() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.pw.Abort()
		t.closed = true
		if t.err == nil {
			t.err = fmt.Errorf("write %s/%s: %w", t.spec.Table, t.spec.Partition, ErrClosed)
		}
	}
}
