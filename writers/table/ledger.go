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

// listCommits lists the commit log (the commits since the latest
// checkpoint, and those it covers that are not archived yet) in commit
// order: the time the store recorded each commit object (the store's clock,
// not a client's), then run id.
func (p *Publisher) listCommits(ctx context.Context) ([]commitInfo, error) {
	commits, _, err := p.listCommitLog(ctx, state.CommitsPrefix)
	return commits, err
}

// listCommitLog lists the commit records under prefix (the log or the
// archive) in commit order, and the done markers whose record is not there
// (an archiving stopped between its two deletes).
func (p *Publisher) listCommitLog(ctx context.Context, prefix string) (commits []commitInfo, orphanDone []string, err error) {
	objs, err := p.bucket.List(ctx, prefix)
	if err != nil {
		return nil, nil, err
	}
	done := map[string]bool{}
	for _, o := range objs {
		id, isDone, ok := state.CommitLogEntry(state.CommitsPrefix + strings.TrimPrefix(o.Key, prefix))
		switch {
		case !ok:
		case isDone:
			done[id] = true
		default:
			commits = append(commits, commitInfo{id: id, updated: o.Updated})
		}
	}
	for i := range commits {
		commits[i].done = done[commits[i].id]
		delete(done, commits[i].id)
	}
	for id := range done {
		orphanDone = append(orphanDone, id)
	}
	slices.Sort(orphanDone)
	slices.SortFunc(commits, func(a, b commitInfo) int {
		return cmp.Or(a.updated.Compare(b.updated), strings.Compare(a.id, b.id))
	})
	return commits, orphanDone, nil
}

func (p *Publisher) readCommit(ctx context.Context, id string) (*CommitRecord, error) {
	return p.readCommitAt(ctx, id, state.CommitKey(id))
}

func (p *Publisher) readCommitAt(ctx context.Context, id, key string) (*CommitRecord, error) {
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

// Commits returns every committed run of the bucket in commit order, the
// archived ones included, for history and audit: it reads every commit
// record ever written. The ledger (Consumed) and Done do not.
func (p *Publisher) Commits(ctx context.Context) ([]CommitStatus, error) {
	archived, _, err := p.listCommitLog(ctx, state.ArchivedCommitsPrefix)
	if err != nil {
		return nil, fmt.Errorf("list archived commits: %w", err)
	}
	live, err := p.listCommits(ctx)
	if err != nil {
		return nil, fmt.Errorf("list commits: %w", err)
	}
	seen := map[string]bool{}
	var all []commitInfo
	for _, c := range archived {
		seen[c.id] = true
		all = append(all, c)
	}
	for _, c := range live {
		if !seen[c.id] { // copied to the archive, not yet deleted here
			all = append(all, c)
		}
	}
	slices.SortFunc(all, func(a, b commitInfo) int { return a.position().compare(b.position()) })
	out := make([]CommitStatus, 0, len(all))
	for _, c := range all {
		rec, err := p.readCommitAnywhere(ctx, c.id)
		if err != nil {
			return nil, fmt.Errorf("list commits: %w", err)
		}
		out = append(out, CommitStatus{CommitRecord: *rec, Done: c.done, StoredAt: c.updated})
	}
	return out, nil
}

// Done reports whether a run is committed and fully published: its done
// marker exists, in the log or in the archive. Two lookups, whatever the
// history's length.
func (p *Publisher) Done(ctx context.Context, runID string) (bool, error) {
	for _, key := range []string{state.DoneKey(runID), state.ArchivedKey(state.DoneKey(runID))} {
		if ok, err := state.Exists(ctx, p.bucket, key); err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// Consumed is the ledger of a job: every input file that a committed run of
// the job consumed, by key. Where runs consumed several generations of a
// key, the latest commit's entry wins. Committed runs count whether or not
// they are rolled forward yet (they will be); uncommitted runs never count.
// The caller skips an input whose key and generation are in the map. It
// reads the latest checkpoint and the commit records since (Checkpoint).
func (p *Publisher) Consumed(ctx context.Context, job string) (map[string]InputFile, error) {
	ledger, err := p.ledger(ctx, job)
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", job, err)
	}
	if ledger[job] == nil {
		return map[string]InputFile{}, nil
	}
	return ledger[job], nil
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
