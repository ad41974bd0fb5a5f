package readers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/adtech/scorer/readers/store"
)

// Source streams records.
//
// Read returns the next record, or io.EOF once every record has been read;
// the caller owns each record it gets and must Release it. After Read has
// returned an error other than the cancellation of its own ctx, it returns
// that error again. Close stops any background work and frees what the
// source holds; records already returned stay valid.
//
// A Source is not safe for concurrent use: call Read and Close from one
// goroutine.
type Source interface {
	Schema() *arrow.Schema
	Read(ctx context.Context) (arrow.RecordBatch, error)
	Close() error
}

// Sentinel errors. Test for them with errors.Is.
var (
	// ErrBadInput: a file's bytes cannot be turned into the target schema
	// (unknown format, corrupt or truncated data, a column missing from its
	// header or schema that Options.Optional does not name, a bad row when
	// Options.OnBadRow is nil). Retrying will not help. Errors from the
	// store itself never wrap it.
	ErrBadInput = errors.New("bad input")
	// ErrInvalidOptions: Options cannot be used (no schema, a field type
	// that no reader produces, a bad delimiter, ...).
	ErrInvalidOptions = errors.New("invalid options")
)

// MetadataFileKey is the schema metadata key under which each record names
// the store key of the file it came from. See SourceFile.
const MetadataFileKey = "scorer.file"

// Defaults for Options.
const (
	DefaultBatchSize   = 8192
	DefaultConcurrency = 2
	DefaultRawMaxBytes = 1024
)

// defaultNullValues are the CSV/TSV fields read as null when
// CSVOptions.NullValues is nil.
var defaultNullValues = []string{"", "NA", "null", "?"}

// Options say what to produce and how. The zero value of every field but
// Schema is usable.
type Options struct {
	// Schema is the target: exactly these fields, in this order, are
	// produced. Field types may be utf8, float64, int64 and timestamp[us]
	// (time zone "UTC" or none). A field with Nullable false rejects null
	// and empty values (the row is bad).
	Schema *arrow.Schema
	// Ranges bound int64 fields of Schema: a value outside [Min, Max) of
	// any range of its field makes the row bad, with the reason
	// "<Name> <value> out of range [Min, Max)". Open fails with
	// ErrInvalidOptions for a range whose Column is not an int64 field or
	// whose Min is not below its Max.
	Ranges []IntRange
	// BatchSize is the number of rows per record (default 8192). The last
	// record of each file may be shorter.
	BatchSize int
	// Concurrency is the number of files decoded at once (default 2).
	Concurrency int
	// Mem allocates record memory (default memory.DefaultAllocator).
	Mem memory.Allocator
	// OnBadRow is called for each row that cannot be converted. Returning
	// nil drops the row (it is counted in FileStat.BadRows) and reading goes
	// on; returning an error stops reading and Read returns that error. If
	// OnBadRow is nil every bad row is fatal: Read returns the RowError.
	// Calls are serialised (never concurrent) but come from background
	// goroutines, possibly for several files in turn.
	OnBadRow func(RowError) error
	// CSV configures .csv and .tsv files.
	CSV CSVOptions
	// IDColumns name the Schema fields that identify a row (utf8 fields).
	// A RowError carries their values in IDs when they can be read.
	IDColumns []string
	// Optional name the Schema fields that a file may lack entirely (e.g.
	// a label that monthly dumps carry and queued requests do not). Each
	// must be a Nullable field of Schema and not one of IDColumns; Open
	// fails with ErrInvalidOptions otherwise.
	//
	// A CSV or TSV file whose header (or CSVOptions.ColumnNames) has no
	// column of that name, or a Parquet file whose schema has none, reads
	// null in that field in every row, where a missing column of any other
	// field makes the whole file bad input (`column "x" missing from
	// header`). Gzip makes no difference. JSON Lines has no file-wide
	// columns: a member missing from an object reads null in any nullable
	// field, Optional or not (and makes the row bad in a field that is not
	// nullable), so Optional changes nothing there. Where the column is
	// present, its values are read as in any other field: nulls as
	// CSVOptions.NullValues say, and a bad value makes a bad row.
	Optional []string
	// UnknownMembers, if set, is the Reason that makes a JSON Lines row bad
	// when its object has a member that names no target column (RowError's
	// Column is the first such member, in the object's order); empty, such
	// members are ignored. The other formats pick their columns by name and
	// ignore it. An intake that must catch a misspelt column (which would
	// otherwise read as a missing value) sets it.
	UnknownMembers string
	// Admit, if set, is asked about every good row, with the row's values
	// of IDColumns (valid during the call only: copy them to keep them). An
	// empty answer admits the row; any other answer is a reason that makes
	// it a bad row, reported through OnBadRow as a RowError with that
	// Reason, Column the first id column and Value its value. Calls are
	// serialised with each other and with OnBadRow; rows of one file come in
	// file order, files interleave when Concurrency > 1.
	Admit func(ids []string) string
	// Checks are further checks of utf8 fields, asked about every row that
	// converted (before Admit): Check gets the field's value ("" for a
	// null) and returns the reason the row is bad ("" if it is not), which
	// makes it a bad row (reported through OnBadRow as a RowError with
	// that Reason, Column the field and Value the value); an error stops
	// reading, and Read returns it. A check may do I/O under ctx (the
	// context given to Open) and is called from the decoding goroutines,
	// several at once: it must be safe for concurrent use.
	Checks []StringCheck
	// RawMaxBytes bounds RowError.Raw, the bad row's text as stored (text
	// formats): 0 means DefaultRawMaxBytes, a negative value keeps none.
	RawMaxBytes int

	// lineLimit bounds the length of one line of a text file (tests lower
	// it); 0 means maxLineBytes.
	lineLimit int
	// blockRows is the most CSV rows converted as one block (tests and
	// benchmarks set it): 0 means csvBlockRows, a negative value none.
	blockRows int
}

