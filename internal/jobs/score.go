package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/failpoint"
	"github.com/adtech/scorer/internal/lease"
	"github.com/adtech/scorer/internal/mempool"
	"github.com/adtech/scorer/internal/runlog"
	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/writers"
	"github.com/adtech/scorer/writers/table"
)

// JobQueue is the queue job's name: its lease and its ledger (the commit
// records that list which queued files were consumed).
const JobQueue = "queue"

// BackfillJob names the backfill of one month: months are backfilled
// independently, each under its own lease.
func BackfillJob(month string) string { return "backfill.month=" + month }

// Progress receives a run's progress: total input bytes at the start, then
// bytes read and rows scored so far. Called from one goroutine.
type Progress interface {
	Start(totalBytes int64)
	Update(bytesRead, rows int64)
	Finish()
}

// ScoreJob describes one scoring run: which inputs, which model, which
// output partition.
type ScoreJob struct {
	Job    string // BackfillJob(month) or JobQueue: names the lease and the ledger
	Input  store.Bucket
	Output store.Bucket
	Bundle *bundle.Bundle
	// Dir is the input folder, e.g. "dumps/2020-09" or "queue".
	Dir       string
	Table     string
	Partition string // e.g. "month=2020-09", "date=2020-09-02"
	Mode      table.Mode
	IDColumns []string
	// LabelColumns are copied, as float64, from each input row to its
	// output rows: null where the value is missing or the file has no such
	// column (queued requests have no label yet; dumps do).
	LabelColumns []string
	// Challengers are scored beside Bundle, on the same rows, into
	// ChallengersTable(Table); Bundle's scores stay in Table.
	Challengers []*bundle.Bundle
	// SkipConsumed leaves out the input files that a committed run of the
	// same Job consumed (same key and generation): the queue's exactly-once.
	SkipConsumed bool
	// RequireRows makes an empty input (no file, or no row) an error, as
	// for a month; otherwise an empty queue is "nothing to do".
	RequireRows bool
	// Shard, if set, makes the run one shard of a sharded backfill: see
	// shard.go. Job must then name one partition (it names the plan).
	Shard *Shard
	// ShardPlan names the sharded run the shard belongs to (e.g. the
	// Kubernetes Job's name), so that a shard retried after its month was
	// published knows it and does nothing. Empty: the first shard names it.
	ShardPlan string

	guard *leaseGuard // the lease a roll forward checks; set by Score
	// noProfile leaves out the profiles and drift (BenchmarkEndToEnd
	// measures their cost with it).
	noProfile bool
	// listed are the keys under Dir when the run listed its inputs (with
	// SkipConsumed): a checkpoint drops the job's ledger entries of keys
	// no longer there (retention moved them), which no run will list again.
	listed map[string]bool

	Workers, BatchSize, ReadConcurrency int
	CSV                                 readers.CSVOptions
	BadRows                             BadRowLimit
	// Duplicates says what to do with a row whose ids were seen before, in
	// the run or published in SeenPartitions of Table (the window).
	// Anything but DupKeepAll reads the input files one at a time, in key
	// order, so that which row of an id is "first" does not depend on
	// timing.
	Duplicates     Duplicates
	SeenPartitions []string
	// Mem allocates the record batches read, scored and written (default:
	// a process-wide mempool.Allocator, which reuses freed buffers).
	Mem memory.Allocator
	// RawMaxBytes bounds the raw text of a bad row kept in the rejects
	// table (its raw column); 0 keeps none.
	RawMaxBytes            int
	RowGroupRows, PartRows int64

	// MaxAbsLogit, if > 0, fails the run (as a model error) on a logit of
	// larger magnitude; logits that are not finite fail it always.
	MaxAbsLogit float64

	// Drift says when the inputs' drift from the training profile warns
	// or fails the run (the profiles and drift tables are written always).
	Drift DriftPolicy

	// Images say how the images of image features are read.
	Images ImageOptions

	// LeaseTTL is how long the job's lease lives without renewal (default
	// 60 s): a run that stalls longer loses the lease and cannot commit.
	LeaseTTL time.Duration
	// CheckpointEvery: after its commit, a run checkpoints the commit log
	// once this many commits can be covered (default
	// table.DefaultCheckpointEvery).
	CheckpointEvery int

	RunID    string // default: a new one
	Now      func() time.Time
	Progress Progress // may be nil
	Log      *slog.Logger
}

