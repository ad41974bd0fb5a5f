package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
)

// Current returns a model's alias: its current version and the event that
// set it; nil, nil when the model was never promoted (or does not exist).
func (r *Registry) Current(ctx context.Context, name string) (*Alias, error) {
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("read current version: %w: %w", ErrInvalidRef, err)
	}
	a, _, err := r.readAlias(ctx, name)
	return a, err
}

// Events returns a model's event log, oldest first: every promotion and
// rollback that took effect, and nothing else. The event of the latest
// change is taken from the alias when its record is not written yet (a
// Promote or Rollback stopped between its two writes; the next one writes
// it). A model never promoted has no events.
func (r *Registry) Events(ctx context.Context, name string) ([]Event, error) {
	op := fmt.Sprintf("read events of %q", name)
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", op, ErrInvalidRef, err)
	}
	// The alias first: every event up to its Event but the last one is
	// written before the alias moves on, so the listing below holds them.
	cur, _, err := r.readAlias(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	objs, err := r.b.List(ctx, eventsPrefix(name))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	var events []Event
	seen := map[int]bool{}
	for _, o := range objs {
		seq, ok := seqOf(name, o.Key)
		if !ok {
			continue
		}
		data, err := state.Read(ctx, r.b, o.Key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		var e Event
		if _, err := state.DecodeVersioned(data, &e, FormatVersion); err != nil {
			return nil, fmt.Errorf("%s: decode %s: %w", op, r.b.URI(o.Key), err)
		}
		if e.Seq != seq || e.Name != name {
			return nil, fmt.Errorf("%s: %s holds event %d of model %q", op, r.b.URI(o.Key), e.Seq, e.Name)
		}
		events = append(events, e)
		seen[seq] = true
	}
	if cur != nil && !seen[cur.Event] {
		events = append(events, eventOf(cur))
	}
	slices.SortFunc(events, func(a, b Event) int { return a.Seq - b.Seq })
	return events, nil
}

// Promote makes version the current version of a model: a compare-and-swap
// of current.json on the generation read, then the event's record. ev
// gives By, Reason, Forced, Evidence and optionally At; the registry fills
// the rest. The version must exist (ErrNotFound). If the alias changed
// between reading and swapping it, nothing is changed and the error wraps
// ErrConflict, naming the version current before and now. Promoting the
// current version changes nothing and returns the alias as it is (a
// retried Promote is harmless).
//
// Whether a challenger may replace the champion is the caller's decision,
// recorded by Forced and Evidence; Promote does not evaluate anything.
func (r *Registry) Promote(ctx context.Context, name, version string, ev Event) (*Alias, error) {
	op := "promote " + Ref{Name: name, Version: version}.String()
	if err := checkVersion(version); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", op, ErrInvalidRef, err)
	}
	return r.move(ctx, op, "promoting", ActionPromote, name, ev, true, func(*Alias) (string, error) {
		return version, nil
	})
}

// Rollback makes the version current before the present one current again
// (the alias's Previous), with an event of action "rollback". A model with
// none (never promoted, or promoted once) is an error wrapping
// ErrNoPrevious. The version rolled back from becomes Previous, so a second
// Rollback returns to it. A concurrent change is an error wrapping
// ErrConflict, as for Promote.
func (r *Registry) Rollback(ctx context.Context, name string, ev Event) (*Alias, error) {
	op := fmt.Sprintf("roll back %q", name)
	return r.move(ctx, op, "rolling back", ActionRollback, name, ev, true, func(cur *Alias) (string, error) {
		switch {
		case cur == nil:
			return "", fmt.Errorf("%w: model %q has no current version", ErrNoPrevious, name)
		case cur.Previous == "":
			return "", fmt.Errorf("%w: model %q has had only one current version, %q", ErrNoPrevious, name, cur.Version)
		}
		return cur.Previous, nil
	})
}

