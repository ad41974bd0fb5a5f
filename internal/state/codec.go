package state

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Format versions of the versioned records. A reader refuses a record whose
// version is newer than the one it knows (DecodeVersioned).
const (
	// CommitFormat is the format of commit records (and of the manifests
	// the table protocol writes beside the data).
	CommitFormat = 1
	// RunFormat is the format of run records.
	RunFormat = 1
)

// ErrNewerFormat means a record was written by a newer build, in a format
// version this one does not know.
var ErrNewerFormat = errors.New("newer format version")

// Encode returns a record's stored bytes: indented JSON (two spaces), the
// layout of commit records, manifests, run records, shard plans and records,
// and the schedule ledger. The same value always gives the same bytes, which
// CreateOrSame relies on.
func Encode(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }

// EncodeCompact returns a small record's stored bytes on one line: the
// layout of leases, staging markers, done markers and _SUCCESS.
func EncodeCompact(v any) ([]byte, error) { return json.Marshal(v) }

// Decode decodes a record's stored bytes into v.
func Decode(data []byte, v any) error { return json.Unmarshal(data, v) }

// DecodeVersioned decodes a record that carries a format_version field into
// v and returns its version. A version newer than known is an error
// wrapping ErrNewerFormat (v is filled all the same).
func DecodeVersioned(data []byte, v any, known int) (int, error) {
	if err := json.Unmarshal(data, v); err != nil {
		return 0, err
	}
	var h struct {
		FormatVersion int `json:"format_version"`
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return 0, err
	}
	if h.FormatVersion > known {
		return h.FormatVersion, fmt.Errorf("%w: format version %d, this build knows up to %d", ErrNewerFormat, h.FormatVersion, known)
	}
	return h.FormatVersion, nil
}