// Summary is what a run did.
type Summary struct {
	RunID        string
	Job          string
	Table        string
	Partition    string
	ModelName    string
	ModelVersion string
	// Challengers are the models scored beside the champion.
	Challengers  []table.Model
	InputFiles   []string
	InputBytes   int64
	RowsRead     int64 // good rows read (and scored)
	RowsRejected int64 // bad rows (duplicates not included)
	// Duplicates counts the rows whose ids were seen before; DupsTo says
	// where they went ("rejects" or "dropped").
	Duplicates int64
	DupsTo     string
	// EmptyFiles are the input files that held no row (scored as nothing).
	EmptyFiles  []string
	OutputFiles []string // published, relative to the output store
	OutputBytes int64    // bytes of the published files
	Started     time.Time
	Duration    time.Duration
	// NothingToDo: no input was waiting (an empty queue); nothing written.
	NothingToDo bool
	// Recovered: earlier runs that this run rolled forward first.
	Recovered []string
	// Scores counts the scores written, for the run's report.
	Scores runlog.ScoreHistogram
	// Profile is the profile of the rows scored (features and scores);
	// Drift each feature's drift from the training profile and the
	// previous partition, DriftStatus the worst feature's status.
	Profile     *features.Profile
	Drift       []FeatureDrift
	DriftStatus string
	// ReportURI is the run's HTML report, once the caller wrote it.
	ReportURI string
	// Images counts the champion's image cache hits and misses and its
	// bad images; nil for a model without image features.
	Images *scoring.ImageStats
}

// RowsIn is every row the run read: scored, rejected as bad, or a duplicate.
func (s *Summary) RowsIn() int64 { return s.RowsRead + s.RowsRejected + s.Duplicates }

// recordMem is the shared allocator of the record batches a scoring run
// reads, scores and writes: freed batches' buffers are reused by the next
// ones (package mempool), in this run and the next runs of the process.
var recordMem = mempool.New()

// recordMem is the allocator of the job's record batches: Mem, or the
// process's pooled one.
func (j *ScoreJob) recordMem() memory.Allocator {
	if j.Mem != nil {
		return j.Mem
	}
	return recordMem
}

// RejectsTable is the table that holds the bad rows of table.
func RejectsTable(table string) string { return table + "_rejects" }

// Score runs a scoring job: take the job's lease, recover the job's earlier
// runs, pick the inputs, read, compute features, score, stage the output,
// commit. It publishes complete output or nothing. A job with a Shard set is
// one shard of a sharded backfill (see scoreShard).
func Score(ctx context.Context, j ScoreJob) (*Summary, error) {
	if j.Now == nil {
		j.Now = time.Now
	}
	if j.Log == nil {
		j.Log = slog.New(slog.DiscardHandler)
	}
	start := j.Now().UTC()
	if j.RunID == "" {
		j.RunID = table.NewRunID(start)
	}
	sum := &Summary{
		RunID: j.RunID, Job: j.Job, Table: j.Table, Partition: j.Partition,
		ModelName: j.Bundle.Name, ModelVersion: j.Bundle.Version, Started: start,
	}
	for _, c := range j.Challengers {
		sum.Challengers = append(sum.Challengers, table.Model{Name: c.Name, Version: c.Version})
	}
	defer func() { sum.Duration = j.Now().Sub(start) }()

	fx, err := features.NewPipeline(j.Bundle.Features, j.Bundle.Stats)
	if err != nil {
		return sum, fmt.Errorf("%w: model %s %s: %w", ErrConfig, j.Bundle.Name, j.Bundle.Version, err)
	}
	if err := j.Drift.Check(&j.Bundle.Features); err != nil {
		return sum, fmt.Errorf("%w: model %s %s: %w", ErrConfig, j.Bundle.Name, j.Bundle.Version, err)
	}
	j.guard = &leaseGuard{}
	pub, err := table.NewPublisher(j.Output, table.Options{
		RowGroupRows: j.RowGroupRows, PartRows: j.PartRows, Now: j.Now,
		Guard:     j.guard.check,
		Failpoint: func(point string) error { failpoint.Hit("publish." + point); return nil },
	})
	if err != nil {
		return sum, err
	}
	if j.Shard != nil {
		return sum, j.scoreShard(ctx, pub, fx, sum)
	}
	return sum, j.scoreAll(ctx, pub, fx, sum)
}

