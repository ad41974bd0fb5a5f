package table

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/adtech/scorer/internal/state"
)

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
	if committed, err := state.Exists(ctx, r.p.bucket, state.CommitKey(id)); err != nil {
		return fmt.Errorf("abort run %s: %w", id, err)
	} else if committed {
		r.state = runCommitted
		return fmt.Errorf("abort run %s: %w", id, ErrCommitted)
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

func (p *Publisher) deleteIfExists(ctx context.Context, key string) error {
	return state.DeleteIfExists(ctx, p.bucket, key)
}

func (p *Publisher) deleteStaging(ctx context.Context, id string) error {
	objs, err := p.bucket.List(ctx, state.RunStagingPrefix(id))
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
	objs, err := p.bucket.List(ctx, state.RunStagingPrefix(staging))
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
