package app

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/adtech/scorer/internal/failpoint"
	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/internal/lease"
	"github.com/adtech/scorer/internal/runlog"
	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scheduler"
	"github.com/adtech/scorer/writers/table"
)

// GCKeysShown bounds the keys a GCReport lists per kind; the counts are
// complete.
const GCKeysShown = 20

// GCRequest says what GC does.
type GCRequest struct {
	// DryRun works out and reports what would be deleted, and deletes
	// nothing.
	DryRun bool
}

// GCReport is what GC deleted (with DryRun: would delete), per kind of
// state.
type GCReport struct {
	DryRun bool `json:"dry_run"`
	// Output is the URI of the output store; Input that of the input store
	// (only when the queue is collected).
	Output string `json:"output"`
	Input  string `json:"input,omitempty"`
	// At is the time the ages are measured from.
	At time.Time `json:"at"`

	RunRecords    GCKind `json:"run_records"`
	ScheduleSlots GCKind `json:"schedule_slots"`
	Staging       GCKind `json:"staging"`
	Archive       GCKind `json:"archive"`
	Queue         GCKind `json:"queue"`
}

// Kinds returns the report's kinds with their names, in the order GC
// collects them.
func (r *GCReport) Kinds() []NamedGCKind {
	return []NamedGCKind{
		{"run records", "run_records_days", &r.RunRecords},
		{"schedule slots", "schedule_days", &r.ScheduleSlots},
		{"staging", "staging_days", &r.Staging},
		{"archived commits", "archive_days", &r.Archive},
		{"queue files", "queue_days", &r.Queue},
	}
}

// NamedGCKind is a kind of a GCReport with its name and its retention key.
type NamedGCKind struct {
	Name, Key string
	*GCKind
}

// GCKind is what GC did with one kind of state.
type GCKind struct {
	// Days is the retention setting; 0 keeps the kind forever (nothing
	// was collected).
	Days int `json:"days"`
	// Before is the cutoff: state older than this was collected.
	Before time.Time `json:"before,omitzero"`
	// Count is how many were deleted: run records, slot records, runs'
	// staging, archived commits, queue files (archived or deleted).
	Count int `json:"count"`
	// Objects is how many objects that was: more than Count for staging
	// (every part) and archived commits (record and done marker).
	Objects int `json:"objects"`
	// Kept is how many were old enough but kept by a rule: the newest
	// record of a job, a running run; a slot at or after its job's
	// watermark; staging a publish may need; a queue file not (or not yet)
	// consumed by a checkpointed run, or changed since.
	Kept int `json:"kept"`
	// Keys are the first GCKeysShown collected, in key order: object keys,
	// or for staging the run's staging folder.
	Keys []string `json:"keys"`
	// Action (queue files): archive or delete; To: the archive folder.
	Action string `json:"action,omitempty"`
	To     string `json:"to,omitempty"`
	// Conflicts (queue files): files kept because the archive already
	// holds another object under their name.
	Conflicts []string `json:"conflicts,omitempty"`
	// Error is why collecting this kind stopped, if it did.
	Error string `json:"error,omitempty"`
}

func (k *GCKind) add(key string, objects int) {
	k.Count++
	k.Objects += objects
	if len(k.Keys) < GCKeysShown {
		k.Keys = append(k.Keys, key)
	}
}

// GC applies the retention section of the configuration: it deletes the
// run records, schedule slot records, staging, archived commit records
// and queued input files that are older than their retention and that
// nothing needs any more (docs/store.md#retention), and reports, per kind,
// what it deleted. With req.DryRun it deletes nothing and reports what it
// would delete.
//
// It is safe while runs are active: it never touches a lease, a commit
// record in the log, a checkpoint, the staging of a run that may still
// publish from it, or a queued file not consumed by a checkpointed run.
// Every deletion is of an object nothing reads afterwards, so a GC stopped
// anywhere leaves a state the next one finishes. A kind that fails does
// not stop the others (unless ctx is done); the error joins their errors
// and the report says what each did.
func (a *App) GC(ctx context.Context, req GCRequest) (*GCReport, error) {
	out, err := store.Open(ctx, a.cfg.Output)
	if err != nil {
		return nil, UsageError{fmt.Errorf("output: %w", err)}
	}
	var in store.Bucket
	if a.cfg.Retention.QueueDays > 0 {
		if in, err = store.Open(ctx, a.cfg.Input); err != nil {
			return nil, UsageError{fmt.Errorf("input: %w", err)}
		}
	}
	return a.gc(ctx, out, in, req)
}