// scoreAll is an unsharded run: the whole job under the job's lease.
func (j *ScoreJob) scoreAll(ctx context.Context, pub *table.Publisher, fx *features.Pipeline, sum *Summary) error {
	h, ctx, err := j.hold(ctx, pub, j.Job, false)
	if err != nil {
		return err
	}
	defer h.release(ctx)
	if err := j.refuseOtherShardCount(ctx, pub, 1); err != nil {
		return h.explain(err)
	}
	// Finish (or clean up after) this job's earlier runs that crashed, so
	// that the ledger below is complete.
	if err := j.recover(ctx, pub, sum); err != nil {
		return h.explain(err)
	}
	files, err := j.pickInputs(ctx, pub)
	if err != nil {
		return h.explain(err)
	}
	if len(files) == 0 {
		if j.RequireRows {
			return fmt.Errorf("%w: no input files under %s", ErrBadInput, j.Input.URI(j.Dir+"/"))
		}
		sum.NothingToDo = true
		j.Log.Info("nothing to score", "dir", j.Input.URI(j.Dir+"/"))
		return nil
	}
	run, err := j.stage(ctx, pub, fx, table.RunSpec{
		RunID: j.RunID, Job: j.Job,
		Model: table.Model{Name: j.Bundle.Name, Version: j.Bundle.Version},
		Fence: h.fence(state.CommitKey(j.RunID)),
	}, files, sum)
	if err != nil {
		return h.explain(err)
	}
	failpoint.Hit("before-commit")
	rec, err := run.Commit(ctx)
	if rec != nil {
		h.committed = true // from here on the run is rolled forward, never discarded
	}
	if err != nil {
		if rec == nil {
			// Not committed: discard the staged parts (Abort keeps them if
			// the commit was fenced, for the next holder to publish).
			if aerr := run.Abort(context.WithoutCancel(ctx)); aerr != nil && !errors.Is(aerr, table.ErrCommitted) {
				j.Log.Warn("discard staged output", "run_id", j.RunID, "err", aerr)
			}
		}
		return h.explain(err)
	}
	sum.addOutputs(rec)
	j.checkpoint(ctx, pub)
	return nil
}

// checkpoint writes the commit log's next checkpoint when one is due
// (table.Publisher.Checkpoint). Failing costs only speed, the next run
// tries again: it is logged, not returned.
func (j *ScoreJob) checkpoint(ctx context.Context, pub *table.Publisher) {
	var drop func(string, table.InputFile) bool
	if j.listed != nil {
		drop = func(job string, in table.InputFile) bool { return job == j.Job && !j.listed[in.Key] }
	}
	rep, err := pub.Checkpoint(ctx, j.CheckpointEvery, drop)
	if err != nil {
		j.Log.Warn("checkpoint the commit log (the next run tries again)", "err", err)
		return
	}
	if rep.Written > 0 || rep.Archived > 0 {
		j.Log.Info("checkpointed the commit log", "checkpoint", rep.Written, "archived_commits", rep.Archived)
	}
}

func (s *Summary) addOutputs(rec *table.CommitRecord) {
	for _, o := range rec.Outputs {
		for _, f := range o.Files {
			s.OutputFiles = append(s.OutputFiles, path.Join(o.Table, o.Partition, f.Name))
			s.OutputBytes += f.Bytes
		}
	}
}

