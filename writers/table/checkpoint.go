package table

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
)

// Checkpoints of the commit log (the way Delta Lake checkpoints its log):
// a snapshot of the ledger up to a point of the commit order, so that
// reading the ledger costs the commits since the last checkpoint, not every
// commit ever made.
//
// A checkpoint covers a prefix of the commit order made only of done runs
// (a pending run stops the prefix: it is rolled forward from its record),
// stored at least CheckpointLag ago (so that no commit can still appear
// inside the prefix). It is written create-if-absent under the next
// sequence number; then the commit records and done markers it covers are
// moved to _scorer/archive/commits/ (copied, then deleted: the record
// first, its done marker second), which keeps _scorer/commits/ to the
// commits since the checkpoint. A crash anywhere leaves a state the next
// Checkpoint finishes (it first archives whatever the latest checkpoint
// covers) and readers handle:
//
//   - readers list _scorer/commits/ first and read the latest checkpoint
//     second: a record they listed and that was archived meanwhile is
//     either covered by the checkpoint they read (and skipped), or read
//     from the archive;
//   - a record is deleted before its done marker, so a listing never shows a
//     done run as pending.

// CheckpointLag is how long ago a commit must have been stored for a
// checkpoint to cover it.
const CheckpointLag = 5 * time.Minute

// DefaultCheckpointEvery is the number of coverable commits since the
// latest checkpoint that makes Checkpoint write the next one.
const DefaultCheckpointEvery = 100

// checkpointsKept is how many checkpoints Checkpoint keeps (the newest);
// older ones are deleted. A reader picks the newest it lists; two kept
// leave it a whole checkpoint interval to read it.
const checkpointsKept = 2

// Checkpoint points of Options.Failpoint.
const (
	PointAfterCheckpoint    = "after-checkpoint"     // the checkpoint is written, nothing archived
	PointAfterArchiveCopy   = "after-archive-copy"   // each commit log object copied to the archive
	PointAfterArchiveDelete = "after-archive-delete" // each commit log object deleted from the log
)

// CheckpointRecord is a checkpoint of the commit log.
type CheckpointRecord struct {
	FormatVersion int   `json:"format_version"`
	Seq           int64 `json:"seq"`
	// Through is the last commit covered, in commit order: every commit
	// ordered at or before it is covered, none after.
	Through CommitPosition `json:"through"`
	// Commits counts the commits covered, this one's and every earlier
	// checkpoint's.
	Commits int64 `json:"commits"`
	// Ledger is every job's consumed inputs, by key (Consumed).
	Ledger    map[string]map[string]InputFile `json:"ledger"`
	CreatedAt time.Time                       `json:"created_at"`
}

// CommitPosition is a place in the commit order: the time the store
// recorded a commit record, then its run id.
type CommitPosition struct {
	StoredAt time.Time `json:"stored_at"`
	RunID    string    `json:"run_id"`
}

func (c CommitPosition) compare(d CommitPosition) int {
	return cmp.Or(c.StoredAt.Compare(d.StoredAt), cmp.Compare(c.RunID, d.RunID))
}

func (c commitInfo) position() CommitPosition {
	return CommitPosition{StoredAt: c.updated, RunID: c.id}
}

// covers reports whether the checkpoint covers a commit.
func (cp *CheckpointRecord) covers(c commitInfo) bool {
	return cp != nil && c.position().compare(cp.Through) <= 0
}

