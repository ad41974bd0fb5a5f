package writers

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/adtech/scorer/readers/store"
)

// Failpoints: the names passed to Options.Failpoint, in the order a run
// reaches them. Points marked "each" fire once per object.
const (
	PointAfterPartStaged   = "after-part-staged"   // each staged part
	PointAfterStage        = "after-stage"         // all outputs staged, no commit record yet
	PointAfterCommitRecord = "after-commit-record" // the run is committed
	PointAfterPartCopied   = "after-part-copied"   // each part copied to its final name
	PointAfterManifest     = "after-manifest"      // each partition manifest written
	PointAfterStaleDeleted = "after-stale-deleted" // each old file of a REPLACE partition deleted
	PointAfterSuccess      = "after-success"       // each partition _SUCCESS written
	PointBeforeDone        = "before-done"         // every partition published, no done marker yet
	PointAfterDone         = "after-done"          // done marker written, staging not yet deleted
)

// Options configure a Publisher.
type Options struct {
	// RowGroupRows, PartRows and DictionaryMaxBytes: see PartConfig.
	RowGroupRows       int64
	PartRows           int64
	DictionaryMaxBytes int64
	// Now is the clock for committed_at and done_at; default time.Now.
	Now func() time.Time
	// Guard, if set, is called before every change a roll forward makes to
	// the tables (each copy, manifest, delete, marker). An error stops the
	// roll forward there. A lease holder passes a synchronous renewal, so
	// that a process that stalled and lost its lease stops at its next step
	// instead of publishing over a newer run.
	Guard func(ctx context.Context) error
	// Failpoint, if set, is called at each Point*. A non-nil error stops
	// the operation there, as a crash would (nothing is cleaned up), and is
	// returned wrapped. Tests use it to simulate crashes; it may also exit
	// the process.
	Failpoint func(point string) error
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	return Options{
		RowGroupRows:       DefaultRowGroupRows,
		PartRows:           DefaultPartRows,
		DictionaryMaxBytes: DefaultDictionaryMaxBytes,
		Now:                time.Now,
	}
}

// Validate checks the options.
func (o Options) Validate() error {
	if o.RowGroupRows < 0 || o.PartRows < 0 || o.DictionaryMaxBytes < 0 {
		return errors.New("writers options: sizes must not be negative")
	}
	return nil
}

// Publisher publishes runs' outputs into the tables of one bucket and keeps
// the run ledger there. It is safe for concurrent use, but the protocol
// assumes that at most one run commits or recovers at a time per bucket
// (see the package doc).
type Publisher struct {
	bucket store.Bucket
	opts   Options
}

// NewPublisher returns a Publisher over an output bucket.
func NewPublisher(b store.Bucket, opts Options) (*Publisher, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Publisher{bucket: b, opts: opts}, nil
}

func (p *Publisher) now() time.Time { return p.opts.Now().UTC() }

func (p *Publisher) hook(point string) error {
	if p.opts.Failpoint == nil {
		return nil
	}
	if err := p.opts.Failpoint(point); err != nil {
		return fmt.Errorf("failpoint %s: %w", point, err)
	}
	return nil
}

// NewRunID returns a fresh run id that sorts by time:
// "20200902T031500Z-1a2b3c4d".
func NewRunID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

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
	Constants []Constant
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

// runMarker is written at Begin as <staging>/_run.json, so that Recover can
// tell which job a staged, uncommitted run belongs to.
type runMarker struct {
	RunID     string    `json:"run_id"`
	Job       string    `json:"job"`
	StartedAt time.Time `json:"started_at"`
}

const runMarkerName = "_run.json"