// recover rolls forward this job's committed runs and deletes the staging
// of its runs that never committed.
func (j *ScoreJob) recover(ctx context.Context, pub *table.Publisher, sum *Summary) error {
	rep, err := pub.RecoverJob(ctx, j.Job)
	if err != nil {
		return err
	}
	sum.Recovered = append(sum.Recovered, rep.RolledForward...)
	if len(rep.RolledForward) > 0 || len(rep.StagingDeleted) > 0 {
		j.Log.Warn("recovered earlier runs", "job", j.Job, "rolled_forward", rep.RolledForward, "staging_deleted", rep.StagingDeleted)
	}
	return nil
}

// leaseGuard lets the publisher check, before each change it makes to the
// tables, that the lease the run holds is still its own (table.Options.Guard).
type leaseGuard struct {
	mu  sync.Mutex
	lse *lease.Lease
}

func (g *leaseGuard) set(l *lease.Lease) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lse = l
}

func (g *leaseGuard) check(ctx context.Context) error {
	g.mu.Lock()
	l := g.lse
	g.mu.Unlock()
	if l == nil {
		return errors.New("publish without a lease")
	}
	return l.Check(ctx)
}

// held is a lease held for the length of a run.
type held struct {
	j         *ScoreJob
	lse       *lease.Lease
	name      string
	ctx       context.Context //nolint:containedctx // the run's context: cancelled with ErrLost as cause when the lease is lost, which explain reports
	cancel    context.CancelCauseFunc
	committed bool
}

