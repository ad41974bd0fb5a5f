package table

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
)

// Retention's side of the table protocol: the staging and the archived
// commit log that no run, roll forward or ledger needs any more, found by
// age (the object times the store keeps) and deleted.
//
// Staging is kept while its run may still publish from it: while its
// commit record is in the log without a done marker (decided, not yet
// rolled forward), and while the caller says so (keep: a live lease names
// the run, a lease holds its fenced commit, a sharded plan stages under its
// id). Anything else is staging of a run that failed, was killed before its
// commit, or finished and was killed before deleting its staging: once
// nothing has been written to it for the retention period, no run can be
// writing to it (a run renews its lease every lease_ttl/4 and stages
// continuously; no run stages for days), so it is garbage.

// StagedRun is the staging of one run, as listed.
type StagedRun struct {
	// RunID is the run whose staging it is (_scorer/staging/<run_id>/).
	RunID string `json:"run_id"`
	// Objects and Bytes are what it holds, its marker included.
	Objects int   `json:"objects"`
	Bytes   int64 `json:"bytes"`
	// Newest is the time of its newest object.
	Newest time.Time `json:"newest"`
}

// OldStaging lists the staging of the runs whose newest object is older
// than before and that no roll forward needs: neither committed and not
// yet done (a commit record in the log without its done marker) nor kept
// by the caller (keep may be nil). kept are the runs old enough but kept
// by either rule. The staging is listed before the commit log, so a run
// that committed before the listing of the log is seen as committed.
func (p *Publisher) OldStaging(ctx context.Context, before time.Time, keep func(runID string) bool) (old []StagedRun, kept []string, err error) {
	objs, err := p.bucket.List(ctx, state.StagingPrefix)
	if err != nil {
		return nil, nil, fmt.Errorf("list staging: %w", err)
	}
	commits, err := p.listCommits(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list staging: %w", err)
	}
	pending := map[string]bool{}
	for _, c := range commits {
		pending[c.id] = !c.done
	}
	for _, run := range stagedRuns(objs) {
		switch {
		case !run.Newest.Before(before):
		case pending[run.RunID] || (keep != nil && keep(run.RunID)):
			kept = append(kept, run.RunID)
		default:
			old = append(old, run)
		}
	}
	return old, kept, nil
}

// stagedRuns groups listed staging objects by run (keys are sorted, so a
// run's objects are consecutive).
func stagedRuns(objs []store.ObjectInfo) []StagedRun {
	var runs []StagedRun
	for _, o := range objs {
		id := state.StagedRunID(o.Key)
		if id == "" {
			continue
		}
		if len(runs) == 0 || runs[len(runs)-1].RunID != id {
			runs = append(runs, StagedRun{RunID: id})
		}
		r := &runs[len(runs)-1]
		r.Objects++
		r.Bytes += o.Size
		if o.Updated.After(r.Newest) {
			r.Newest = o.Updated
		}
	}
	return runs
}

// CollectStaging deletes the staging of a run that OldStaging returned,
// checking again first: it deletes nothing, and returns 0, when an object
// of it is now as new as before, or when the run's commit record is in the
// log without its done marker. The run's marker is deleted last, so a
// staging half deleted (a kill) still names its run and is collected by
// the next call. It returns the number of objects deleted.
func (p *Publisher) CollectStaging(ctx context.Context, runID string, before time.Time) (int, error) {
	if err := ValidateRunID(runID); err != nil {
		return 0, fmt.Errorf("collect staging: %w", err)
	}
	objs, err := p.bucket.List(ctx, state.RunStagingPrefix(runID))
	if err != nil {
		return 0, fmt.Errorf("collect staging of %s: %w", runID, err)
	}
	if slices.ContainsFunc(objs, func(o store.ObjectInfo) bool { return !o.Updated.Before(before) }) {
		return 0, nil
	}
	committed, err := state.Exists(ctx, p.bucket, state.CommitKey(runID))
	if err != nil {
		return 0, fmt.Errorf("collect staging of %s: %w", runID, err)
	}
	if committed {
		if done, err := state.Exists(ctx, p.bucket, state.DoneKey(runID)); err != nil || !done {
			return 0, err
		}
	}
	marker := state.RunMarkerKey(runID)
	slices.SortStableFunc(objs, func(a, b store.ObjectInfo) int {
		return boolCompare(a.Key == marker, b.Key == marker)
	})
	n := 0
	for _, o := range objs {
		if err := p.deleteIfExists(ctx, o.Key); err != nil {
			return n, fmt.Errorf("collect staging of %s: %w", runID, err)
		}
		n++
	}
	return n, nil
}

// boolCompare orders false before true.
func boolCompare(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	default:
		return -1
	}
}

// ArchivedCommit is one run's objects in the archived commit log.
type ArchivedCommit struct {
	RunID string `json:"run_id"`
	// Keys are its objects: the commit record first (when there), then
	// the done marker (when there).
	Keys []string `json:"keys"`
	// Archived is when the archive's copy of the record was stored (of the
	// done marker, when the record is gone).
	Archived time.Time `json:"archived"`
}

// OldArchive lists the archived commits archived before before whose
// record and done marker are no longer in the commit log (an archiving
// that stopped between its copy and its deletes is finished by the next
// checkpoint, which may need the archive's copy), in run id order.
func (p *Publisher) OldArchive(ctx context.Context, before time.Time) ([]ArchivedCommit, error) {
	objs, err := p.bucket.List(ctx, state.ArchivedCommitsPrefix)
	if err != nil {
		return nil, fmt.Errorf("list archived commits: %w", err)
	}
	logged, err := p.bucket.List(ctx, state.CommitsPrefix)
	if err != nil {
		return nil, fmt.Errorf("list archived commits: %w", err)
	}
	inLog := map[string]bool{}
	for _, o := range logged {
		if id, _, ok := state.CommitLogEntry(o.Key); ok {
			inLog[id] = true
		}
	}
	byID := map[string]*ArchivedCommit{}
	var ids []string
	for _, o := range objs {
		id, done, ok := state.ArchivedCommitEntry(o.Key)
		if !ok {
			continue
		}
		a := byID[id]
		if a == nil {
			a = &ArchivedCommit{RunID: id}
			byID[id] = a
			ids = append(ids, id)
		}
		if done {
			a.Keys = append(a.Keys, o.Key)
			if a.Archived.IsZero() {
				a.Archived = o.Updated
			}
		} else {
			a.Keys = append([]string{o.Key}, a.Keys...)
			a.Archived = o.Updated
		}
	}
	slices.Sort(ids)
	var out []ArchivedCommit
	for _, id := range ids {
		if a := byID[id]; !inLog[id] && a.Archived.Before(before) {
			out = append(out, *a)
		}
	}
	return out, nil
}

// DeleteArchived deletes an archived commit's objects that OldArchive
// listed: the record first, then the done marker (a listing of the archive
// never shows a done run's record without its marker, which would make it
// look pending in Commits). Objects already gone are fine.
func (p *Publisher) DeleteArchived(ctx context.Context, a ArchivedCommit) error {
	for _, key := range a.Keys {
		if !strings.HasPrefix(key, state.ArchivedCommitsPrefix) {
			return fmt.Errorf("delete archived commit %s: %q is not in the archive", a.RunID, key)
		}
		if err := p.deleteIfExists(ctx, key); err != nil {
			return fmt.Errorf("delete archived commit %s: %w", a.RunID, err)
		}
	}
	return nil
}
