// Package writers turns Arrow records into Parquet parts in an object
// store: the encoder, and nothing else. What those parts become (a staged
// run, a committed and published table partition) is writers/table's job.
//
// # Parquet
//
// PartWriter writes arrow.RecordBatch batches as Parquet via parquet-go: utf8 →
// BYTE_ARRAY (STRING) dictionary-encoded; float32 → FLOAT; float64 → DOUBLE;
// int64 → INT64; timestamp[us, UTC] → INT64 TIMESTAMP(MICROS,
// isAdjustedToUTC=true). Nullable fields are OPTIONAL, others REQUIRED.
// Pages are zstd, data page v1, with chunk and page statistics and a page
// index. Columns keep the record's order, then the Constant columns (model
// name and version, run id, scored_at...) that the run appends to every row.
// Row groups hold RowGroupRows rows (default 128Ki); a new part object is
// started every PartRows rows (default 1M). An output that received no rows
// gets one zero-row part, so its schema is readable and table globs match.
//
// # Contract and failure semantics
//
// A part object is written with create-if-absent under the key the caller
// names, and appears whole on a successful store write or not at all: a
// reader never sees a torn part. PartWriter.Close returns every part with
// its rows, bytes and SHA-256, which the table protocol records. An error
// from Write or Close is sticky in effect: the part being written is
// aborted (nothing appears under its key), while parts already complete
// stay in the bucket; the caller owns their keys and deletes them (the
// table protocol writes parts into a run's staging, which it discards as a
// whole). Output bytes are deterministic for the same records and
// configuration (key/value metadata is written in sorted key order), but
// embed the encoder's version: compare parts by decoded rows, not bytes.
//
// Errors wrap the sentinels in errors.go (ErrUnsupportedType,
// ErrSchemaMismatch, ErrNullInRequired, ErrInvalidName, ErrClosed); test
// them with errors.Is.
package writers