// hold takes the lease name (waiting for it up to twice the TTL if wait),
// writes what a previous holder fenced, and keeps renewing it; the returned
// context is cancelled if the lease is lost.
func (j *ScoreJob) hold(ctx context.Context, pub *table.Publisher, name string, wait bool) (*held, context.Context, error) {
	deadline := j.Now().Add(2 * max(j.LeaseTTL, time.Minute))
	var lse *lease.Lease
	for {
		var err error
		lse, err = lease.Acquire(ctx, j.Output, name, j.RunID, lease.Options{TTL: j.LeaseTTL, Now: j.Now})
		if err == nil {
			break
		}
		if !wait || !errors.Is(err, lease.ErrHeld) || j.Now().After(deadline) {
			return nil, ctx, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	h := &held{j: j, lse: lse, name: name}
	if j.guard != nil {
		j.guard.set(lse)
	}
	h.ctx, h.cancel = context.WithCancelCause(ctx)
	go lse.Keep(h.ctx, func(err error) {
		j.Log.Error("lease lost: stopping the run", "lease", name, "err", err)
		h.cancel(err)
	})
	if key, data := lse.Inherited(); data != nil {
		// The previous holder fenced a commit and died: make it durable.
		if err := store.CreateOrSame(h.ctx, j.Output, key, data); err != nil {
			h.release(ctx)
			return nil, ctx, fmt.Errorf("write the commit fenced by the previous holder of %s: %w", name, err)
		}
		if err := lse.ClearPending(h.ctx); err != nil { // written: no later holder needs it
			h.release(ctx)
			return nil, ctx, err
		}
	}
	return h, h.ctx, nil
}

func (h *held) fence(key string) func(context.Context, []byte) error {
	return func(ctx context.Context, data []byte) error { return h.lse.Fence(ctx, key, data) }
}

// release stops renewing and gives the lease up.
func (h *held) release(ctx context.Context) {
	if h.j.guard != nil {
		h.j.guard.set(nil)
	}
	h.cancel(nil)
	if err := h.lse.Release(context.WithoutCancel(ctx), h.committed); err != nil {
		h.j.Log.Warn("release lease", "lease", h.name, "err", err)
	}
}

// explain says that a run stopped because its lease was lost, rather than
// "context canceled".
func (h *held) explain(err error) error {
	if cause := context.Cause(h.ctx); err != nil && errors.Is(cause, lease.ErrLost) && !errors.Is(err, lease.ErrLost) {
		return fmt.Errorf("%w (%w)", cause, err)
	}
	return err
}

// stage begins a run, scores files into its outputs and checks the bad-row
// limit; the caller commits (or seals) the returned run. On error the run
// is aborted.
func (j *ScoreJob) stage(ctx context.Context, pub *table.Publisher, fx *features.Pipeline, spec table.RunSpec, files []store.ObjectInfo, sum *Summary) (_ *table.Run, err error) {
	var total int64
	for _, f := range files {
		sum.InputFiles = append(sum.InputFiles, f.Key)
		total += f.Size
	}
	j.Log.Info("scoring", "run_id", spec.RunID, "files", len(files), "bytes", total,
		"model", j.Bundle.Name, "model_version", j.Bundle.Version, "table", j.Table, "partition", j.Partition)

	run, err := pub.Begin(ctx, spec)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if aerr := run.Abort(context.WithoutCancel(ctx)); aerr != nil && !errors.Is(aerr, table.ErrCommitted) {
				j.Log.Warn("discard staged output", "run_id", spec.RunID, "err", aerr)
			}
		}
	}()

	schema, err := j.inputSchema()
	if err != nil {
		return nil, err
	}
	chs, err := j.challengers(fx)
	if err != nil {
		return nil, err
	}
	mainImages, imageStages, err := j.imageStages(ctx, chs)
	if err != nil {
		return nil, err
	}
	constants := []writers.Constant{{Name: "scored_at", Value: sum.Started}, {Name: "run_id", Value: j.RunID}}
	split := &splitSink{models: j.Challengers, scoreSchema: scoreSchema(j.IDColumns, j.LabelColumns), mem: j.recordMem()}
	defer split.release()
	if split.scores, err = run.Output(table.OutputSpec{
		Table: j.Table, Partition: j.Partition, Mode: j.Mode, Schema: split.scoreSchema, Plain: j.IDColumns,
		Constants: append([]writers.Constant{
			{Name: "model_name", Value: j.Bundle.Name},
			{Name: "model_version", Value: j.Bundle.Version},
		}, constants...),
	}); err != nil {
		return nil, err
	}
	// A replaced partition's challenger scores are replaced too, even by
	// none: they would otherwise outlive the champion scores they were
	// made beside.
	chTable := ChallengersTable(j.Table)
	if len(chs) == 0 && j.Mode == table.Replace {
		if _, err := pub.Manifest(ctx, chTable, j.Partition); err == nil {
			chs = []scoring.Challenger{} // open the output below, write nothing
		} else if !errors.Is(err, store.ErrNotExist) {
			return nil, err
		}
	}
	if chs != nil {
		split.chSchema = challengersSchema(j.IDColumns, j.LabelColumns)
		if split.challengers, err = run.Output(table.OutputSpec{
			Table: chTable, Partition: j.Partition, Mode: j.Mode, Schema: split.chSchema, Constants: constants, Plain: j.IDColumns,
		}); err != nil {
			return nil, err
		}
	}
	rej := &rejects{
		run: run, table: RejectsTable(j.Table), partition: j.Partition, mode: j.Mode, runID: j.RunID, at: sum.Started,
		schema: rejectsSchema(j.IDColumns),
	}
	if j.Mode == table.Replace {
		// A replaced partition's rejects are replaced too, even by none.
		if err := rej.open(); err != nil {
			return nil, err
		}
	}
	prof := &profiler{fx: fx, ref: j.Bundle.Profile, ids: j.IDColumns}
	br := &badRows{limit: j.BadRows, reject: func(e readers.RowError) error {
		prof.reject(e)
		return rej.add(ctx, e)
	}}
	var dd *dedupe
	var admit func([]string) string
	concurrency := j.ReadConcurrency
	if j.Duplicates != "" && j.Duplicates != DupKeepAll {
		if dd, err = j.loadSeen(ctx, pub); err != nil {
			return nil, err
		}
		admit, concurrency = dd.admit, 1
		br.dups = &dd.n
		br.dup = func(e readers.RowError) error {
			if j.Duplicates == DupReject {
				return rej.add(ctx, e)
			}
			return nil
		}
	}

	var checks []readers.StringCheck
	if mainImages != nil && j.Images.OnBadImage == scoring.BadImageReject {
		// A row with a bad image is a bad row, found as it is read.
		for _, in := range j.Bundle.Features.ImageInputs() {
			checks = append(checks, readers.StringCheck{Column: in.Column, Check: mainImages.Check})
		}
	}
	src, err := readers.Open(ctx, j.Input, files, readers.Options{
		Checks:      checks,
		Schema:      schema,
		Mem:         j.recordMem(),
		Ranges:      j.inputRanges(),
		Optional:    j.LabelColumns,
		BatchSize:   j.BatchSize,
		Concurrency: concurrency,
		Admit:       admit,
		CSV:         j.CSV,
		OnBadRow:    br.onBadRow,
		IDColumns:   j.IDColumns,
		RawMaxBytes: cmp.Or(j.RawMaxBytes, -1),
	})
	if err != nil {
		return nil, err
	}
	defer func() { _ = src.Close() }() // Reader.Close only stops the decoders; errors came through Read

	if j.Progress != nil {
		j.Progress.Start(total)
		defer j.Progress.Finish()
	}
	profile := prof.worker
	if j.noProfile {
		profile = nil
	}
	sink := &progressSink{next: split, src: src, progress: j.Progress, hist: &sum.Scores}
	if _, err := scoring.Run(ctx, src, j.Bundle, fx, sink, scoring.PoolOptions{
		Workers: j.Workers, BatchSize: j.BatchSize, IDColumns: j.IDColumns, PassColumns: j.LabelColumns,
		Challengers: chs, MaxAbsLogit: j.MaxAbsLogit, Mem: j.recordMem(), Profile: profile, Images: mainImages,
	}); err != nil {
		// A refused logit is the model's fault (exit 2) unless the row's
		// inputs were not finite (bad input, exit 3).
		var le *scoring.LogitError
		switch {
		case errors.As(err, &le) && le.Input, errors.Is(err, scoring.ErrInput):
			return nil, fmt.Errorf("%w: score %s: %w", ErrBadInput, j.Partition, err)
		case errors.Is(err, scoring.ErrModel), errors.Is(err, bundle.ErrInvalid):
			return nil, fmt.Errorf("%w: model %s %s: score %s: %w", ErrConfig, j.Bundle.Name, j.Bundle.Version, j.Partition, err)
		}
		return nil, fmt.Errorf("score %s: %w", j.Partition, err)
	}

	var inputs []table.InputFile
	for _, f := range src.Files() {
		sum.RowsRead += f.Rows
		sum.RowsRejected += f.BadRows
		sum.InputBytes += f.Size
		if f.Rows == 0 && f.BadRows == 0 {
			sum.EmptyFiles = append(sum.EmptyFiles, f.Key)
			j.Log.Warn("input file has no rows", "file", j.Input.URI(f.Key))
		}
		inputs = append(inputs, table.InputFile{Key: f.Key, Generation: f.Generation, Size: f.Size, CRC32C: f.CRC32C, Rows: f.Rows})
	}
	if dd != nil {
		sum.Duplicates, sum.DupsTo = dd.n.Load(), "dropped"
		if j.Duplicates == DupReject {
			sum.DupsTo = "rejects"
		}
		sum.RowsRejected -= sum.Duplicates
		if sum.Duplicates > 0 {
			j.Log.Warn("duplicate request ids", "rows", sum.Duplicates, "to", sum.DupsTo)
		}
	}
	if j.RequireRows && sum.RowsRead == 0 {
		return nil, fmt.Errorf("%w: no rows in %d input files under %s (%d bad rows)", ErrBadInput, len(files), j.Input.URI(j.Dir+"/"), sum.RowsRejected)
	}
	if j.BadRows.Exceeded(sum.RowsRejected, sum.RowsRead+sum.RowsRejected, true) {
		return nil, fmt.Errorf("%w: %d of %d rows are bad, more than max_bad_rows %s; see the log for the first ones",
			ErrBadInput, sum.RowsRejected, sum.RowsRead+sum.RowsRejected, j.BadRows)
	}
	if mainImages != nil {
		st := mainImages.Stats()
		sum.Images = &st
		j.Log.Info("images", "cache_hits", st.Hits, "cache_misses", st.Misses, "hit_rate", st.HitRate(), "bad", st.Bad, "bad_by_reason", st.BadByReason)
	}
	if err := j.writeEmbeddings(ctx, run, imageStages); err != nil {
		return nil, err
	}
	if !j.noProfile {
		if err := j.judgeDrift(ctx, run, prof, sum); err != nil {
			return nil, err
		}
	}
	if err := rej.flush(ctx); err != nil {
		return nil, err
	}
	run.AddInputs(inputs...)
	return run, nil
}

