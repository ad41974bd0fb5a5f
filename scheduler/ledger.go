package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

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

// LedgerPrefix is where StoreLedger keeps its objects in a store.
const LedgerPrefix = "_scorer/schedule/"

// StoreLedger keeps a Ledger in a store: per job, a watermark object
// (_scorer/schedule/<job>/watermark.json) and one object per settled slot
// (_scorer/schedule/<job>/slots/<slot, UTC>.json, written create-if-absent).
type StoreLedger struct {
	b store.Bucket
}

// NewStoreLedger returns a ledger kept in b.
func NewStoreLedger(b store.Bucket) *StoreLedger { return &StoreLedger{b: b} }

const slotKeyLayout = "20060102T150405Z"

func watermarkKey(job string) string { return LedgerPrefix + job + "/watermark.json" }

func slotsPrefix(job string) string { return LedgerPrefix + job + "/slots/" }

// SlotKey is the key of a settled slot's record.
func SlotKey(job string, slot time.Time) string {
	return slotsPrefix(job) + slot.UTC().Format(slotKeyLayout) + ".json"
}

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
	objs, err := l.b.List(ctx, slotsPrefix(job))
	if err != nil {
		return st, fmt.Errorf("ledger %s: %w", job, err)
	}
	for _, o := range objs {
		name := strings.TrimSuffix(path.Base(o.Key), ".json")
		t, err := time.Parse(slotKeyLayout, name)
		if err != nil {
			continue // not a slot record
		}
		if t.After(st.Watermark) {
			st.Settled = append(st.Settled, t)
		}
	}
	slices.SortFunc(st.Settled, time.Time.Compare)
	return st, nil
}

func (l *StoreLedger) readWatermark(ctx context.Context, job string) (time.Time, int64, error) {
	st, err := l.b.Stat(ctx, watermarkKey(job))
	if errors.Is(err, store.ErrNotExist) {
		return time.Time{}, 0, nil
	}
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("ledger %s: %w", job, err)
	}
	r, err := l.b.NewReader(ctx, st.Key, st.Generation)
	if errors.Is(err, store.ErrNotExist) {
		return l.readWatermark(ctx, job) // replaced meanwhile
	}
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("ledger %s: %w", job, err)
	}
	defer func() { _ = r.Close() }()
	var w watermark
	if err := json.NewDecoder(r).Decode(&w); err != nil {
		return time.Time{}, 0, fmt.Errorf("ledger %s: read %s: %w", job, l.b.URI(st.Key), err)
	}
	return w.Watermark, st.Generation, nil
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
		data, err := json.MarshalIndent(watermark{Job: job, Watermark: t}, "", "  ")
		if err != nil {
			return err
		}
		opts := store.WriteOptions{IfGeneration: gen, ContentType: "application/json"}
		if gen == 0 {
			opts = store.WriteOptions{IfAbsent: true, ContentType: "application/json"}
		}
		err = store.WriteAll(ctx, l.b, watermarkKey(job), data, opts)
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
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	err = store.WriteAll(ctx, l.b, SlotKey(r.Job, r.Slot), data, store.WriteOptions{IfAbsent: true, ContentType: "application/json"})
	if err != nil && !errors.Is(err, store.ErrPrecondition) {
		return fmt.Errorf("ledger %s: settle %s: %w", r.Job, r.Slot.Format(time.RFC3339), err)
	}
	return nil
}

// Settled implements Ledger.
func (l *StoreLedger) Settled(ctx context.Context, job string, slot time.Time) (bool, error) {
	_, err := l.b.Stat(ctx, SlotKey(job, slot))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("ledger %s: %w", job, err)
	}
}

// ReadSlot returns a settled slot's record, or an error wrapping
// store.ErrNotExist.
func (l *StoreLedger) ReadSlot(ctx context.Context, job string, slot time.Time) (SlotRecord, error) {
	var r SlotRecord
	data, err := store.ReadAll(ctx, l.b, SlotKey(job, slot))
	if err != nil {
		return r, err
	}
	err = json.Unmarshal(data, &r)
	return r, err
}