// collector is one GC's state.
type collector struct {
	a       *App
	out, in store.Bucket
	pub     *table.Publisher
	dry     bool
	now     time.Time
}

// gc is GC over open stores; in may be nil when the queue is not
// collected.
func (a *App) gc(ctx context.Context, out, in store.Bucket, req GCRequest) (*GCReport, error) {
	now := a.now().UTC()
	opts := table.DefaultOptions()
	opts.Now = a.now
	// The checkpoint gc writes stops at the same named points as a run's
	// (crash tests kill the process there: internal/failpoint).
	opts.Failpoint = func(point string) error { failpoint.Hit("gc." + point); return nil }
	pub, err := table.NewPublisher(out, opts)
	if err != nil {
		return nil, err
	}
	c := &collector{a: a, out: out, in: in, pub: pub, dry: req.DryRun, now: now}
	r := a.cfg.Retention
	rep := &GCReport{DryRun: req.DryRun, Output: out.URI(""), At: now}
	steps := []struct {
		kind *GCKind
		days int
		run  func(context.Context, *GCKind) error
	}{
		{&rep.RunRecords, r.RunRecordsDays, c.runRecords},
		{&rep.ScheduleSlots, r.ScheduleDays, c.slots},
		{&rep.Staging, r.StagingDays, c.staging},
		{&rep.Archive, r.ArchiveDays, c.archive},
		{&rep.Queue, r.QueueDays, c.queue},
	}
	var errs []error
	for i, s := range steps {
		s.kind.Days, s.kind.Keys = s.days, []string{}
		if s.days <= 0 {
			continue
		}
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		s.kind.Before = now.AddDate(0, 0, -s.days)
		err := s.run(ctx, s.kind)
		name := rep.Kinds()[i].Name
		a.log.Info("gc", "kind", name, "dry_run", req.DryRun, "deleted", s.kind.Count, "objects", s.kind.Objects, "kept", s.kind.Kept, "before", s.kind.Before)
		if err != nil {
			err = fmt.Errorf("gc %s: %w", name, err)
			s.kind.Error = err.Error()
			errs = append(errs, err)
		}
	}
	if in != nil {
		rep.Input = in.URI("")
	}
	return rep, errors.Join(errs...)
}

// runRecord is one listed run record.
type runRecord struct {
	key, job, runID string
	started         time.Time // when the run started: the record's, else the object's time
	rec             *runlog.Record
}

