package table

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/adtech/scorer/internal/state"
)

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
	objs, err := p.bucket.List(ctx, state.CommitsPrefix)
	if err != nil {
		return nil, err
	}
	done := map[string]bool{}
	var out []commitInfo
	for _, o := range objs {
		id, isDone, ok := state.CommitLogEntry(o.Key)
		switch {
		case !ok:
		case isDone:
			done[id] = true
		default:
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
	key := state.CommitKey(id)
	data, err := state.Read(ctx, p.bucket, key)
	if err != nil {
		return nil, err
	}
	var rec CommitRecord
	if _, err := state.DecodeVersioned(data, &rec, FormatVersion); err != nil {
		return nil, fmt.Errorf("read %s: %w: %w", p.bucket.URI(key), ErrCorrupt, err)
	}
	if rec.RunID != id {
		return nil, fmt.Errorf("read %s: %w: format version %d, run id %q", p.bucket.URI(key), ErrCorrupt, rec.FormatVersion, rec.RunID)
	}
	return &rec, nil
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

// Pending returns the committed runs that are not done yet (decided, not
// fully published), in commit order. Only their records are read.
func (p *Publisher) Pending(ctx context.Context) ([]CommitStatus, error) {
	commits, err := p.listCommits(ctx)
	if err != nil {
		return nil, fmt.Errorf("list pending commits: %w", err)
	}
	var out []CommitStatus
	for _, c := range commits {
		if c.done {
			continue
		}
		rec, err := p.readCommit(ctx, c.id)
		if err != nil {
			return nil, fmt.Errorf("list pending commits: %w", err)
		}
		out = append(out, CommitStatus{CommitRecord: *rec, StoredAt: c.updated})
	}
	return out, nil
}