// move is Promote and Rollback: target picks the new version from the
// alias read. With record false it stops after swapping the alias, as a
// crash would (for tests).
func (r *Registry) move(ctx context.Context, op, doing, action, name string, ev Event, record bool, target func(cur *Alias) (string, error)) (*Alias, error) {
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", op, ErrInvalidRef, err)
	}
	if len(ev.Evidence) > 0 && !json.Valid(ev.Evidence) {
		return nil, fmt.Errorf("%s: evidence is not valid JSON", op)
	}
	cur, gen, err := r.readAlias(ctx, name)
	if errors.Is(err, state.ErrReplaced) {
		// Replaced at every read: other changes are racing this one.
		return nil, fmt.Errorf("%s: %w: the alias kept changing while it was read: %w", op, ErrConflict, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	to, err := target(cur)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	next := Alias{
		Format: FormatVersion, Name: name, Version: to, Event: 1,
		UpdatedAt: ev.At, By: ev.By, Reason: ev.Reason,
		Action: action, Forced: ev.Forced, Evidence: ev.Evidence,
	}
	if cur != nil {
		// The event of the change that set cur, if that call stopped before
		// writing it: once the alias moves on, only cur has it.
		if err := r.record(ctx, cur); err != nil {
			return nil, fmt.Errorf("%s: write event %d, of the previous change: %w", op, cur.Event, err)
		}
		if cur.Version == to {
			return cur, nil
		}
		next.Previous, next.Event = cur.Version, cur.Event+1
	}
	if ok, err := state.Exists(ctx, r.b, modelKey(name, to)); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	} else if !ok {
		return nil, fmt.Errorf("%s: %w: model %q has no version %q", op, ErrNotFound, name, to)
	}
	if next.UpdatedAt.IsZero() {
		next.UpdatedAt = time.Now()
	}
	next.UpdatedAt = next.UpdatedAt.UTC()
	data, err := state.Encode(next)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if _, err := state.Swap(ctx, r.b, aliasKey(name), data, gen); err != nil {
		if !errors.Is(err, store.ErrPrecondition) && !errors.Is(err, store.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		was, now := "(none)", "(unknown)"
		if cur != nil {
			was = cur.Version
		}
		if a, _, err := r.readAlias(ctx, name); err == nil {
			now = "(none)"
			if a != nil {
				now = a.Version
			}
		}
		return nil, fmt.Errorf("%s: %w: current changed while %s: was %q, now %q; retry", op, ErrConflict, doing, was, now)
	}
	// The alias as stored, as the next call will read it and write its
	// event if this one stops here.
	a, err := decodeAlias(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if record {
		// The change took effect with the swap: a failure to write its
		// event is not the caller's to handle (a retried Rollback would
		// roll back again). The next Promote or Rollback writes it, and
		// Events reports it meanwhile.
		_ = r.record(ctx, a)
	}
	return a, nil
}

// record writes the event that set an alias, unless written already. Only
// the alias with that Event number, which compare-and-swap makes unique,
// gives the event, so an existing record is this one.
func (r *Registry) record(ctx context.Context, a *Alias) error {
	data, err := state.Encode(eventOf(a))
	if err != nil {
		return err
	}
	if _, err := state.Create(ctx, r.b, eventKey(a.Name, a.Event), data); err != nil && !errors.Is(err, store.ErrPrecondition) {
		return err
	}
	return nil
}

// readAlias reads a model's alias with its generation; nil, 0 when absent.
func (r *Registry) readAlias(ctx context.Context, name string) (*Alias, int64, error) {
	key := aliasKey(name)
	var (
		data []byte
		gen  int64
		err  error
	)
	for range 3 { // replaced between the stat and the read: read the new one
		if data, gen, err = state.ReadGen(ctx, r.b, key); !errors.Is(err, state.ErrReplaced) {
			break
		}
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", r.b.URI(key), err)
	}
	if data == nil {
		return nil, 0, nil
	}
	a, err := decodeAlias(data)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", r.b.URI(key), err)
	}
	if a.Name != name || a.Event < 1 {
		return nil, 0, fmt.Errorf("read %s: holds model %q, event %d", r.b.URI(key), a.Name, a.Event)
	}
	return a, gen, nil
}

// decodeAlias decodes an alias record.
func decodeAlias(data []byte) (*Alias, error) {
	a := &Alias{}
	if _, err := state.DecodeVersioned(data, a, FormatVersion); err != nil {
		return nil, fmt.Errorf("decode alias: %w", err)
	}
	return a, nil
}