// latestCheckpoint reads the newest checkpoint; nil if there is none.
func (p *Publisher) latestCheckpoint(ctx context.Context) (*CheckpointRecord, error) {
	objs, err := p.bucket.List(ctx, state.CheckpointsPrefix)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	var keys []string
	for _, o := range objs {
		if _, ok := state.CheckpointSeq(o.Key); ok {
			keys = append(keys, o.Key)
		}
	}
	// Newest first; one deleted since the listing (it had two newer ones)
	// sends us to the next.
	for i := len(keys) - 1; i >= 0; i-- {
		data, err := state.Read(ctx, p.bucket, keys[i])
		if errors.Is(err, store.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var cp CheckpointRecord
		if _, err := state.DecodeVersioned(data, &cp, FormatVersion); err != nil {
			return nil, fmt.Errorf("read %s: %w: %w", p.bucket.URI(keys[i]), ErrCorrupt, err)
		}
		return &cp, nil
	}
	return nil, nil
}

// ledger is the ledger as the latest checkpoint and the commits after it
// give it: the commits listed, the checkpoint, and the records of the
// commits it does not cover (job == "" for every job's; otherwise only
// that job's commits' records are needed, but every uncovered record is
// read to learn its job).
func (p *Publisher) ledger(ctx context.Context, job string) (map[string]map[string]InputFile, error) {
	commits, err := p.listCommits(ctx) // before the checkpoint: see the type's doc
	if err != nil {
		return nil, err
	}
	cp, err := p.latestCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]InputFile{}
	if cp != nil {
		for j, files := range cp.Ledger {
			if job == "" || j == job {
				out[j] = maps.Clone(files)
			}
		}
	}
	for _, c := range commits {
		if cp.covers(c) {
			continue
		}
		rec, err := p.readCommitAnywhere(ctx, c.id)
		if err != nil {
			return nil, err
		}
		if job != "" && rec.Job != job {
			continue
		}
		applyInputs(out, rec)
	}
	return out, nil
}

func applyInputs(ledger map[string]map[string]InputFile, rec *CommitRecord) {
	if len(rec.Inputs) == 0 {
		return
	}
	m := ledger[rec.Job]
	if m == nil {
		m = map[string]InputFile{}
		ledger[rec.Job] = m
	}
	for _, in := range rec.Inputs {
		m[in.Key] = in
	}
}

// readCommitAnywhere reads a commit record from the log or, once a
// checkpoint has moved it, from the archive.
func (p *Publisher) readCommitAnywhere(ctx context.Context, id string) (*CommitRecord, error) {
	rec, err := p.readCommit(ctx, id)
	if !errors.Is(err, store.ErrNotExist) {
		return rec, err
	}
	return p.readCommitAt(ctx, id, state.ArchivedKey(state.CommitKey(id)))
}

// CheckpointReport is what Checkpoint did.
type CheckpointReport struct {
	// Written is the sequence number of the checkpoint written, 0 if none.
	Written int64
	// Archived counts the commit records moved to the archive.
	Archived int
}

// Checkpoint writes the next checkpoint of the commit log when at least
// every commits (DefaultCheckpointEvery if <= 0) can be covered, then
// archives the commit records the newest checkpoint covers and deletes the
// checkpoints older than the newest two. drop, if set, is asked about every
// consumed input of the new checkpoint: true leaves it out (an input file
// that retention archived or deleted, which no run will list again).
//
// Safe to call from any run at any time, concurrently with other runs and
// other Checkpoints: two writers of the same sequence number race on a
// create-if-absent write, the loser writes nothing, and both only archive
// what the written checkpoint covers.
func (p *Publisher) Checkpoint(ctx context.Context, every int, drop func(job string, in InputFile) bool) (CheckpointReport, error) {
	var rep CheckpointReport
	if every <= 0 {
		every = DefaultCheckpointEvery
	}
	commits, orphans, err := p.listCommitLog(ctx, state.CommitsPrefix)
	if err != nil {
		return rep, fmt.Errorf("checkpoint: %w", err)
	}
	cp, err := p.latestCheckpoint(ctx)
	if err != nil {
		return rep, fmt.Errorf("checkpoint: %w", err)
	}
	// The coverable prefix after the checkpoint: done, and old enough.
	cutoff := p.now().Add(-CheckpointLag)
	var next []commitInfo
	for _, c := range commits {
		if cp.covers(c) {
			continue
		}
		if !c.done || c.updated.After(cutoff) {
			break
		}
		next = append(next, c)
	}
	if len(next) >= every {
		ncp := &CheckpointRecord{
			FormatVersion: FormatVersion, Through: next[len(next)-1].position(),
			Ledger: map[string]map[string]InputFile{}, CreatedAt: p.now(),
		}
		if cp != nil {
			ncp.Seq, ncp.Commits = cp.Seq, cp.Commits
			for j, files := range cp.Ledger {
				ncp.Ledger[j] = maps.Clone(files)
			}
		}
		ncp.Seq++
		ncp.Commits += int64(len(next))
		for _, c := range next {
			rec, err := p.readCommitAnywhere(ctx, c.id)
			if err != nil {
				return rep, fmt.Errorf("checkpoint: %w", err)
			}
			applyInputs(ncp.Ledger, rec)
		}
		if drop != nil {
			for j, files := range ncp.Ledger {
				maps.DeleteFunc(files, func(_ string, in InputFile) bool { return drop(j, in) })
			}
		}
		data, err := state.EncodeCompact(ncp)
		if err != nil {
			return rep, err
		}
		switch _, err := state.Create(ctx, p.bucket, state.CheckpointKey(ncp.Seq), data); {
		case err == nil:
			rep.Written = ncp.Seq
		case errors.Is(err, store.ErrPrecondition):
			// Another run wrote this sequence number first: archive what
			// it covers.
		default:
			return rep, fmt.Errorf("checkpoint: write %s: %w", p.bucket.URI(state.CheckpointKey(ncp.Seq)), err)
		}
		if err := p.hook(PointAfterCheckpoint); err != nil {
			return rep, err
		}
		if cp, err = p.latestCheckpoint(ctx); err != nil {
			return rep, fmt.Errorf("checkpoint: %w", err)
		}
	}
	if cp == nil {
		return rep, nil
	}
	for _, c := range commits {
		if !cp.covers(c) {
			break // commit order: nothing later is covered
		}
		if err := p.archive(ctx, c.id); err != nil {
			return rep, fmt.Errorf("checkpoint: %w", err)
		}
		rep.Archived++
	}
	// Done markers left behind by an archiving that stopped between its
	// two deletes (their record is archived already).
	for _, id := range orphans {
		if ok, err := state.Exists(ctx, p.bucket, state.ArchivedKey(state.DoneKey(id))); err != nil {
			return rep, fmt.Errorf("checkpoint: %w", err)
		} else if ok {
			if err := state.DeleteIfExists(ctx, p.bucket, state.DoneKey(id)); err != nil {
				return rep, fmt.Errorf("checkpoint: %w", err)
			}
		}
	}
	if rep.Written == 0 {
		return rep, nil // no checkpoint was added: none is too old now
	}
	return rep, p.pruneCheckpoints(ctx)
}