// IntRange is a range the values of an int64 field must lie in (see
// Options.Ranges), such as the ids 0..N-1 of an embedding table.
type IntRange struct {
	Column   string
	Min, Max int64 // the values allowed are Min <= v < Max
	// Name says what the values are in the reason of a bad row (default
	// "value"), e.g. `feature "C1" id` for `feature "C1" id 57 out of
	// range [0, 50)`.
	Name string
}

// CSVOptions configure delimited text files.
type CSVOptions struct {
	// Delimiter separates fields. Zero means ',' for .csv and '\t' for .tsv;
	// a non-zero value is used for both.
	Delimiter rune
	// Header says the first line names the columns. It is effectively true
	// whenever ColumnNames is empty (there is no other way to name columns);
	// set ColumnNames and leave Header false for headerless files. With both
	// set, the header line is skipped and ColumnNames are used instead.
	Header bool
	// ColumnNames name the columns of every line, in order; e.g. for Criteo
	// TSV: label, I1..I13, C1..C26.
	ColumnNames []string
	// NullValues are the field values read as null, compared exactly
	// (before trimming). nil means "", "NA", "null" and "?"; a non-nil empty
	// slice means no value is null.
	NullValues []string
}

// RowError describes one row that cannot be converted. It wraps ErrBadInput.
type RowError struct {
	File   string // store key of the file
	Row    int64  // 1-based data row number; a header line is not a row
	Line   int64  // 1-based line where the row starts in a text file; 0 if not known
	Column string // the offending column; empty when the row as a whole is bad
	Value  string // the offending value as read, shortened; may be empty
	Reason string // what is wrong, e.g. "not a number"
	// ids backs IDs; a pointer keeps RowError comparable (errors.Is).
	ids *[]string
	// Raw is the row's text as stored (after decompression; CSV: every line
	// of the record, without the final line break), shortened to
	// Options.RawMaxBytes at a character boundary, with invalid UTF-8
	// replaced by U+FFFD. Empty for Parquet and when RawMaxBytes < 0.
	Raw string
}

