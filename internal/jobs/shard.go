package jobs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/failpoint"
	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/writers/table"
)

// Shard says which part of a sharded backfill a run scores: shard Index of
// Count, 0-based.
type Shard struct {
	Index, Count int
}

// ParseShard reads "i/N" (0 <= i < N).
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("%w: shard %q: want i/N with 0 <= i < N", ErrConfig, s)
	}
	return Shard{Index: i, Count: n}, nil
}

// A sharded backfill works from a plan, written once by whichever shard
// starts first: the month's files (as listed then) and the shard count.
// Shard i scores the files whose position in the plan is i modulo the
// count, stages its parts under the plan's staging, and records them in a
// shard record (create-if-absent: a duplicated or retried shard finds it
// and does nothing). The shard that finds all records commits the month
// once, under the job's lease, from all of them.
type plan struct {
	ID        string             `json:"id"` // the sharded run's id: its staging and commit record
	Job       string             `json:"job"`
	Partition string             `json:"partition"`
	Count     int                `json:"count"`
	Files     []store.ObjectInfo `json:"files"`
	CreatedAt time.Time          `json:"created_at"`
}

// readPlan returns the job's plan in progress, or nil. A plan whose run is
// committed and done is finished: its leftovers are cleaned up and nil is
// returned.
func (j *ScoreJob) readPlan(ctx context.Context, pub *table.Publisher) (*plan, error) {
	data, err := state.Read(ctx, j.Output, state.ShardPlanKey(j.Job))
	if errors.Is(err, store.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read shard plan: %w", err)
	}
	var p plan
	if err := state.Decode(data, &p); err != nil {
		return nil, fmt.Errorf("read shard plan %s: %w", j.Output.URI(state.ShardPlanKey(j.Job)), err)
	}
	done, err := pub.Done(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	if done {
		return nil, j.cleanPlan(ctx, &p)
	}
	return &p, nil
}

// cleanPlan deletes a finished plan's shard records and the plan itself.
func (j *ScoreJob) cleanPlan(ctx context.Context, p *plan) error {
	objs, err := j.Output.List(ctx, state.ShardRecordsPrefix(j.Job, p.ID))
	if err != nil {
		return err
	}
	for _, o := range append(objs, store.ObjectInfo{Key: state.ShardPlanKey(j.Job)}) {
		if err := state.DeleteIfExists(ctx, j.Output, o.Key); err != nil {
			return fmt.Errorf("clean shard plan: %w", err)
		}
	}
	return nil
}

// refuseOtherShardCount fails if a sharded run of the job with another
// shard count is in progress (count 1: an unsharded run).
func (j *ScoreJob) refuseOtherShardCount(ctx context.Context, pub *table.Publisher, count int) error {
	p, err := j.readPlan(ctx, pub)
	if err != nil || p == nil || p.Count == count {
		return err
	}
	return fmt.Errorf("%w: a backfill of %s in %d shards is in progress (plan %s); this run has %d: finish it with the same count, or abandon it with scorer shards abandon",
		ErrConfig, j.Partition, p.Count, p.ID, count)
}

// ValidShardPlan checks a plan id given by the user (--shard-plan): it names
// the sharded run and its commit, so it follows the run id rules.
func ValidShardPlan(id string) error {
	if err := table.ValidateRunID(id); err != nil {
		return fmt.Errorf("%w: shard plan %q: %w", ErrConfig, id, err)
	}
	return nil
}

// scoreShard runs one shard of a sharded backfill, then commits the month
// if every shard is done.
func (j *ScoreJob) scoreShard(ctx context.Context, pub *table.Publisher, fx *features.Pipeline, sum *Summary) error {
	sh := *j.Shard
	name := fmt.Sprintf("%s.shard-%d-of-%d", j.Job, sh.Index, sh.Count)
	h, sctx, err := j.hold(ctx, pub, name, false)
	if err != nil {
		return err
	}
	err = j.runShard(sctx, h, pub, fx, sum, name)
	h.release(ctx)
	if err != nil {
		return h.explain(err)
	}
	failpoint.Hit("shard.before-finish")
	return j.finishShards(ctx, pub, sum)
}

func (j *ScoreJob) runShard(ctx context.Context, h *held, pub *table.Publisher, fx *features.Pipeline, sum *Summary, name string) error {
	sh := *j.Shard
	if j.ShardPlan != "" {
		done, err := pub.Done(ctx, j.ShardPlan)
		if err != nil {
			return err
		}
		if done {
			j.Log.Info("this sharded backfill is already published", "plan", j.ShardPlan, "shard", name)
			return nil
		}
	}
	p, err := j.readPlan(ctx, pub)
	if err != nil {
		return err
	}
	if p != nil && j.ShardPlan != "" && p.ID != j.ShardPlan {
		return fmt.Errorf("%w: another sharded backfill of %s (plan %s) is in progress; this is plan %s: let it finish, or abandon it with scorer shards abandon",
			ErrConfig, j.Partition, p.ID, j.ShardPlan)
	}
	if p == nil {
		// No sharded run of this month in progress: plan one.
		files, err := j.pickInputs(ctx, pub)
		if err != nil {
			return err
		}
		if len(files) == 0 {
			return fmt.Errorf("%w: no input files under %s", ErrBadInput, j.Input.URI(j.Dir+"/"))
		}
		id := j.ShardPlan
		if id == "" {
			id = table.NewRunID(j.Now())
		}
		p = &plan{ID: id, Job: j.Job, Partition: j.Partition, Count: sh.Count, Files: files, CreatedAt: j.Now().UTC()}
		data, err := state.Encode(p)
		if err != nil {
			return err
		}
		_, err = state.Create(ctx, j.Output, state.ShardPlanKey(j.Job), data)
		if errors.Is(err, store.ErrPrecondition) { // another shard planned first
			if p, err = j.readPlan(ctx, pub); err == nil && p == nil {
				err = fmt.Errorf("shard plan of %s vanished while planning", j.Partition)
			}
		}
		if err != nil {
			return fmt.Errorf("plan shards: %w", err)
		}
	}
	if p.Count != sh.Count {
		return j.refuseOtherShardCount(ctx, pub, sh.Count)
	}
	sum.RunID = p.ID
	key := state.ShardRecordKey(j.Job, p.ID, sh.Index)
	if _, err := j.Output.Stat(ctx, key); err == nil {
		j.Log.Info("shard already done", "shard", name, "plan", p.ID)
		return nil
	} else if !errors.Is(err, store.ErrNotExist) {
		return err
	}

	var files []store.ObjectInfo
	for k, f := range p.Files {
		if k%sh.Count == sh.Index {
			files = append(files, f)
		}
	}
	rec := &table.CommitRecord{RunID: j.RunID, Job: name, Model: table.Model{Name: j.Bundle.Name, Version: j.Bundle.Version}}
	if len(files) > 0 {
		run, err := j.stage(ctx, pub, fx, table.RunSpec{
			RunID: j.RunID, Job: j.Job + ".shards", StagingRunID: p.ID,
			Model: table.Model{Name: j.Bundle.Name, Version: j.Bundle.Version},
		}, files, sum)
		if errors.Is(err, store.ErrNotExist) {
			// The plan pinned each file's generation: a file replaced since
			// can never be read as planned.
			return fmt.Errorf("%w: an input of plan %s was replaced or deleted after the plan was made (%w); abandon the plan with scorer shards abandon and backfill %s again",
				ErrConfig, p.ID, err, j.Partition)
		}
		if err != nil {
			return err
		}
		if rec, err = run.Seal(ctx); err != nil {
			_ = run.Abort(context.WithoutCancel(ctx))
			return err
		}
	}
	data, err := state.Encode(rec)
	if err != nil {
		return err
	}
	// The shard record is this shard's commit: fenced by the shard's lease.
	if err := h.fence(key)(ctx, data); err != nil {
		return err
	}
	err = state.CreateOrSame(ctx, j.Output, key, data)
	if errors.Is(err, store.ErrPrecondition) {
		// A duplicate of this shard recorded first: its parts count, ours
		// are left for the plan's clean-up with its staging.
		j.Log.Warn("a duplicate of this shard finished first; its output is used", "shard", name)
		err = nil
	}
	if err != nil {
		return err
	}
	h.committed = true
	j.Log.Info("shard staged", "shard", name, "plan", p.ID, "rows", sum.RowsRead)
	return nil
}

// finishShards commits the month if every shard of the plan has recorded
// its parts: under the job's lease (waiting for it), from the shard
// records. Any shard may do it, and doing it twice is harmless.
func (j *ScoreJob) finishShards(ctx context.Context, pub *table.Publisher, sum *Summary) error {
	p, err := j.readPlan(ctx, pub)
	if err != nil || p == nil {
		return err // nil: finished by another shard
	}
	records, err := j.Output.List(ctx, state.ShardRecordsPrefix(j.Job, p.ID))
	if err != nil {
		return err
	}
	if len(records) < p.Count {
		j.Log.Info("waiting for the other shards", "plan", p.ID, "done", len(records), "of", p.Count)
		return nil
	}
	h, ctx, err := j.hold(ctx, pub, j.Job, true)
	if err != nil {
		return err
	}
	defer h.release(ctx)
	if err := j.recover(ctx, pub, sum); err != nil { // a crashed finisher's commit
		return h.explain(err)
	}
	if p, err = j.readPlan(ctx, pub); err != nil || p == nil {
		return h.explain(err)
	}
	var shards []*table.CommitRecord
	for _, o := range records {
		data, err := state.Read(ctx, j.Output, o.Key)
		if err != nil {
			return h.explain(err)
		}
		var rec table.CommitRecord
		if err := state.Decode(data, &rec); err != nil {
			return fmt.Errorf("read shard record %s: %w", j.Output.URI(o.Key), err)
		}
		if len(rec.Outputs) > 0 {
			shards = append(shards, &rec)
		}
	}
	rec, err := pub.CommitSharded(ctx, p.ID, j.Job, shards, h.fence(state.CommitKey(p.ID)))
	if rec != nil {
		h.committed = true
	}
	if err != nil {
		return h.explain(err)
	}
	sum.addOutputs(rec)
	j.checkpoint(ctx, pub)
	j.Log.Info("sharded backfill committed", "plan", p.ID, "shards", p.Count, "partition", j.Partition)
	return h.explain(j.cleanPlan(ctx, p))
}

// AbandonShards deletes a sharded backfill in progress (its plan, shard
// records and staged parts) under the job's lease, so that the month can be
// backfilled again with another shard count.
func AbandonShards(ctx context.Context, j ScoreJob) error {
	if j.Now == nil {
		j.Now = time.Now
	}
	if j.RunID == "" {
		j.RunID = table.NewRunID(j.Now())
	}
	pub, err := table.NewPublisher(j.Output, table.Options{Now: j.Now})
	if err != nil {
		return err
	}
	h, ctx, err := j.hold(ctx, pub, j.Job, false)
	if err != nil {
		return err
	}
	defer h.release(ctx)
	p, err := j.readPlan(ctx, pub)
	if err != nil || p == nil {
		return err
	}
	if err := pub.DeleteStaging(ctx, p.ID); err != nil {
		return err
	}
	return j.cleanPlan(ctx, p)
}
