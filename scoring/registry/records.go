package registry

import (
	"encoding/json"
	"time"
)

// FormatVersion is the format of the alias and event records. A reader
// refuses a record of a newer format (state.ErrNewerFormat) instead of
// misreading it.
const FormatVersion = 1

// Actions of events.
const (
	ActionPromote  = "promote"
	ActionRollback = "rollback"
)

// Alias is a model's current.json: the version that "models:/<name>@current"
// resolves to, and the event that set it. It carries that event whole
// (Action, By, Reason, Forced, Evidence, UpdatedAt as its time), so that the
// event's record can be written again from the alias if the process that
// swapped the alias stopped before writing it (see the package
// documentation).
type Alias struct {
	Format int    `json:"format_version"`
	Name   string `json:"name"`
	// Version is the current version.
	Version string `json:"version"`
	// Previous is the version that was current before Version ("" for the
	// first promotion); Rollback makes it current again.
	Previous  string    `json:"previous"`
	UpdatedAt time.Time `json:"updated_at"`
	By        string    `json:"by"`
	Reason    string    `json:"reason"`
	// Event is the sequence number of the event that set this alias.
	Event    int             `json:"event"`
	Action   string          `json:"action"`
	Forced   bool            `json:"forced"`
	Evidence json.RawMessage `json:"evidence,omitempty"`
}

// Event is one entry of a model's event log: a promotion or a rollback,
// models/<name>/events/<seq:06d>.json. Sequence numbers start at 1 and
// have no gaps.
//
// A caller of Promote or Rollback fills By, Reason, Forced, Evidence and
// optionally At (the time now when zero); the registry fills the rest.
type Event struct {
	Format int    `json:"format_version"`
	Seq    int    `json:"seq"`
	Action string `json:"action"`
	Name   string `json:"name"`
	// From is the version current before the event ("" for the first
	// promotion), To the one current after it.
	From string    `json:"from"`
	To   string    `json:"to"`
	At   time.Time `json:"at"`
	By   string    `json:"by"`
	// Reason is why, in the caller's words.
	Reason string `json:"reason"`
	// Forced records that the caller promoted against its own gate (for
	// example a challenger that evaluated worse than the champion). The
	// registry does not judge; it records.
	Forced bool `json:"forced"`
	// Evidence is opaque JSON the caller relied on (an evaluation of the
	// challenger against the champion), kept as given.
	Evidence json.RawMessage `json:"evidence,omitempty"`
}

// Version is one version of a model, as Versions lists it.
type Version struct {
	Version string `json:"version"`
	// AddedAt is the time of the version's model.yaml in the store: when
	// Add completed it.
	AddedAt time.Time `json:"added_at"`
	// Current: the alias names this version.
	Current bool `json:"current"`
}

// eventOf is the event that set an alias. It is what Promote and Rollback
// write after swapping the alias, what they write again when an earlier
// call stopped between the two writes, and what Events reports until then.
// Both writers derive it from the alias as stored (decoded from its bytes),
// so they write the same bytes.
func eventOf(a *Alias) Event {
	return Event{
		Format: FormatVersion, Seq: a.Event, Action: a.Action, Name: a.Name,
		From: a.Previous, To: a.Version, At: a.UpdatedAt,
		By: a.By, Reason: a.Reason, Forced: a.Forced, Evidence: a.Evidence,
	}
}