// Error formats the error as
//
//	queue/2020-09-02.jsonl: row 17: column "price": not a number ("abc")
//
// adding "(line N)" after the row when the line differs from the row number.
func (e RowError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	b.WriteString(": row ")
	b.WriteString(strconv.FormatInt(e.Row, 10))
	if e.Line > 0 && e.Line != e.Row {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	if e.Column != "" {
		fmt.Fprintf(&b, ": column %q", e.Column)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	if e.Value != "" {
		fmt.Fprintf(&b, " (%q)", e.Value)
	}
	return b.String()
}

// IDs are the row's values of Options.IDColumns, in that order, when
// every one of them could be read (present, not null, valid, and, in a
// CSV row, with as many fields as the header); nil otherwise.
func (e RowError) IDs() []string {
	if e.ids == nil {
		return nil
	}
	return slices.Clone(*e.ids)
}

// Unwrap makes errors.Is(rowErr, ErrBadInput) true.
func (e RowError) Unwrap() error { return ErrBadInput }

// FileStat accounts for one file, for the run ledger.
type FileStat struct {
	Key        string
	Generation int64
	// Size is the number of stored (raw, possibly compressed) bytes read.
	Size int64
	// CRC32C is the Castagnoli CRC-32 of the raw stored bytes, computed
	// while streaming; it equals the crc32c that GCS reports for the object.
	// Parquet objects, read in ranges, take the store's CRC32C of the
	// generation read where it keeps one (GCS), and are read once more,
	// whole, to compute it where it does not (local files).
	CRC32C uint32
	// Rows is the number of rows delivered in records; BadRows the number
	// dropped through OnBadRow.
	Rows    int64
	BadRows int64
	// Missing are the Options.Optional columns the file lacks (read as
	// null in every row), in Schema order.
	Missing []string
}

// SourceFile returns the store key of the file a record came from, or "" if
// the record does not say.
func SourceFile(rec arrow.RecordBatch) string {
	if rec == nil {
		return ""
	}
	md := rec.Schema().Metadata()
	if i := md.FindKey(MetadataFileKey); i >= 0 {
		return md.Values()[i]
	}
	return ""
}

// Open starts reading files from b into records of opts.Schema.
//
// Every file's format is known from its extension; Open fails with
// ErrBadInput naming the first file whose extension is not supported, and
// with ErrInvalidOptions if opts cannot be used. Open does not wait for any
// read: decoding starts in the background.
//
// Decoding runs in background goroutines, at most opts.Concurrency files at
// once, under ctx: cancelling ctx stops them, and Read then returns the
// cancellation error. Records from different files interleave; records of
// one file come in file order. Close must be called.
func Open(ctx context.Context, b store.Bucket, files []store.ObjectInfo, opts Options) (*Reader, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	tasks := make([]task, len(files))
	for i, f := range files {
		fm, err := formatOf(f.Key)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", b.URI(f.Key), err)
		}
		tasks[i] = task{info: f, format: fm, uri: b.URI(f.Key)}
	}
	return start(ctx, b, tasks, cfg), nil
}

// config is Options with defaults applied and the schema compiled.
type config struct {
	Options
	cols   []colSpec
	nulls  nullSet
	ids    []int // index in cols of each of IDColumns
	checks []fieldCheck
}

// StringCheck is a check of a utf8 field's values (Options.Checks).
type StringCheck struct {
	Column string
	Check  func(ctx context.Context, value string) (reason string, err error)
}

// fieldCheck is a StringCheck with its field's index in cols.
type fieldCheck struct {
	col   int
	check func(ctx context.Context, value string) (string, error)
}

// nullSet is CSVOptions.NullValues as a set, with a cheap test that rules
// out most fields before the map lookup: a field longer than every null
// value, or whose first byte starts none of them, is not null.
type nullSet struct {
	m      map[string]bool
	maxLen int
	first  [256]bool // first bytes of the non-empty null values
	empty  bool      // "" is a null value
}

func newNullSet(values []string) nullSet {
	ns := nullSet{m: make(map[string]bool, len(values))}
	for _, v := range values {
		ns.m[v] = true
		ns.maxLen = max(ns.maxLen, len(v))
		if v == "" {
			ns.empty = true
		} else {
			ns.first[v[0]] = true
		}
	}
	return ns
}

// has reports whether s is one of the null values.
func (ns *nullSet) has(s string) bool {
	switch {
	case len(s) == 0:
		return ns.empty
	case !ns.mayHold(len(s), s[0]):
		return false
	}
	return ns.m[s]
}

// mayHold is has' cheap test for a non-empty value of n bytes starting
// with first: false rules the value out without the map lookup.
func (ns *nullSet) mayHold(n int, first byte) bool { return n <= ns.maxLen && ns.first[first] }

func newConfig(o Options) (*config, error) {
	if o.Schema == nil || o.Schema.NumFields() == 0 {
		return nil, fmt.Errorf("open readers: %w: a schema with at least one field is needed", ErrInvalidOptions)
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Mem == nil {
		o.Mem = memory.DefaultAllocator
	}
	if o.lineLimit <= 0 {
		o.lineLimit = maxLineBytes
	}
	if o.blockRows == 0 {
		o.blockRows = csvBlockRows
	}
	if d := o.CSV.Delimiter; d != 0 && (d == '"' || d == '\r' || d == '\n' || d == utf8.RuneError || !utf8.ValidRune(d)) {
		return nil, fmt.Errorf("open readers: %w: delimiter %q", ErrInvalidOptions, d)
	}
	cols, err := compileSchema(o.Schema)
	if err != nil {
		return nil, err
	}
	if o.Admit != nil && len(o.IDColumns) == 0 {
		return nil, fmt.Errorf("open readers: %w: Admit needs IDColumns", ErrInvalidOptions)
	}
	if o.RawMaxBytes == 0 {
		o.RawMaxBytes = DefaultRawMaxBytes
	}
	ids := make([]int, len(o.IDColumns))
	for k, name := range o.IDColumns {
		j := slices.IndexFunc(cols, func(c colSpec) bool { return c.name == name })
		if j < 0 || cols[j].typ != tString {
			return nil, fmt.Errorf("open readers: %w: id column %q is not a utf8 field of the schema", ErrInvalidOptions, name)
		}
		ids[k] = j
	}
	for _, name := range o.Optional {
		j := slices.IndexFunc(cols, func(c colSpec) bool { return c.name == name })
		switch {
		case j < 0:
			return nil, fmt.Errorf("open readers: %w: optional column %q is not a field of the schema", ErrInvalidOptions, name)
		case !cols[j].nullable:
			return nil, fmt.Errorf("open readers: %w: optional column %q is not nullable", ErrInvalidOptions, name)
		case slices.Contains(o.IDColumns, name):
			return nil, fmt.Errorf("open readers: %w: optional column %q is an id column", ErrInvalidOptions, name)
		}
		cols[j].optional = true
	}
	for _, r := range o.Ranges {
		j := slices.IndexFunc(cols, func(c colSpec) bool { return c.name == r.Column })
		switch {
		case j < 0 || cols[j].typ != tInt:
			return nil, fmt.Errorf("open readers: %w: range of %q: not an int64 field of the schema", ErrInvalidOptions, r.Column)
		case r.Min >= r.Max:
			return nil, fmt.Errorf("open readers: %w: range of %q: [%d, %d) is empty", ErrInvalidOptions, r.Column, r.Min, r.Max)
		}
		cols[j].ranges = append(cols[j].ranges, r)
	}
	var checks []fieldCheck
	for _, c := range o.Checks {
		j := slices.IndexFunc(cols, func(cs colSpec) bool { return cs.name == c.Column })
		if j < 0 || cols[j].typ != tString || c.Check == nil {
			return nil, fmt.Errorf("open readers: %w: check of %q: not a utf8 field of the schema, or no check", ErrInvalidOptions, c.Column)
		}
		checks = append(checks, fieldCheck{col: j, check: c.Check})
	}
	nullValues := o.CSV.NullValues
	if nullValues == nil {
		nullValues = defaultNullValues
	}
	return &config{Options: o, cols: cols, nulls: newNullSet(nullValues), ids: ids, checks: checks}, nil
}
