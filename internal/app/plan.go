package app

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/writers/table"
)

// Plan is what a run would do, worked out without doing it (a dry run).
type Plan struct {
	Job       string `json:"job"`
	Model     string `json:"model"`
	Table     string `json:"table"`
	Partition string `json:"partition"`
	// PartitionURI is where the output would go.
	PartitionURI string `json:"partition_uri"`
	// Mode: "replace" (a backfill replaces the month's partition as a
	// whole) or "append" (a queue run adds files to the day's partition).
	Mode string `json:"mode"`
	// Existing are the files the partition holds now (replaced by a
	// backfill, kept by a queue run).
	Existing []string `json:"existing"`
	// Shard is "i/N" for one shard of a sharded backfill.
	Shard string `json:"shard,omitempty"`
	// Read are the input files the run would read, in order.
	Read []PlanInput `json:"read"`
	// AlreadyScored are queued files that a committed run consumed (the
	// queue's exactly-once ledger): the run leaves them out.
	AlreadyScored []PlanInput `json:"already_scored"`
	// OtherShards are the month's files other shards would read.
	OtherShards []PlanInput `json:"other_shards,omitempty"`
	// Ignored are keys of unknown formats or hidden files, never read.
	Ignored []string `json:"ignored"`
}

// PlanInput is one input file of a plan.
type PlanInput struct {
	URI  string `json:"uri"`
	Size int64  `json:"size"`
}

// NothingToDo says the run would find nothing to score (an empty queue).
func (p *Plan) NothingToDo() bool { return len(p.Read) == 0 }

// PlanBackfill works out what Backfill would read and replace. It reads the
// stores and the model bundle and writes nothing: no lease, no run record.
func (a *App) PlanBackfill(ctx context.Context, r BackfillRequest) (*Plan, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	o, err := a.Open(ctx)
	if err != nil {
		return nil, err
	}
	p, err := a.plan(ctx, o, a.backfillJob(o, r.Month, r.Shard), "replace")
	if err != nil {
		return p, fmt.Errorf("backfill %s: %w", r.Month, err)
	}
	if len(p.Read) == 0 && len(p.OtherShards) == 0 {
		// As the run itself would fail.
		return p, fmt.Errorf("backfill %s: %w: no input files under %s", r.Month, jobs.ErrBadInput, o.Input.URI(a.backfillJob(o, r.Month, nil).Dir+"/"))
	}
	return p, nil
}

// PlanQueue works out what Queue would read, leaving out the files the
// ledger says were scored. It writes nothing.
func (a *App) PlanQueue(ctx context.Context, r QueueRequest) (*Plan, error) {
	day, err := a.day(r)
	if err != nil {
		return nil, err
	}
	o, err := a.Open(ctx)
	if err != nil {
		return nil, err
	}
	p, err := a.plan(ctx, o, a.queueJob(o, day), "append")
	if err != nil {
		return p, fmt.Errorf("run: %w", err)
	}
	return p, nil
}

func (a *App) plan(ctx context.Context, o *Opened, j jobs.ScoreJob, mode string) (*Plan, error) {
	part := path.Join(j.Table, j.Partition)
	p := &Plan{
		Job: j.Job, Model: o.Bundle.Name + " " + o.Bundle.Version, Table: j.Table, Partition: j.Partition,
		PartitionURI: o.Output.URI(part + "/"), Mode: mode,
		Existing: []string{}, Read: []PlanInput{}, AlreadyScored: []PlanInput{}, Ignored: []string{},
	}
	files, ignored, err := jobs.ListInputs(ctx, o.Input, j.Dir)
	if err != nil {
		return p, err
	}
	p.Ignored = append(p.Ignored, ignored...)
	in := func(f store.ObjectInfo) PlanInput { return PlanInput{URI: o.Input.URI(f.Key), Size: f.Size} }
	var consumed map[string]table.InputFile
	if j.SkipConsumed {
		pub, err := table.NewPublisher(o.Output, table.Options{})
		if err != nil {
			return p, err
		}
		// The same rule as the run's: a file consumed with the same
		// generation was scored; a replaced one is scored again.
		if consumed, err = pub.Consumed(ctx, j.Job); err != nil {
			return p, fmt.Errorf("read the ledger: %w", err)
		}
	}
	for i, f := range files {
		switch c, ok := consumed[f.Key]; {
		case ok && c.Generation == f.Generation:
			p.AlreadyScored = append(p.AlreadyScored, in(f))
		case j.Shard != nil && i%j.Shard.Count != j.Shard.Index:
			p.OtherShards = append(p.OtherShards, in(f))
		default:
			p.Read = append(p.Read, in(f))
		}
	}
	if j.Shard != nil {
		p.Shard = fmt.Sprintf("%d/%d", j.Shard.Index, j.Shard.Count)
	}
	existing, err := o.Output.List(ctx, part+"/")
	if err != nil {
		return p, fmt.Errorf("list %s: %w", p.PartitionURI, err)
	}
	for _, e := range existing {
		if !strings.HasPrefix(path.Base(e.Key), ".") {
			p.Existing = append(p.Existing, e.Key)
		}
	}
	return p, nil
}
