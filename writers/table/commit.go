package table

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
)

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
	data, err := state.Encode(rec)
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
	err := state.CreateOrSame(ctx, p.bucket, state.CommitKey(id), data)
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
	rec := &CommitRecord{
		FormatVersion: FormatVersion, RunID: runID, Job: job, Model: shards[0].Model,
		Inputs: []InputFile{}, Outputs: []OutputRecord{},
	}
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