// archive moves a covered commit's record and done marker to the archive:
// both copied, then the record deleted, then the marker (a listing never
// shows the record without its marker: a done run never looks pending).
func (p *Publisher) archive(ctx context.Context, id string) error {
	keys := []string{state.CommitKey(id), state.DoneKey(id)}
	for _, key := range keys {
		err := p.bucket.Copy(ctx, key, state.ArchivedKey(key), store.WriteOptions{IfAbsent: true})
		switch {
		case err == nil, errors.Is(err, store.ErrPrecondition):
			// Copied now or by an earlier attempt: the log's object is
			// immutable (a record) or equivalent (a marker), so an
			// existing copy is the same.
		case errors.Is(err, store.ErrNotExist):
			// Deleted from the log by an earlier attempt, after its copy.
			if ok, xerr := state.Exists(ctx, p.bucket, state.ArchivedKey(key)); xerr != nil || !ok {
				return cmp.Or(xerr, fmt.Errorf("archive %s: %w: in neither the log nor the archive", p.bucket.URI(key), ErrCorrupt))
			}
		default:
			return fmt.Errorf("archive %s: %w", p.bucket.URI(key), err)
		}
		if err := p.hook(PointAfterArchiveCopy); err != nil {
			return err
		}
	}
	for _, key := range keys {
		if err := state.DeleteIfExists(ctx, p.bucket, key); err != nil {
			return fmt.Errorf("archive %s: %w", p.bucket.URI(key), err)
		}
		if err := p.hook(PointAfterArchiveDelete); err != nil {
			return err
		}
	}
	return nil
}

// pruneCheckpoints deletes every checkpoint but the newest checkpointsKept.
func (p *Publisher) pruneCheckpoints(ctx context.Context) error {
	objs, err := p.bucket.List(ctx, state.CheckpointsPrefix)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	var keys []string
	for _, o := range objs {
		if _, ok := state.CheckpointSeq(o.Key); ok {
			keys = append(keys, o.Key)
		}
	}
	slices.Sort(keys)
	for _, key := range keys[:max(0, len(keys)-checkpointsKept)] {
		if err := state.DeleteIfExists(ctx, p.bucket, key); err != nil {
			return fmt.Errorf("checkpoint: delete %s: %w", p.bucket.URI(key), err)
		}
	}
	return nil
}