// Begin starts a run. Nothing is visible in any table until Commit.
func (p *Publisher) Begin(ctx context.Context, spec RunSpec) (*Run, error) {
	if err := ValidateRunID(spec.RunID); err != nil {
		return nil, fmt.Errorf("begin run: %w", err)
	}
	if spec.Job == "" {
		return nil, fmt.Errorf("begin run %s: empty job name: %w", spec.RunID, ErrInvalidName)
	}
	key := CommitKey(spec.RunID)
	if _, err := p.bucket.Stat(ctx, key); err == nil {
		return nil, fmt.Errorf("begin run %s: %w", spec.RunID, ErrRunExists)
	} else if !errors.Is(err, store.ErrNotExist) {
		return nil, fmt.Errorf("begin run %s: %w", spec.RunID, err)
	}
	marker, err := json.Marshal(runMarker{RunID: spec.RunID, Job: spec.Job, StartedAt: p.now()})
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
	err = store.WriteAll(ctx, p.bucket, StagingPrefix(staging)+runMarkerName, marker, store.WriteOptions{IfAbsent: true})
	if err != nil && !(spec.StagingRunID != "" && errors.Is(err, store.ErrPrecondition)) { // shards share one marker
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
// TableWriters of a run may be written from different goroutines.
type Run struct {
	p    *Publisher
	spec RunSpec

	mu      sync.Mutex
	state   runState
	fenced  bool // Fence was called: the commit may have been decided
	inputs  []InputFile
	outputs []*TableWriter
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
	Constants []Constant
}

// Output opens a writer for one (table, partition) of the run. Its parts are
// staged under _scorer/staging/<run_id>/.
func (r *Run) Output(spec OutputSpec) (*TableWriter, error) {
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
	cfg := PartConfig{
		RowGroupRows:       r.p.opts.RowGroupRows,
		PartRows:           r.p.opts.PartRows,
		DictionaryMaxBytes: r.p.opts.DictionaryMaxBytes,
		Constants:          append(slices.Clone(r.spec.Constants), spec.Constants...),
		Metadata:           map[string]string{"scorer.run_id": id, "scorer.table": spec.Table, "scorer.partition": spec.Partition},
		OnPart:             func(PartFile) error { return r.p.hook(PointAfterPartStaged) },
	}
	pw, err := NewPartWriter(r.p.bucket, spec.Schema,
		func(n int) string { return stagedKey(r.stagingID(), spec.Table, spec.Partition, PartName(id, n)) }, cfg)
	if err != nil {
		return nil, fmt.Errorf("output %s/%s: %w", spec.Table, spec.Partition, err)
	}
	t := &TableWriter{spec: spec, pw: pw}
	r.outputs = append(r.outputs, t)
	return t, nil
}

// TableWriter writes one output of a run. It has the Sink shape, but Close
// only seals the output: nothing is published until Run.Commit. Safe for use
// by one goroutine at a time; the caller keeps ownership of records.
type TableWriter struct {
	spec OutputSpec

	mu     sync.Mutex
	pw     *PartWriter
	parts  []PartFile
	closed bool
	err    error // first failure, sticky
}

// Write appends a record's rows to the output.
func (t *TableWriter) Write(ctx context.Context, rec arrow.RecordBatch) error {
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
func (t *TableWriter) Close(ctx context.Context) error {
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
func (t *TableWriter) Rows() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pw.Rows()
}

func (t *TableWriter) abort() {
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

// Commit closes every output, writes the commit record (the commit point)
// and rolls the run forward: afterwards its files are published. Runs that
// committed earlier but were not rolled forward are rolled forward first, in
// commit order.
//
// If Commit returns an error the run may or may not be committed (the
// commit record write can fail after the store applied it). Call Abort,
// which discards the run only if it has no commit record, or Recover.
func (r *Run) Commit(ctx context.Context) (*CommitRecord, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.spec.RunID
	if r.spec.StagingRunID != "" {
		return nil, fmt.Errorf("commit run %s: a shard is sealed, not committed", id)
	}
	rec, err := r.sealLocked(ctx)
	if err != nil {
		return nil, fmt.Errorf("commit run %s: %w", id, err)
	}
	fence := r.spec.Fence
	if fence != nil {
		fence = func(ctx context.Context, data []byte) error { r.fenced = true; return r.spec.Fence(ctx, data) }
	}
	committed, err := r.p.commit(ctx, rec, fence)
	if committed {
		r.state = runCommitted
	}
	if err != nil {
		return committedOrNil(rec, committed), fmt.Errorf("commit run %s: %w", id, err)
	}
	return rec, nil
}

// commit writes a commit record (after the fence, if any) and rolls the
// record's job forward. committed says the record exists: from then on the
// run is published by this call or by the job's next recovery.
func (p *Publisher) commit(ctx context.Context, rec *CommitRecord, fence func(context.Context, []byte) error) (committed bool, err error) {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return false, err
	}
	if fence != nil {
		if err := fence(ctx, data); err != nil {
			return false, err
		}
	}
	if err := p.writeCommit(ctx, rec.RunID, data); err != nil {
		return false, err
	}
	if err := p.hook(PointAfterCommitRecord); err != nil {
		return true, err
	}
	_, err = p.rollForwardJob(ctx, rec.Job)
	return true, err
}

func committedOrNil(rec *CommitRecord, committed bool) *CommitRecord {
	if committed {
		return rec
	}
	return nil
}

// Seal closes every output and returns the record of what the run staged,
// without committing anything. A shard (RunSpec.StagingRunID set) is sealed,
// and the sharded run is committed once from all its shards' records with
// Publisher.CommitSharded. After Seal only Abort may be called.
func (r *Run) Seal(ctx context.Context) (*CommitRecord, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, err := r.sealLocked(ctx)
	if err != nil {
		return nil, fmt.Errorf("seal run %s: %w", r.spec.RunID, err)
	}
	return rec, nil
}

func (r *Run) sealLocked(ctx context.Context) (*CommitRecord, error) {
	id := r.spec.RunID
	if r.state != runOpen {
		return nil, ErrClosed
	}
	r.state = runFailed // until the commit record is known to exist
	for _, o := range r.outputs {
		if err := o.Close(ctx); err != nil {
			for _, other := range r.outputs {
				other.abort() // no upload left running behind a failed run
			}
			return nil, err
		}
	}
	if err := r.p.hook(PointAfterStage); err != nil {
		return nil, err
	}
	rec := &CommitRecord{
		FormatVersion: FormatVersion,
		RunID:         id,
		Job:           r.spec.Job,
		Model:         r.spec.Model,
		CommittedAt:   r.p.now(),
		Inputs:        slices.Clone(r.inputs),
	}
	if rec.Inputs == nil {
		rec.Inputs = []InputFile{}
	}
	rec.Outputs = []OutputRecord{}
	for _, o := range r.outputs {
		out := OutputRecord{Table: o.spec.Table, Partition: o.spec.Partition, Mode: o.spec.Mode, Files: []FileEntry{}}
		for _, f := range o.parts {
			out.Files = append(out.Files, FileEntry{Name: f.Name(), Rows: f.Rows, Bytes: f.Bytes, SHA256: f.SHA256, RunID: id})
			out.Rows += f.Rows
		}
		rec.Outputs = append(rec.Outputs, out)
	}
	slices.SortFunc(rec.Outputs, func(a, b OutputRecord) int {
		return cmp.Or(strings.Compare(a.Table, b.Table), strings.Compare(a.Partition, b.Partition))
	})
	return rec, nil
}

// writeCommit writes a commit record, create-if-absent; the same bytes
// already there are a retried write of ours that the store had applied.
func (p *Publisher) writeCommit(ctx context.Context, id string, data []byte) error {
	err := store.CreateOrSame(ctx, p.bucket, CommitKey(id), data)
	if errors.Is(err, store.ErrPrecondition) {
		return ErrRunExists
	}
	return err
}

// CommitSharded commits a sharded run from its shards' sealed records: one
// commit record (run id = the sharded run's id, whose staging the shards
// used) with every shard's files and inputs, fenced like Commit, then
// rolled forward. Repeating it with the same shards is harmless.
func (p *Publisher) CommitSharded(ctx context.Context, runID, job string, shards []*CommitRecord, fence func(context.Context, []byte) error) (*CommitRecord, error) {
	if len(shards) == 0 {
		return nil, fmt.Errorf("commit sharded run %s: no shards", runID)
	}
	slices.SortFunc(shards, func(a, b *CommitRecord) int { return strings.Compare(a.RunID, b.RunID) })
	rec := &CommitRecord{FormatVersion: FormatVersion, RunID: runID, Job: job, Model: shards[0].Model,
		Inputs: []InputFile{}, Outputs: []OutputRecord{}}
	byOut := map[[2]string]int{}
	for _, sh := range shards {
		if sh.Model != rec.Model {
			return nil, fmt.Errorf("commit sharded run %s: shard %s used model %s %s, others %s %s",
				runID, sh.RunID, sh.Model.Name, sh.Model.Version, rec.Model.Name, rec.Model.Version)
		}
		rec.CommittedAt = maxTime(rec.CommittedAt, sh.CommittedAt)
		rec.Inputs = append(rec.Inputs, sh.Inputs...)
		for _, o := range sh.Outputs {
			k := [2]string{o.Table, o.Partition}
			i, ok := byOut[k]
			if !ok {
				i = len(rec.Outputs)
				byOut[k] = i
				rec.Outputs = append(rec.Outputs, OutputRecord{Table: o.Table, Partition: o.Partition, Mode: o.Mode, Files: []FileEntry{}})
			}
			rec.Outputs[i].Files = append(rec.Outputs[i].Files, o.Files...)
			rec.Outputs[i].Rows += o.Rows
		}
	}
	slices.SortFunc(rec.Inputs, func(a, b InputFile) int { return strings.Compare(a.Key, b.Key) })
	slices.SortFunc(rec.Outputs, func(a, b OutputRecord) int {
		return cmp.Or(strings.Compare(a.Table, b.Table), strings.Compare(a.Partition, b.Partition))
	})
	committed, err := p.commit(ctx, rec, fence)
	if err != nil {
		return committedOrNil(rec, committed), fmt.Errorf("commit sharded run %s: %w", runID, err)
	}
	return rec, nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Abort discards an uncommitted run: open outputs are abandoned and the
// staging prefix deleted. If the run has a commit record, Abort deletes
// nothing and returns ErrCommitted: the run will be rolled forward.
func (r *Run) Abort(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.spec.RunID
	switch r.state {
	case runCommitted:
		return fmt.Errorf("abort run %s: %w", id, ErrCommitted)
	case runAborted:
		return nil
	}
	for _, o := range r.outputs {
		o.abort()
	}
	r.state = runFailed
	if _, err := r.p.bucket.Stat(ctx, CommitKey(id)); err == nil {
		r.state = runCommitted
		return fmt.Errorf("abort run %s: %w", id, ErrCommitted)
	} else if !errors.Is(err, store.ErrNotExist) {
		return fmt.Errorf("abort run %s: %w", id, err)
	}
	if r.fenced {
		// The fenced record may yet be adopted by the next lease holder,
		// which needs the staged parts; Recover deletes them otherwise.
		r.state = runAborted
		return nil
	}
	if r.spec.StagingRunID != "" {
		// A shard shares its staging with the other shards: delete only
		// its own parts.
		if err := r.p.deleteShardParts(ctx, r.spec.StagingRunID, id); err != nil {
			return fmt.Errorf("abort run %s: %w", id, err)
		}
		r.state = runAborted
		return nil
	}
	if err := r.p.deleteStaging(ctx, id); err != nil {
		return fmt.Errorf("abort run %s: %w", id, err)
	}
	r.state = runAborted
	return nil
}

// commitInfo is a commit record object as listed.
type commitInfo struct {
	id      string
	updated time.Time
	done    bool
}

// listCommits lists commit records in commit order: the time the store
// recorded each commit object (the store's clock, not a client's), then run
// id.
func (p *Publisher) listCommits(ctx context.Context) ([]commitInfo, error) {
	objs, err := p.bucket.List(ctx, commitsPrefix)
	if err != nil {
		return nil, err
	}
	done := map[string]bool{}
	var out []commitInfo
	for _, o := range objs {
		name := strings.TrimPrefix(o.Key, commitsPrefix)
		if strings.Contains(name, "/") {
			continue
		}
		if id, ok := strings.CutSuffix(name, doneSuffix); ok {
			done[id] = true
		} else if id, ok := strings.CutSuffix(name, commitSuffix); ok {
			out = append(out, commitInfo{id: id, updated: o.Updated})
		}
	}
	for i := range out {
		out[i].done = done[out[i].id]
	}
	slices.SortFunc(out, func(a, b commitInfo) int {
		return cmp.Or(a.updated.Compare(b.updated), strings.Compare(a.id, b.id))
	})
	return out, nil
}

func (p *Publisher) readCommit(ctx context.Context, id string) (*CommitRecord, error) {
	key := CommitKey(id)
	data, err := store.ReadAll(ctx, p.bucket, key)
	if err != nil {
		return nil, err
	}
	var rec CommitRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("read %s: %w: %w", p.bucket.URI(key), ErrCorrupt, err)
	}
	if rec.FormatVersion > FormatVersion || rec.RunID != id {
		return nil, fmt.Errorf("read %s: %w: format version %d, run id %q", p.bucket.URI(key), ErrCorrupt, rec.FormatVersion, rec.RunID)
	}
	return &rec, nil
}

// rollForwardPending rolls forward every committed run without a done
// marker, oldest first, and returns their ids.
func (p *Publisher) rollForwardPending(ctx context.Context) ([]string, error) {
	return p.rollForwardJob(ctx, "")
}

// rollForwardJob rolls forward the pending runs of one job ("" = all).
func (p *Publisher) rollForwardJob(ctx context.Context, job string) ([]string, error) {
	commits, err := p.listCommits(ctx)
	if err != nil {
		return nil, fmt.Errorf("roll forward: %w", err)
	}
	var rolled []string
	for _, c := range commits {
		if c.done {
			continue
		}
		rec, err := p.readCommit(ctx, c.id)
		if err != nil {
			return rolled, fmt.Errorf("roll forward: %w", err)
		}
		if job != "" && rec.Job != job {
			continue
		}
		if err := p.rollForward(ctx, rec); err != nil {
			return rolled, fmt.Errorf("roll forward run %s: %w", c.id, err)
		}
		rolled = append(rolled, c.id)
	}
	return rolled, nil
}

// rollForward publishes a committed run. Every step is idempotent, so it can
// be repeated from any crash point; see the package doc.
func (p *Publisher) rollForward(ctx context.Context, rec *CommitRecord) error {
	id := rec.RunID
	if _, err := p.bucket.Stat(ctx, DoneKey(id)); err == nil {
		return nil // finished by another attempt (a stalled one woke up)
	} else if !errors.Is(err, store.ErrNotExist) {
		return err
	}
	// A partition whose manifest comes from a run committed after this one
	// was replaced (or appended to, this run's files included) since: this
	// run must not touch it, only take back any part it copied there that
	// the newer manifest does not list.
	var live []OutputRecord
	for _, o := range rec.Outputs {
		prev, _, err := p.readManifest(ctx, o.Table, o.Partition)
		if err != nil {
			return err
		}
		if prev != nil && prev.RunID != id && prev.CommittedAt.After(rec.CommittedAt) {
			if err := p.withdrawStrays(ctx, o, prev); err != nil {
				return err
			}
			continue
		}
		live = append(live, o)
	}
	// 1. Withdraw _SUCCESS: from here until step 5 the folder does not
	// match a manifest.
	for _, o := range live {
		if err := p.step(ctx, func() error { return p.deleteIfExists(ctx, PartitionPrefix(o.Table, o.Partition)+SuccessName) }); err != nil {
			return err
		}
	}
	// 2. Copy staged parts to their final names.
	for _, o := range live {
		for _, f := range o.Files {
			if err := p.step(ctx, func() error { return p.copyPart(ctx, id, o, f) }); err != nil {
				return err
			}
			if err := p.hook(PointAfterPartCopied); err != nil {
				return err
			}
		}
	}
	// 3. Manifests: the switch from the old file set to the new one.
	for _, o := range live {
		if err := p.step(ctx, func() error { return p.writeManifest(ctx, rec, o) }); err != nil {
			return err
		}
		if err := p.hook(PointAfterManifest); err != nil {
			return err
		}
	}
	// 4. REPLACE: delete what the manifest no longer lists.
	for _, o := range live {
		if o.Mode != Replace {
			continue
		}
		if err := p.deleteStale(ctx, id, o); err != nil {
			return err
		}
	}
	// 5. _SUCCESS: the folder matches the manifest again.
	for _, o := range live {
		data, _ := json.Marshal(Success{RunID: id, CommittedAt: rec.CommittedAt})
		key := PartitionPrefix(o.Table, o.Partition) + SuccessName
		if err := p.step(ctx, func() error {
			return store.WriteAll(ctx, p.bucket, key, data, store.WriteOptions{ContentType: "application/json"})
		}); err != nil {
			return err
		}
		if err := p.hook(PointAfterSuccess); err != nil {
			return err
		}
	}
	// 6. Done marker, then staging is garbage.
	if err := p.hook(PointBeforeDone); err != nil {
		return err
	}
	data, _ := json.Marshal(Done{RunID: id, DoneAt: p.now()})
	if err := p.step(ctx, func() error {
		return store.WriteAll(ctx, p.bucket, DoneKey(id), data, store.WriteOptions{ContentType: "application/json"})
	}); err != nil {
		return err
	}
	if err := p.hook(PointAfterDone); err != nil {
		return err
	}
	return p.deleteStaging(ctx, id)
}

// step runs one change of a roll forward after the guard allows it.
func (p *Publisher) step(ctx context.Context, change func() error) error {
	if p.opts.Guard != nil {
		if err := p.opts.Guard(ctx); err != nil {
			return fmt.Errorf("roll forward stopped: %w", err)
		}
	}
	return change()
}

// withdrawStrays deletes the parts of a superseded run's output that it
// copied into the partition and the newer manifest does not list.
func (p *Publisher) withdrawStrays(ctx context.Context, o OutputRecord, newer *Manifest) error {
	listed := map[string]bool{}
	for _, f := range newer.Files {
		listed[f.Name] = true
	}
	for _, f := range o.Files {
		if listed[f.Name] {
			continue
		}
		if err := p.step(ctx, func() error { return p.deleteIfExists(ctx, finalKey(o.Table, o.Partition, f.Name)) }); err != nil {
			return err
		}
	}
	return nil
}

func (p *Publisher) deleteIfExists(ctx context.Context, key string) error {
	if err := p.bucket.Delete(ctx, key); err != nil && !errors.Is(err, store.ErrNotExist) {
		return err
	}
	return nil
}

// copyPart copies one staged part to its final name, IfAbsent. A final
// object that already exists with our size and sha256 is our own earlier
// attempt; anything else there is a conflict.
func (p *Publisher) copyPart(ctx context.Context, id string, o OutputRecord, f FileEntry) error {
	src := stagedKey(id, o.Table, o.Partition, f.Name)
	dst := finalKey(o.Table, o.Partition, f.Name)
	err := p.bucket.Copy(ctx, src, dst, store.WriteOptions{IfAbsent: true, ContentType: "application/vnd.apache.parquet"})
	if err == nil {
		return nil
	}
	if !errors.Is(err, store.ErrPrecondition) && !errors.Is(err, store.ErrNotExist) {
		return fmt.Errorf("publish %s: %w", p.bucket.URI(dst), err)
	}
	// The final object exists (precondition) or the staged one is gone
	// (deleted after an earlier attempt copied it): either way the final
	// object must be ours.
	same, verr := p.sameFile(ctx, dst, f)
	switch {
	case verr != nil:
		return fmt.Errorf("publish %s: %w", p.bucket.URI(dst), verr)
	case same:
		return nil
	case errors.Is(err, store.ErrPrecondition):
		return fmt.Errorf("publish %s: %w: object exists with other content", p.bucket.URI(dst), ErrConflict)
	default:
		return fmt.Errorf("publish %s: %w: staged part missing: %w", p.bucket.URI(dst), ErrCorrupt, err)
	}
}

// sameFile reports whether key holds exactly the file f describes.
func (p *Publisher) sameFile(ctx context.Context, key string, f FileEntry) (bool, error) {
	info, err := p.bucket.Stat(ctx, key)
	if errors.Is(err, store.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if info.Size != f.Bytes {
		return false, nil
	}
	r, err := p.bucket.NewReader(ctx, key, info.Generation)
	if err != nil {
		return false, err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return false, fmt.Errorf("read %s: %w", p.bucket.URI(key), err)
	}
	return hex.EncodeToString(h.Sum(nil)) == f.SHA256, nil
}

// readManifest returns a partition's manifest and its generation, or nil
// and 0 if there is none.
func (p *Publisher) readManifest(ctx context.Context, table, partition string) (*Manifest, int64, error) {
	key := PartitionPrefix(table, partition) + ManifestName
	info, err := p.bucket.Stat(ctx, key)
	if errors.Is(err, store.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	r, err := p.bucket.NewReader(ctx, key, info.Generation)
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", p.bucket.URI(key), err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, 0, fmt.Errorf("read %s: %w: %w", p.bucket.URI(key), ErrCorrupt, err)
	}
	if m.FormatVersion > FormatVersion {
		return nil, 0, fmt.Errorf("read %s: %w: format version %d", p.bucket.URI(key), ErrCorrupt, m.FormatVersion)
	}
	return &m, info.Generation, nil
}

// writeManifest writes the partition manifest for a run's output,
// conditional on the manifest it read (IfGeneration, or IfAbsent).
func (p *Publisher) writeManifest(ctx context.Context, rec *CommitRecord, o OutputRecord) error {
	key := PartitionPrefix(o.Table, o.Partition) + ManifestName
	prev, gen, err := p.readManifest(ctx, o.Table, o.Partition)
	if err != nil {
		return err
	}
	if prev != nil && prev.RunID == rec.RunID {
		return nil // written by an earlier attempt of this roll forward
	}
	if prev != nil && prev.CommittedAt.After(rec.CommittedAt) {
		return nil // a newer run published the partition meanwhile: never go back
	}
	m := Manifest{
		FormatVersion: FormatVersion,
		RunID:         rec.RunID,
		Table:         o.Table,
		Partition:     o.Partition,
		Mode:          o.Mode,
		Model:         rec.Model,
		CommittedAt:   rec.CommittedAt,
		Files:         []FileEntry{},
		Inputs:        []InputFile{},
	}
	if o.Mode == Append && prev != nil {
		ours := map[string]bool{}
		for _, f := range o.Files {
			ours[f.Name] = true
		}
		for _, f := range prev.Files {
			if !ours[f.Name] {
				m.Files = append(m.Files, f)
			}
		}
		m.Inputs = append(m.Inputs, prev.Inputs...)
	}
	m.Files = append(m.Files, o.Files...)
	for _, in := range rec.Inputs {
		if !slices.ContainsFunc(m.Inputs, func(x InputFile) bool { return x.Key == in.Key && x.Generation == in.Generation }) {
			m.Inputs = append(m.Inputs, in)
		}
	}
	for _, f := range m.Files {
		m.TotalRows += f.Rows
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", p.bucket.URI(key), err)
	}
	opts := store.WriteOptions{IfAbsent: gen == 0, IfGeneration: gen, ContentType: "application/json"}
	if err := store.WriteAll(ctx, p.bucket, key, data, opts); err != nil {
		if errors.Is(err, store.ErrPrecondition) {
			return fmt.Errorf("write %s: %w: manifest changed while publishing: %w", p.bucket.URI(key), ErrConflict, err)
		}
		return err
	}
	return nil
}

// deleteStale deletes the objects directly in a REPLACE partition's folder
// that its manifest (this run's files) does not list. Deeper folders and the
// _manifest.json/_SUCCESS objects are left alone.
func (p *Publisher) deleteStale(ctx context.Context, id string, o OutputRecord) error {
	prefix := PartitionPrefix(o.Table, o.Partition)
	if m, _, err := p.readManifest(ctx, o.Table, o.Partition); err != nil {
		return err
	} else if m == nil || m.RunID != id {
		return nil // another run's manifest now: its files are not ours to judge
	}
	objs, err := p.bucket.List(ctx, prefix)
	if err != nil {
		return err
	}
	keep := map[string]bool{ManifestName: true, SuccessName: true}
	for _, f := range o.Files {
		keep[f.Name] = true
	}
	for _, obj := range objs {
		name := strings.TrimPrefix(obj.Key, prefix)
		if strings.Contains(name, "/") || keep[name] {
			continue
		}
		if err := p.step(ctx, func() error { return p.deleteIfExists(ctx, obj.Key) }); err != nil {
			return err
		}
		if err := p.hook(PointAfterStaleDeleted); err != nil {
			return err
		}
	}
	return nil
}

func (p *Publisher) deleteStaging(ctx context.Context, id string) error {
	objs, err := p.bucket.List(ctx, StagingPrefix(id))
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := p.deleteIfExists(ctx, o.Key); err != nil {
			return err
		}
	}
	return nil
}

// deleteShardParts deletes the parts a shard run staged under the sharded
// run's staging.
func (p *Publisher) deleteShardParts(ctx context.Context, staging, shardRunID string) error {
	objs, err := p.bucket.List(ctx, StagingPrefix(staging))
	if err != nil {
		return err
	}
	for _, o := range objs {
		if strings.HasPrefix(path.Base(o.Key), "part-"+shardRunID+"-") {
			if err := p.deleteIfExists(ctx, o.Key); err != nil {
				return err
			}
		}
	}
	return nil
}

// DeleteStaging deletes everything staged under a run id: for a sharded
// run that is abandoned.
func (p *Publisher) DeleteStaging(ctx context.Context, runID string) error {
	if err := p.deleteStaging(ctx, runID); err != nil {
		return fmt.Errorf("delete staging of %s: %w", runID, err)
	}
	return nil
}

// RecoverReport says what Recover did.
type RecoverReport struct {
	// RolledForward: committed runs that were not done, in the order
	// they were rolled forward.
	RolledForward []string
	// StagingDeleted: runs whose staging was deleted: runs that never
	// committed, and done runs whose staging deletion was interrupted.
	StagingDeleted []string
}

// Recover rolls forward every committed run that is not done, oldest first,
// then deletes the staging of runs that never committed. The caller
// guarantees that no run of this bucket is active meanwhile: a run that is
// still staging would lose its parts. RecoverJob is the same for one job's
// runs, for callers that hold that job's lease while other jobs may run.
func (p *Publisher) Recover(ctx context.Context) (RecoverReport, error) {
	return p.RecoverJob(ctx, "")
}

// staleUnmarked is how old the staging of a run with no marker (a run that
// died inside Begin) must be before a job-scoped Recover deletes it.
const staleUnmarked = 24 * time.Hour

// RecoverJob is Recover for the runs of one job ("" = every job). Staging of
// another job's runs is left alone (they may be running).
func (p *Publisher) RecoverJob(ctx context.Context, job string) (RecoverReport, error) {
	var rep RecoverReport
	rolled, err := p.rollForwardJob(ctx, job)
	rep.RolledForward = rolled
	if err != nil {
		return rep, fmt.Errorf("recover: %w", err)
	}
	commits, err := p.listCommits(ctx)
	if err != nil {
		return rep, fmt.Errorf("recover: %w", err)
	}
	pending := map[string]bool{}
	for _, c := range commits {
		pending[c.id] = !c.done
	}
	staged, err := p.bucket.List(ctx, stagingPrefix)
	if err != nil {
		return rep, fmt.Errorf("recover: %w", err)
	}
	for _, o := range staged {
		id, _, _ := strings.Cut(strings.TrimPrefix(o.Key, stagingPrefix), "/")
		if len(rep.StagingDeleted) > 0 && rep.StagingDeleted[len(rep.StagingDeleted)-1] == id {
			continue // keys are sorted: the run's staging is already deleted
		}
		if pending[id] {
			// Committed after rollForwardPending listed (another run is
			// active, which the caller ruled out), or another job's
			// pending run: its staging is needed.
			continue
		}
		if job != "" {
			mine, err := p.stagedByJob(ctx, id, job, o)
			if err != nil {
				return rep, fmt.Errorf("recover: %w", err)
			}
			if !mine {
				continue
			}
		}
		if err := p.deleteStaging(ctx, id); err != nil {
			return rep, fmt.Errorf("recover: %w", err)
		}
		rep.StagingDeleted = append(rep.StagingDeleted, id)
	}
	return rep, nil
}

// stagedByJob reports whether staged run id belongs to job (by its marker),
// or has no marker and is old enough to be garbage whoever left it.
func (p *Publisher) stagedByJob(ctx context.Context, id, job string, first store.ObjectInfo) (bool, error) {
	data, err := store.ReadAll(ctx, p.bucket, StagingPrefix(id)+runMarkerName)
	if errors.Is(err, store.ErrNotExist) {
		return p.now().Sub(first.Updated) > staleUnmarked, nil
	}
	if err != nil {
		return false, err
	}
	var m runMarker
	if err := json.Unmarshal(data, &m); err != nil {
		return false, fmt.Errorf("read %s: %w: %w", p.bucket.URI(StagingPrefix(id)+runMarkerName), ErrCorrupt, err)
	}
	return m.Job == job, nil
}

// CommitStatus is a commit record with its roll-forward state.
type CommitStatus struct {
	CommitRecord
	// Done: the run is fully published.
	Done bool `json:"done"`
	// StoredAt: when the store recorded the commit record; commit order.
	StoredAt time.Time `json:"stored_at"`
}

// Commits returns every committed run of the bucket in commit order, for
// history and audit.
func (p *Publisher) Commits(ctx context.Context) ([]CommitStatus, error) {
	commits, err := p.listCommits(ctx)
	if err != nil {
		return nil, fmt.Errorf("list commits: %w", err)
	}
	out := make([]CommitStatus, 0, len(commits))
	for _, c := range commits {
		rec, err := p.readCommit(ctx, c.id)
		if err != nil {
			return nil, fmt.Errorf("list commits: %w", err)
		}
		out = append(out, CommitStatus{CommitRecord: *rec, Done: c.done, StoredAt: c.updated})
	}
	return out, nil
}

// Consumed is the ledger of a job: every input file that a committed run of
// the job consumed, by key. Where runs consumed several generations of a
// key, the latest commit's entry wins. Committed runs count whether or not
// they are rolled forward yet (they will be); uncommitted runs never count.
// The caller skips an input whose key and generation are in the map.
func (p *Publisher) Consumed(ctx context.Context, job string) (map[string]InputFile, error) {
	commits, err := p.Commits(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", job, err)
	}
	out := map[string]InputFile{}
	for _, c := range commits {
		if c.Job != job {
			continue
		}
		for _, in := range c.Inputs {
			out[in.Key] = in
		}
	}
	return out, nil
}

// Manifest returns a partition's manifest, or an error wrapping
// store.ErrNotExist if it has none.
func (p *Publisher) Manifest(ctx context.Context, table, partition string) (*Manifest, error) {
	m, _, err := p.readManifest(ctx, table, partition)
	if err != nil {
		return nil, fmt.Errorf("manifest %s/%s: %w", table, partition, err)
	}
	if m == nil {
		return nil, fmt.Errorf("manifest %s: %w", p.bucket.URI(PartitionPrefix(table, partition)+ManifestName), store.ErrNotExist)
	}
	return m, nil
}