// judgeDrift profiles the run, measures its drift against the training
// profile and the previous partition, and stages the profiles and drift
// tables; a drift beyond drift.fail_above fails the run (ErrDrift).
func (j *ScoreJob) judgeDrift(ctx context.Context, run *table.Run, prof *profiler, sum *Summary) error {
	p, err := prof.profile()
	if err != nil {
		return fmt.Errorf("profile %s: %w", j.Partition, err)
	}
	// The previous partition's profile is a comparison, not an input: one
	// that cannot be read (damaged, or written by another version of the
	// format) is logged and left out.
	var prev *features.Profile
	prevPart := ""
	pp, err := PreviousProfile(ctx, j.Output, j.Table, j.Partition)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		j.Log.Warn("read the previous partition's profile (drift against it left out)", "err", err)
	case pp != nil:
		prev, prevPart = pp.Profile, pp.Partition
	}
	if j.Bundle.Profile == nil {
		j.Log.Info("the model has no training profile: drift is measured against the previous partition only", "model", j.Bundle.Name, "model_version", j.Bundle.Version)
	}
	sum.Profile = p
	sum.Drift, sum.DriftStatus = j.Drift.judge(p, j.Bundle.Profile, prev, prevPart)
	for _, d := range sum.Drift {
		if d.Status != DriftOK {
			j.Log.Warn("input drift", "feature", d.Feature, "psi", d.PSI, "js", d.JS, "warn_above", d.WarnAbove, "fail_above", d.FailAbove, "status", d.Status,
				"missing_rate", d.MissingRate, "train_missing_rate", d.TrainMissingRate)
		}
	}
	if sum.DriftStatus == DriftFail {
		return driftError(sum.Drift, j.Partition)
	}
	return j.writeProfiles(ctx, run, p, sum.Drift, sum.Started)
}

