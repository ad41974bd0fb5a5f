package scheduler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
)

// Outcome is how a slot was settled.
type Outcome string

// Outcomes of a settled slot.
const (
	// Succeeded: an attempt succeeded.
	Succeeded Outcome = "succeeded"
	// Failed: the last attempt failed and is not retried: the error is not
	// retryable, or the retries are used up.
	Failed Outcome = "failed"
	// Skipped: the slot did not run: the job was still running when it came
	// due (ErrOverlap), or it was beyond the catch-up limit (ErrCatchUpLimit).
	Skipped Outcome = "skipped"
)

// SlotRecord is a settled slot.
type SlotRecord struct {
	Job       string    `json:"job"`
	Slot      time.Time `json:"slot"`
	Outcome   Outcome   `json:"outcome"`
	Attempts  int       `json:"attempts"`
	Error     string    `json:"error,omitempty"`
	SettledAt time.Time `json:"settled_at"`
}

// JobState is what a ledger knows of a job.
type JobState struct {
	// Watermark: every slot at or before it is settled or forgiven. Zero: the
	// job was never scheduled.
	Watermark time.Time
	// Settled are the settled slots after the watermark, oldest first.
	Settled []time.Time
}

// Ledger is the durable memory of a schedule. Implementations are safe for
// concurrent use; several schedulers (on several machines) may share one.
type Ledger interface {
	// Load returns what the ledger knows of job.
	Load(ctx context.Context, job string) (JobState, error)
	// Advance moves job's watermark forward to t (never back).
	Advance(ctx context.Context, job string, t time.Time) error
	// Settle records a settled slot. A slot settled already keeps its first
	// record, and settling it again is not an error.
	Settle(ctx context.Context, r SlotRecord) error
	// Settled reports whether a slot is settled.
	Settled(ctx context.Context, job string, slot time.Time) (bool, error)
}

// LedgerPrefix is where StoreLedger keeps its objects in a store. The keys
// under it are made by internal/state, which owns the _scorer/ namespace
// (docs/store.md).
const LedgerPrefix = state.SchedulePrefix

// StoreLedger keeps a Ledger in a store: per job, a watermark object
// (_scorer/schedule/<job>/watermark.json) and one object per settled slot
// (_scorer/schedule/<job>/slots/<slot, UTC>.json, written create-if-absent).
type StoreLedger struct {
	b store.Bucket
}

// NewStoreLedger returns a ledger kept in b.
func NewStoreLedger(b store.Bucket) *StoreLedger { return &StoreLedger{b: b} }

type watermark struct {
	Job       string    `json:"job"`
	Watermark time.Time `json:"watermark"`
}

// Load implements Ledger.
func (l *StoreLedger) Load(ctx context.Context, job string) (JobState, error) {
	var st JobState
	wm, _, err := l.readWatermark(ctx, job)
	if err != nil {
		return st, err
	}
	st.Watermark = wm
	objs, err := l.b.List(ctx, state.SlotsPrefix(job))
	if err != nil {
		return st, fmt.Errorf("ledger %s: %w", job, err)
	}
	for _, o := range objs {
		t, ok := state.SlotOf(o.Key)
		if !ok {
			continue // not a slot record
		}
		if t.After(st.Watermark) {
			st.Settled = append(st.Settled, t)
		}
	}
	slices.SortFunc(st.Settled, time.Time.Compare)
	return st, nil
}

// Watermark returns a job's watermark: every slot at or before it is
// settled or forgiven, and Load reads no slot record at or before it. Zero:
// the job has none (it was never scheduled).
func (l *StoreLedger) Watermark(ctx context.Context, job string) (time.Time, error) {
	wm, _, err := l.readWatermark(ctx, job)
	return wm, err
}

func (l *StoreLedger) readWatermark(ctx context.Context, job string) (time.Time, int64, error) {
	key := state.WatermarkKey(job)
	data, gen, err := state.ReadGen(ctx, l.b, key)
	if errors.Is(err, state.ErrReplaced) {
		return l.readWatermark(ctx, job) // replaced meanwhile
	}
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("ledger %s: %w", job, err)
	}
	if gen == 0 {
		return time.Time{}, 0, nil
	}
	var w watermark
	if err := state.Decode(data, &w); err != nil {
		return time.Time{}, 0, fmt.Errorf("ledger %s: read %s: %w", job, l.b.URI(key), err)
	}
	return w.Watermark, gen, nil
}

// Advance implements Ledger with a conditional write, so that two
// schedulers advancing at once keep the later watermark.
func (l *StoreLedger) Advance(ctx context.Context, job string, t time.Time) error {
	for range 10 {
		cur, gen, err := l.readWatermark(ctx, job)
		if err != nil {
			return err
		}
		if !t.After(cur) {
			return nil
		}
		data, err := state.Encode(watermark{Job: job, Watermark: t})
		if err != nil {
			return err
		}
		_, err = state.Swap(ctx, l.b, state.WatermarkKey(job), data, gen)
		if !errors.Is(err, store.ErrPrecondition) {
			if err != nil {
				return fmt.Errorf("ledger %s: advance: %w", job, err)
			}
			return nil
		}
	}
	return fmt.Errorf("ledger %s: advance: the watermark keeps changing", job)
}

// Settle implements Ledger.
func (l *StoreLedger) Settle(ctx context.Context, r SlotRecord) error {
	data, err := state.Encode(r)
	if err != nil {
		return err
	}
	_, err = state.Create(ctx, l.b, state.SlotKey(r.Job, r.Slot), data)
	if err != nil && !errors.Is(err, store.ErrPrecondition) {
		return fmt.Errorf("ledger %s: settle %s: %w", r.Job, r.Slot.Format(time.RFC3339), err)
	}
	return nil
}

// Settled implements Ledger.
func (l *StoreLedger) Settled(ctx context.Context, job string, slot time.Time) (bool, error) {
	ok, err := state.Exists(ctx, l.b, state.SlotKey(job, slot))
	if err != nil {
		return false, fmt.Errorf("ledger %s: %w", job, err)
	}
	return ok, nil
}

// ReadSlot returns a settled slot's record, or an error wrapping
// store.ErrNotExist.
func (l *StoreLedger) ReadSlot(ctx context.Context, job string, slot time.Time) (SlotRecord, error) {
	var r SlotRecord
	data, err := state.Read(ctx, l.b, state.SlotKey(job, slot))
	if err != nil {
		return r, err
	}
	err = state.Decode(data, &r)
	return r, err
}
