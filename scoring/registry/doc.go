// Package registry keeps model bundles (package bundle) in a store.Bucket,
// a local folder or gs://, by name and version, with one alias per model,
// current: the version that "models:/<name>@current" resolves to, which
// scheduled runs use. It owns the models/ folder of its bucket: every key,
// the alias and event records, and the conditional writes that keep them
// consistent. It does not own _scorer/ (internal/state's), and it does not
// decide whether a version deserves promotion: the caller evaluates,
// decides, and passes its decision (Event.Forced) and what it relied on
// (Event.Evidence) to be recorded.
//
// # References
//
// A model reference is "models:/<name>@current" (the alias, resolved when
// loaded) or "models:/<name>/<version>" (one version), MLflow's URI style;
// ParseRef reads them and reports any other string as not a reference (a
// plain bundle URI). @current is the only alias. Names and versions are
// one key segment each: 1 to 128 ASCII letters, digits, '.', '_' and '-',
// not starting with '.'; a version may not be "current.json" or "events",
// the names of the other objects of a model's folder.
//
// # Layout
//
//	models/<name>/<version>/weights.safetensors  create-if-absent, first: claims the version
//	models/<name>/<version>/reference.json       create-if-absent, second
//	models/<name>/<version>/model.yaml           create-if-absent, last: the version exists
//	models/<name>/current.json                   compare-and-swap on the generation read
//	models/<name>/events/<seq:06d>.json          create-if-absent, once per seq
//
// A version folder is a bundle as bundle.Load reads it, immutable once
// added. current.json (Alias) names the current version, the one before
// it (Previous), and the event that set it, whole. The event log (Event)
// holds every promotion and rollback that took effect, numbered from 1
// without gaps. Records are indented JSON with a format_version
// (FormatVersion); a reader refuses a newer one. The keys and records are
// an on-store format that later builds keep reading.
//
// # Consistency
//
// The registry uses only what every store gives: whole-object writes,
// create-if-absent, and write-if-generation-matches.
//
// Add writes the bundle's bytes (as bundle.Save encodes them) itself: the
// weights create-if-absent, then reference.json and model.yaml
// create-if-absent. Existing
// bytes identical to the bundle's count as written, so a repeated Add, or
// one finishing an Add that stopped half-way, succeeds. Weights that
// differ mean the version is taken, by a complete version or by an Add of
// other content still writing or stopped: ErrVersionExists. Concurrent
// Adds of different weights are decided by the weights (one creates them,
// the others find other bytes); of the same weights and a different
// model.yaml, by model.yaml. Either way exactly one succeeds, and as
// model.yaml only ever appears beside the weights of its own Add, a loaded
// version is always whole: a version without model.yaml is not listed and
// does not load. (bundle.Save itself overwrites, so it would let two
// Adds mix their files; the registry only uses it to encode.)
//
// Promote and Rollback read current.json with its generation, compute the
// new alias (Event one more than the old one's), and swap it in on that
// generation (create-if-absent for the first promotion). The swap is the
// commit point: of concurrent calls exactly one swaps, the others fail with
// ErrConflict and change nothing; no change is ever overwritten unseen.
// Then the winner creates the event record, events/<Event>.json, from the
// alias as stored.
//
// # Crash between the two writes
//
// Alias first, event second. A Promote or Rollback that stops after the
// swap and before the event's record has taken effect: the alias names the
// new version, and the one missing record is that of the alias's own
// Event, which the alias holds whole (action, from = Previous, to =
// Version, at = UpdatedAt, by, reason, forced, evidence). So:
//
//   - Events reports that event from the alias until its record exists;
//   - every Promote and Rollback first writes the record of the alias it
//     read, if missing, before it swaps; once the alias moves on, all
//     earlier records therefore exist;
//   - a failure to write the event after a successful swap is not an error
//     of the call (the change took effect; a retried Rollback would roll
//     back twice); the next call writes it.
//
// Only one alias ever has a given Event number (compare-and-swap), so
// whoever writes a record writes the same event; create-if-absent makes
// the first write the only one. The log never holds an event that did not
// take effect, and there is nothing to clean.
//
// Rollback uses the alias's Previous, not the event log: one read gives it,
// under the same generation the swap is conditioned on, and it does not
// depend on the log's last record being written. The version rolled back
// from becomes Previous, so Rollback twice returns to where it started.
package registry