// pickInputs lists the job's input files, leaving out those already
// consumed when the job asks for it.
func (j *ScoreJob) pickInputs(ctx context.Context, pub *table.Publisher) ([]store.ObjectInfo, error) {
	files, skipped, err := ListInputs(ctx, j.Input, j.Dir)
	if err != nil {
		return nil, err
	}
	for _, k := range skipped {
		j.Log.Debug("skipping file of unknown format", "key", k)
	}
	if !j.SkipConsumed {
		return files, nil
	}
	j.listed = make(map[string]bool, len(files)+len(skipped))
	for _, f := range files {
		j.listed[f.Key] = true
	}
	for _, k := range skipped {
		j.listed[k] = true
	}
	consumed, err := pub.Consumed(ctx, j.Job)
	if err != nil {
		return nil, fmt.Errorf("read the ledger: %w", err)
	}
	var todo []store.ObjectInfo
	for _, f := range files {
		if c, ok := consumed[f.Key]; ok && c.Generation == f.Generation {
			continue
		}
		todo = append(todo, f)
	}
	if n := len(files) - len(todo); n > 0 {
		j.Log.Info("skipping files already scored", "files", n)
	}
	return todo, nil
}

// progressSink forwards scored records, reports progress and counts the
// scores in the run's histogram.
type progressSink struct {
	next     scoring.Sink
	src      *readers.Reader
	progress Progress
	rows     int64
	hist     *runlog.ScoreHistogram
}

func (s *progressSink) Write(ctx context.Context, rec arrow.RecordBatch) error {
	if err := s.next.Write(ctx, rec); err != nil {
		return err
	}
	s.rows += rec.NumRows()
	if i := rec.Schema().FieldIndices(scoring.ScoreColumn); len(i) == 1 {
		if col, ok := rec.Column(i[0]).(*array.Float32); ok {
			s.hist.Add(col.Float32Values())
		}
	}
	if s.progress != nil {
		s.progress.Update(s.src.BytesRead(), s.rows)
	}
	failpoint.Hit("score.batch")
	return nil
}

