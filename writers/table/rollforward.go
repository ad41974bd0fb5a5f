package table

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
)

// RollForwardJob rolls forward the committed runs of one job ("" = every
// job) that are not done, oldest first, and returns their ids. Unlike
// RecoverJob it deletes no staging but that of the runs it publishes, so
// the holder of a job's lease may call it while runs of the job's shards
// are staging. The caller holds the job's lease (Options.Guard checks it).
func (p *Publisher) RollForwardJob(ctx context.Context, job string) ([]string, error) {
	return p.rollForwardJob(ctx, job)
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
	if done, err := state.Exists(ctx, p.bucket, state.DoneKey(id)); err != nil || done {
		return err // done: finished by another attempt (a stalled one woke up)
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
		if err := p.writeManifestList(ctx, id, o); err != nil {
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
		data, _ := state.EncodeCompact(Success{RunID: id, CommittedAt: rec.CommittedAt})
		key := PartitionPrefix(o.Table, o.Partition) + SuccessName
		if err := p.step(ctx, func() error {
			_, err := state.Put(ctx, p.bucket, key, data)
			return err
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
	data, _ := state.EncodeCompact(Done{RunID: id, DoneAt: p.now()})
	if err := p.step(ctx, func() error {
		_, err := state.Put(ctx, p.bucket, state.DoneKey(id), data)
		return err
	}); err != nil {
		return err
	}
	if err := p.hook(PointAfterDone); err != nil {
		return err
	}
	return p.deleteStaging(ctx, id)
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

// copyPart copies one staged part to its final name, IfAbsent. A final
// object that already exists with our size and sha256 is our own earlier
// attempt; anything else there is a conflict.
func (p *Publisher) copyPart(ctx context.Context, id string, o OutputRecord, f FileEntry) error {
	src := state.StagedKey(id, o.Table, o.Partition, f.Name)
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
	defer func() { _ = r.Close() }() // read only: nothing to lose
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
	data, gen, err := state.ReadGen(ctx, p.bucket, key)
	if err != nil || gen == 0 {
		return nil, 0, err
	}
	var m Manifest
	if _, err := state.DecodeVersioned(data, &m, FormatVersion); err != nil {
		return nil, 0, fmt.Errorf("read %s: %w: %w", p.bucket.URI(key), ErrCorrupt, err)
	}
	return &m, gen, nil
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
	data, err := state.Encode(m)
	if err != nil {
		return fmt.Errorf("write %s: %w", p.bucket.URI(key), err)
	}
	if _, err := state.Swap(ctx, p.bucket, key, data, gen); err != nil {
		if errors.Is(err, store.ErrPrecondition) {
			return fmt.Errorf("write %s: %w: manifest changed while publishing: %w", p.bucket.URI(key), ErrConflict, err)
		}
		return err
	}
	return nil
}

// writeManifestList writes a partition's _manifest.txt from its
// _manifest.json, if that is this run's: the full URI of every file it
// lists, one per line. Written after the manifest and before any file the
// previous manifest listed is deleted, so the list always names one
// complete set of existing files: the previous one until here, this run's
// after. A repeated roll forward writes the same bytes again.
func (p *Publisher) writeManifestList(ctx context.Context, id string, o OutputRecord) error {
	m, _, err := p.readManifest(ctx, o.Table, o.Partition)
	if err != nil {
		return err
	}
	if m == nil || m.RunID != id {
		return nil // another run's manifest now: the list is that run's to write
	}
	var b strings.Builder
	for _, f := range m.Files {
		b.WriteString(p.bucket.URI(finalKey(o.Table, o.Partition, f.Name)))
		b.WriteByte('\n')
	}
	key := PartitionPrefix(o.Table, o.Partition) + ManifestListName
	return p.step(ctx, func() error {
		if _, err := store.Put(ctx, p.bucket, key, []byte(b.String()), store.WriteOptions{ContentType: "text/plain; charset=utf-8"}); err != nil {
			return fmt.Errorf("write %s: %w", p.bucket.URI(key), err)
		}
		return nil
	})
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
	keep := map[string]bool{ManifestName: true, ManifestListName: true, SuccessName: true}
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