// runRecords deletes the run records of runs started before k.Before,
// except the newest of each job (the records' folder) and of each
// scheduled job, and those of runs still running (runlog.Resolve: a live
// lease names the run). A record that cannot be decoded is aged by its
// object's time and is never a job's newest.
func (c *collector) runRecords(ctx context.Context, k *GCKind) error {
	objs, err := c.out.List(ctx, state.RunsPrefix)
	if err != nil {
		return err
	}
	var recs []*runRecord
	for _, o := range objs {
		if job, id, ok := state.RunRecordEntry(o.Key); ok {
			recs = append(recs, &runRecord{key: o.Key, job: job, runID: id, started: o.Updated})
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, r := range recs {
		g.Go(func() error {
			data, err := state.Read(gctx, c.out, r.key)
			if errors.Is(err, store.ErrNotExist) {
				r.key = "" // deleted since the listing
				return nil
			}
			if err != nil {
				return err
			}
			var rec runlog.Record
			if state.Decode(data, &rec) != nil {
				return nil // unreadable: aged by the object's time
			}
			r.rec = &rec
			if !rec.StartedAt.IsZero() {
				r.started = rec.StartedAt
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	recs = slices.DeleteFunc(recs, func(r *runRecord) bool { return r.key == "" })
	// The newest readable record of each job and of each scheduled job
	// stays, so that history shows every job's last run.
	newer := func(a, b *runRecord) bool {
		return cmp.Or(a.started.Compare(b.started), strings.Compare(a.runID, b.runID)) > 0
	}
	newest := map[string]*runRecord{}
	for _, r := range recs {
		if r.rec == nil {
			continue
		}
		names := []string{"job:" + r.job}
		if r.rec.Schedule != nil {
			names = append(names, "schedule:"+r.rec.Schedule.Job)
		}
		for _, n := range names {
			if cur := newest[n]; cur == nil || newer(r, cur) {
				newest[n] = r
			}
		}
	}
	keep := map[*runRecord]bool{}
	for _, r := range newest {
		keep[r] = true
	}
	var running []*runlog.Record
	for _, r := range recs {
		if r.started.Before(k.Before) && !keep[r] && r.rec != nil && r.rec.Outcome == runlog.Running {
			running = append(running, r.rec)
		}
	}
	log := runlog.New(c.out)
	log.Now = c.a.now
	if err := log.Resolve(ctx, running); err != nil {
		return err
	}
	for _, r := range recs {
		switch {
		case !r.started.Before(k.Before):
		case keep[r] || (r.rec != nil && r.rec.Outcome == runlog.Running):
			k.Kept++
		default:
			if err := c.delete(ctx, c.out, r.key); err != nil {
				return err
			}
			k.add(r.key, 1)
		}
	}
	return nil
}

// slots deletes the settled-slot records of the schedule's ledger whose
// slot is before k.Before and before its job's watermark: the scheduler
// reads only the slots after the watermark. A job without a watermark
// keeps its slots.
func (c *collector) slots(ctx context.Context, k *GCKind) error {
	objs, err := c.out.List(ctx, state.SchedulePrefix)
	if err != nil {
		return err
	}
	ledger := scheduler.NewStoreLedger(c.out)
	watermarks := map[string]time.Time{}
	for _, o := range objs {
		job, slot, ok := state.SlotEntry(o.Key)
		if !ok || !slot.Before(k.Before) {
			continue
		}
		wm, seen := watermarks[job]
		if !seen {
			if wm, err = ledger.Watermark(ctx, job); err != nil {
				return err
			}
			watermarks[job] = wm
		}
		if !slot.Before(wm) {
			k.Kept++
			continue
		}
		if err := c.delete(ctx, c.out, o.Key); err != nil {
			return err
		}
		k.add(o.Key, 1)
	}
	return nil
}

// staging deletes the staging of runs that will not publish from it and
// to which nothing was written since k.Before (table.Publisher.OldStaging).
// Besides a commit record not yet done, a run's staging is kept while a
// live lease names the run, while a lease holds its fenced commit (the
// next holder writes the record and publishes), and while a sharded
// backfill's plan stages under its id.
func (c *collector) staging(ctx context.Context, k *GCKind) error {
	keep, err := c.stagingInUse(ctx)
	if err != nil {
		return err
	}
	old, kept, err := c.pub.OldStaging(ctx, k.Before, func(id string) bool { return keep[id] })
	if err != nil {
		return err
	}
	k.Kept = len(kept)
	for _, run := range old {
		n := run.Objects
		if !c.dry {
			if n, err = c.pub.CollectStaging(ctx, run.RunID, k.Before); err != nil {
				return err
			}
			if n == 0 {
				k.Kept++ // written to or committed since it was listed
				continue
			}
		}
		k.add(state.RunStagingPrefix(run.RunID), n)
	}
	return nil
}

// stagingInUse returns the run ids whose staging a lease or a shard plan
// names.
func (c *collector) stagingInUse(ctx context.Context) (map[string]bool, error) {
	inUse := map[string]bool{}
	leases, err := c.out.List(ctx, state.LeasesPrefix)
	if err != nil {
		return nil, err
	}
	for _, o := range leases {
		name, ok := state.LeaseName(o.Key)
		if !ok {
			continue
		}
		info, err := lease.Peek(ctx, c.out, name)
		if errors.Is(err, store.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if info.RunID != "" && !info.Released && c.now.Before(info.ExpiresAt) {
			inUse[info.RunID] = true
		}
		if id, done, ok := state.CommitLogEntry(info.PendingKey); ok && !done {
			inUse[id] = true
		}
	}
	shards, err := c.out.List(ctx, state.ShardsPrefix)
	if err != nil {
		return nil, err
	}
	for _, o := range shards {
		if _, ok := state.ShardPlanJob(o.Key); !ok {
			continue
		}
		data, err := state.Read(ctx, c.out, o.Key)
		if errors.Is(err, store.ErrNotExist) {
			continue // finished and cleaned up since the listing
		}
		if err != nil {
			return nil, err
		}
		var plan struct {
			ID string `json:"id"`
		}
		if err := state.Decode(data, &plan); err != nil || plan.ID == "" {
			return nil, fmt.Errorf("read shard plan %s: %w: %w", c.out.URI(o.Key), table.ErrCorrupt, cmp.Or(err, errors.New("no id")))
		}
		inUse[plan.ID] = true
	}
	return inUse, nil
}

// archive deletes the archived commit records (and done markers) archived
// before k.Before (table.Publisher.OldArchive).
func (c *collector) archive(ctx context.Context, k *GCKind) error {
	old, err := c.pub.OldArchive(ctx, k.Before)
	if err != nil {
		return err
	}
	for _, ac := range old {
		if !c.dry {
			if err := c.pub.DeleteArchived(ctx, ac); err != nil {
				return err
			}
		}
		k.add(ac.Keys[0], len(ac.Keys))
	}
	return nil
}

// queue archives or deletes the queued files uploaded before k.Before that
// a done queue run consumed with the generation they have now: listed,
// with that generation, both in the ledger (Consumed) and in the latest
// checkpoint's (Checkpointed, after writing one that covers every commit
// it can), so that the ledger needs no commit record to know it. A file archived is copied (create-if-absent, from the
// consumed generation), then deleted only if a Stat still shows that
// generation.
func (c *collector) queue(ctx context.Context, k *GCKind) error {
	cfg := c.a.cfg
	k.Action = cfg.Retention.QueueAction
	dir := strings.TrimSuffix(cfg.Queue.Dir, "/") + "/"
	archiveDir := strings.TrimSuffix(cfg.Retention.QueueArchiveDir, "/")
	if k.Action == QueueArchive {
		k.To = c.in.URI(archiveDir + "/")
	}
	if !c.dry {
		// Cover every commit that can be covered now, not only every
		// DefaultCheckpointEvery: a queue run a day would otherwise keep
		// about that many days of files whatever queue_days says. (A dry
		// run writes nothing, so it reports only files already covered.)
		if _, err := c.pub.Checkpoint(ctx, 1, nil); err != nil {
			return err
		}
	}
	checkpointed, err := c.pub.Checkpointed(ctx, jobs.JobQueue)
	if err != nil {
		return err
	}
	consumed, err := c.pub.Consumed(ctx, jobs.JobQueue)
	if err != nil {
		return err
	}
	objs, err := c.in.List(ctx, dir)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if !o.Updated.Before(k.Before) {
			continue
		}
		cp, inCheckpoint := checkpointed[o.Key]
		led, inLedger := consumed[o.Key]
		if !inCheckpoint || !inLedger || cp.Generation != o.Generation || led.Generation != o.Generation {
			k.Kept++ // not consumed, not checkpointed yet, or changed since
			continue
		}
		if k.Action == QueueArchive {
			dst := store.Join(archiveDir, strings.TrimPrefix(o.Key, dir))
			switch res, err := c.archiveQueued(ctx, o, dst); {
			case err != nil:
				return err
			case res == queueChanged:
				k.Kept++ // rewritten or deleted since the listing
				continue
			case res == queueConflict:
				k.Kept++
				if len(k.Conflicts) < GCKeysShown {
					k.Conflicts = append(k.Conflicts, o.Key)
				}
				c.a.log.Warn("gc: queue file kept: the archive holds another object under its name", "file", c.in.URI(o.Key), "archive", c.in.URI(dst))
				continue
			}
		}
		if !c.dry {
			info, err := c.in.Stat(ctx, o.Key)
			if errors.Is(err, store.ErrNotExist) {
				continue // gone since the listing
			}
			if err != nil {
				return err
			}
			if info.Generation != o.Generation {
				k.Kept++ // rewritten since the listing: new work
				continue
			}
			if err := c.delete(ctx, c.in, o.Key); err != nil {
				return err
			}
		}
		k.add(o.Key, 1)
	}
	return nil
}

// Outcomes of archiveQueued.
const (
	queueCopied   = iota // the archive holds the file now (copied now or before)
	queueConflict        // the archive holds another object under its name
	queueChanged         // the file was rewritten or deleted since the listing
)

// archiveQueued copies a queued file, the generation listed, to dst unless
// dst holds it already. In a dry run it only looks.
func (c *collector) archiveQueued(ctx context.Context, o store.ObjectInfo, dst string) (int, error) {
	if c.dry {
		_, err := c.in.Stat(ctx, dst)
		if errors.Is(err, store.ErrNotExist) {
			return queueCopied, nil
		} else if err != nil {
			return 0, err
		}
	} else {
		err := c.in.Copy(ctx, o.Key, dst, store.WriteOptions{IfAbsent: true, SourceGeneration: o.Generation})
		switch {
		case err == nil:
			return queueCopied, nil
		case errors.Is(err, store.ErrNotExist):
			return queueChanged, nil
		case !errors.Is(err, store.ErrPrecondition):
			return 0, fmt.Errorf("archive %s: %w", c.in.URI(o.Key), err)
		}
	}
	// dst exists: copied by a GC that stopped before deleting, or another
	// file of the same name.
	same, err := c.sameObject(ctx, o, dst)
	switch {
	case errors.Is(err, store.ErrNotExist):
		return queueChanged, nil // o replaced (or dst deleted) meanwhile
	case err != nil:
		return 0, err
	case !same:
		return queueConflict, nil
	}
	return queueCopied, nil
}

// sameObject reports whether dst holds the bytes of generation
// o.Generation of o.Key: same size, and the same CRC32C where the store
// keeps them, else the same bytes.
func (c *collector) sameObject(ctx context.Context, o store.ObjectInfo, dst string) (bool, error) {
	d, err := c.in.Stat(ctx, dst)
	if err != nil {
		return false, err
	}
	if d.Size != o.Size {
		return false, nil
	}
	if d.CRC32C != 0 && o.CRC32C != 0 {
		return d.CRC32C == o.CRC32C, nil
	}
	src, err := c.in.NewReader(ctx, o.Key, o.Generation)
	if err != nil {
		return false, err
	}
	defer func() { _ = src.Close() }() // read only
	cp, err := c.in.NewReader(ctx, dst, d.Generation)
	if err != nil {
		return false, err
	}
	defer func() { _ = cp.Close() }() // read only
	return sameBytes(src, cp)
}

// sameBytes compares two streams.
func sameBytes(a, b io.Reader) (bool, error) {
	bufA, bufB := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, errA := io.ReadFull(a, bufA)
		nb, errB := io.ReadFull(b, bufB)
		if !bytes.Equal(bufA[:na], bufB[:nb]) {
			return false, nil
		}
		endA := errors.Is(errA, io.EOF) || errors.Is(errA, io.ErrUnexpectedEOF)
		endB := errors.Is(errB, io.EOF) || errors.Is(errB, io.ErrUnexpectedEOF)
		switch {
		case errA != nil && !endA:
			return false, errA
		case errB != nil && !endB:
			return false, errB
		case endA || endB:
			return endA == endB, nil
		}
	}
}

// delete deletes an object unless this is a dry run; an object already
// gone is fine.
func (c *collector) delete(ctx context.Context, b store.Bucket, key string) error {
	if c.dry {
		return nil
	}
	if err := state.DeleteIfExists(ctx, b, key); err != nil {
		return fmt.Errorf("delete %s: %w", b.URI(key), err)
	}
	return nil
}