// rejects buffers tolerated bad rows and writes them to the rejects table.
type rejects struct {
	run              *table.Run
	table, partition string
	mode             table.Mode
	runID            string
	at               time.Time
	schema           *arrow.Schema // rejectsSchema of the job's id columns

	mu  sync.Mutex
	out *table.Writer
	b   *array.RecordBuilder
}

// rejectsFixed are the rejects table's columns before the id columns;
// raw comes after them, and the table's writer adds run_id and
// rejected_at.
var rejectsFixed = []arrow.Field{
	{Name: "file", Type: arrow.BinaryTypes.String},
	{Name: "row", Type: arrow.PrimitiveTypes.Int64},
	{Name: "line", Type: arrow.PrimitiveTypes.Int64},
	{Name: "column", Type: arrow.BinaryTypes.String},
	{Name: "value", Type: arrow.BinaryTypes.String},
	{Name: "reason", Type: arrow.BinaryTypes.String},
}

// RejectsColumn reports whether name is a column of every rejects table,
// which an id column must not be named.
func RejectsColumn(name string) bool {
	switch name {
	case "raw", "run_id", "rejected_at":
		return true
	}
	return slices.ContainsFunc(rejectsFixed, func(f arrow.Field) bool { return f.Name == name })
}

// rejectsSchema is the rejects table's schema for a job's id columns: each
// id is null where the bad row's ids could not be read, raw is null where
// no text was kept.
func rejectsSchema(ids []string) *arrow.Schema {
	fields := slices.Clone(rejectsFixed)
	for _, id := range ids {
		fields = append(fields, arrow.Field{Name: id, Type: arrow.BinaryTypes.String, Nullable: true})
	}
	fields = append(fields, arrow.Field{Name: "raw", Type: arrow.BinaryTypes.String, Nullable: true})
	return arrow.NewSchema(fields, nil)
}

const rejectsFlushRows = 4096

func (r *rejects) open() error {
	if r.out != nil {
		return nil
	}
	out, err := r.run.Output(table.OutputSpec{
		Table: r.table, Partition: r.partition, Mode: r.mode, Schema: r.schema,
		Constants: []writers.Constant{{Name: "run_id", Value: r.runID}, {Name: "rejected_at", Value: r.at}},
	})
	if err != nil {
		return err
	}
	r.out = out
	return nil
}

func (r *rejects) add(ctx context.Context, e readers.RowError) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.open(); err != nil {
		return err
	}
	if r.b == nil {
		r.b = array.NewRecordBuilder(memory.DefaultAllocator, r.schema)
	}
	r.b.Field(0).(*array.StringBuilder).Append(e.File)
	r.b.Field(1).(*array.Int64Builder).Append(e.Row)
	r.b.Field(2).(*array.Int64Builder).Append(e.Line)
	r.b.Field(3).(*array.StringBuilder).Append(e.Column)
	r.b.Field(4).(*array.StringBuilder).Append(e.Value)
	r.b.Field(5).(*array.StringBuilder).Append(e.Reason)
	nids := r.schema.NumFields() - len(rejectsFixed) - 1
	ids := e.IDs()
	for k := range nids {
		f := r.b.Field(len(rejectsFixed) + k).(*array.StringBuilder)
		if ids == nil {
			f.AppendNull()
		} else {
			f.Append(ids[k])
		}
	}
	raw := r.b.Field(r.schema.NumFields() - 1).(*array.StringBuilder)
	if e.Raw == "" {
		raw.AppendNull()
	} else {
		raw.Append(e.Raw)
	}
	if r.b.Field(0).Len() >= rejectsFlushRows {
		return r.flushLocked(ctx)
	}
	return nil
}

// flush writes what is buffered at the end of the input and frees the
// buffer.
func (r *rejects) flush(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.flushLocked(ctx)
	if r.b != nil {
		r.b.Release()
		r.b = nil
	}
	return err
}

func (r *rejects) flushLocked(ctx context.Context) error {
	if r.b == nil || r.b.Field(0).Len() == 0 {
		return nil
	}
	rec := r.b.NewRecordBatch()
	defer rec.Release()
	return r.out.Write(ctx, rec)
}
