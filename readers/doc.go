// Package readers turns stored bytes into Arrow records: ad dumps (CSV or
// TSV, maybe gzipped), queued requests (JSON Lines) and Parquet tables are
// streamed from a store.Bucket into arrow.RecordBatch batches of a target schema.
//
// The package owns the *how* (formats and type conversion), never the
// *where*: files come from any store.Bucket (a local folder, GCS), so every
// format works on every store.
//
// # Use
//
// Open takes the files (as listed by the bucket) and Options; the returned
// Reader is a Source: Read returns records until io.EOF, the caller releases
// each record, Close stops everything. Several files are decoded at once
// (Options.Concurrency); their records interleave, and each record names its
// file in its schema metadata (SourceFile). After io.EOF, Files gives the
// per-file accounting for the run ledger (rows, bad rows, size and the CRC32C
// of the stored bytes, as GCS reports it); BytesRead gives progress from any
// goroutine. Memory is bounded by BatchSize × Concurrency, whatever the file
// sizes: files are streamed, never read whole.
//
// # Formats
//
// The format comes from the key's extension, case ignored:
//
//	.csv                 comma-separated text, quoted as RFC 4180 (encoding/csv's
//	                     rules, read by a faster scanner of this package)
//	.tsv                 tab-separated text, same rules
//	.jsonl .ndjson .json one JSON object per line; blank lines are skipped
//	.parquet             Parquet, flat columns of any physical type
//	.gz after a text one gzip-compressed (e.g. ads.csv.gz)
//
// Any other extension is an error wrapping ErrBadInput, given by Open. A
// UTF-8 byte order mark at the start of a text file is skipped. CSV and TSV
// files have a header line naming the columns unless CSVOptions.ColumnNames
// is set with Header false (for headerless files such as Criteo's TSV).
// Columns are matched to the target schema by name; extra input columns or
// JSON members are ignored. A target column missing from a CSV/TSV header
// (or CSVOptions.ColumnNames) or a Parquet schema makes the file bad input,
// unless Options.Optional names it: then it reads null in every row of that
// file (labels that some inputs carry and others do not). A JSON object may
// leave out any nullable member, Optional or not (see Nulls below). Parquet
// objects are read in ranges (the footer, then the column chunks of the
// target columns), pinned to the generation listed, without a temporary
// file.
//
// # Types
//
// Target fields may be utf8, float64, int64 or timestamp[us, tz=UTC]:
//
//   - utf8 (ids, categoricals): text as is; in CSV "123" is the string
//     "123". A JSON number gives its literal text (ids sent as numbers); a
//     Parquet integer, float or boolean gives its decimal text. Must be
//     valid UTF-8.
//   - float64 (features, labels): decimal text such as "260.0", "-1",
//     "1e3" (surrounding spaces ignored); a JSON number, or a JSON string
//     holding one; any Parquet integer (decimals scaled), float, double or
//     boolean (0/1), or byte array holding a number. NaN and infinities are
//     bad values.
//   - int64 (integer ids): a decimal integer such as "12" or "-3"
//     (surrounding spaces ignored), or a number written otherwise whose
//     value is whole ("12.0", "1e3": tools write integer columns with
//     missing values as floats); a JSON number, or a JSON string holding
//     one; any Parquet integer (a decimal if its value is whole), a float
//     or double holding an integer, a boolean (0/1), or a byte array
//     holding an integer. "12.5" and "abc" are bad values ("not an
//     integer"), as is a value beyond int64. Options.Ranges can bound a
//     field: a value outside its range is a bad value too, with a reason
//     such as: feature "C1" id 57 out of range [0, 50).
//   - timestamp: RFC 3339 ("2020-09-02T10:00:00Z", any offset, converted to
//     UTC), "2006-01-02 15:04:05" or "2006-01-02T15:04:05" (read as UTC,
//     fractional seconds allowed), or a plain number of Unix seconds (text or
//     JSON number, fractions allowed). Parquet TIMESTAMP (milli, micro,
//     nano), DATE and INT96 columns keep their meaning; plain Parquet numbers
//     are Unix seconds.
//
// Nulls: in CSV/TSV the CSVOptions.NullValues ("", "NA", "null", "?" by
// default); in JSON null or a missing member; in Parquet a null; in
// CSV/TSV and Parquet, every row of a column of Options.Optional that the
// file lacks. A null where the field is not nullable (Nullable false, e.g.
// ids), or an empty string there, makes the row bad ("missing required
// value").
//
// # Errors
//
// A row that cannot be converted is a bad row, described by a RowError (file
// key, 1-based data row, the line for text files, column, value, reason):
//
//	queue/2020-09-02.jsonl: row 17: column "price": not a number ("abc")
//
// Besides bad values, a CSV row with the wrong number of fields, a CSV row
// with broken quoting, and a JSONL line that is not a JSON object are bad
// rows. Options.OnBadRow decides: nil drops the row (counted in
// FileStat.BadRows) and reading goes on, an error stops reading and Read
// returns it. Without OnBadRow, Read returns the RowError itself. RowError
// wraps ErrBadInput.
//
// Problems with a file as a whole (unknown format, truncated or corrupt
// gzip, corrupt Parquet, a target column missing from the CSV header or the
// Parquet schema and not in Options.Optional, an empty CSV file, a quoted
// CSV field still open at the end of the file, a line over 64 MiB) stop
// reading with an error that wraps ErrBadInput and names the file ("read
// <uri>: bad input: ..."), with the line or column where known. Retrying
// those will not help.
//
// Errors of the store (opening or reading an object) are returned wrapped
// with the file's URI and never wrap ErrBadInput: they may be retried.
// The first error of any file cancels the others; Read returns it.
package readers
