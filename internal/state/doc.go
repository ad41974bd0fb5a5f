// Package state owns the _scorer/ namespace of an output store: every key,
// the versioned record codecs, the conditional-write helpers.
//
// Everything the scorer keeps about its own work lives under one prefix,
// _scorer/, beside the tables of the output store: the table protocol's
// staging and commit log (writers/table), job leases (internal/lease), run
// records (internal/runlog), shard plans (internal/jobs) and the schedule
// ledger (scheduler). Those packages decide what to write and when; this
// package decides where (the key functions below are the only place a
// _scorer/ key is spelled), how (Encode, EncodeCompact, Decode) and under
// which condition (Create, CreateOrSame, Swap, Put, ReadGen). The full
// layout, with who writes each key and under which condition, is
// docs/store.md.
//
// # Contract
//
// Keys and record bytes are an on-store format: a store written by an
// earlier build must keep working, so a key function or a codec never
// changes what it produces for the same input. Records carry a
// format_version where they may evolve; DecodeVersioned refuses a version
// newer than the reader knows (ErrNewerFormat) instead of misreading it.
//
// # Failure semantics
//
// The helpers use only what every store gives (readers/store): whole-object
// writes, create-if-absent, write-if-generation-matches, and reads pinned to
// a generation. A write that fails its condition returns an error wrapping
// store.ErrPrecondition; a missing object an error wrapping
// store.ErrNotExist. A write whose reply was lost may have been applied: the
// callers that must know (a commit record, a shard record) use
// CreateOrSame, which takes identical bytes already in place as success.
// Nothing here retries or caches; every call is one round trip (two for a
// read with generation).
package state
