package writers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"maps"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/parquet-go/parquet-go/encoding"

	"github.com/adtech/scorer/readers/store"
)

// Defaults for PartConfig.
const (
	DefaultRowGroupRows       = 128 * 1024
	DefaultPartRows           = 1_000_000
	DefaultDictionaryMaxBytes = 1 << 20
)

// Constant is a column whose value is the same in every row, appended after
// the record's own columns (model_name, model_version, run_id, scored_at...).
// Value is a string, time.Time (stored as TIMESTAMP(MICROS, UTC), truncated
// to the microsecond), int64, float32 or float64.
type Constant struct {
	Name  string
	Value any
}

// PartFile describes one Parquet object written by a PartWriter.
type PartFile struct {
	Key    string // the object's key in the bucket
	Rows   int64
	Bytes  int64
	SHA256 string // lowercase hex of the object's bytes
}

// Name is the last element of Key.
func (f PartFile) Name() string { return path.Base(f.Key) }

// PartConfig configures a PartWriter. The zero value of each field means its
// default.
type PartConfig struct {
	// RowGroupRows is the number of rows per row group (default 131072).
	RowGroupRows int64
	// PartRows is the number of rows after which the writer starts a new
	// part object (default 1,000,000).
	PartRows int64
	// DictionaryMaxBytes bounds a string column's dictionary per row group;
	// past it the rest of the chunk is written PLAIN, as parquet-mr does
	// (default 1 MiB).
	DictionaryMaxBytes int64
	// Plain names string columns written PLAIN instead of
	// dictionary-encoded: columns of (nearly) unique values, such as ids,
	// whose dictionary would only cost a map insert per value until it
	// outgrows DictionaryMaxBytes.
	Plain []string
	// Constants are appended to every row, in this order.
	Constants []Constant
	// Metadata is written as Parquet key/value metadata in every part.
	Metadata map[string]string
	// OnPart, if set, is called after each part object is complete.
	OnPart func(PartFile) error
}

func (c PartConfig) withDefaults() PartConfig {
	if c.RowGroupRows <= 0 {
		c.RowGroupRows = DefaultRowGroupRows
	}
	if c.PartRows <= 0 {
		c.PartRows = DefaultPartRows
	}
	if c.DictionaryMaxBytes <= 0 {
		c.DictionaryMaxBytes = DefaultDictionaryMaxBytes
	}
	return c
}

type colKind int

const (
	kindString colKind = iota
	kindFloat32
	kindFloat64
	kindInt64
	kindTimestamp
)

// column is one Parquet leaf column: a record column (src >= 0) or a
// constant (src < 0, its value in constants).
type column struct {
	name     string
	kind     colKind
	optional bool
	src      int
	// constants is a constant column's value, leveled, for writeChunk rows,
	// built once: the column's chunks all write (a prefix of) it.
	constants []parquet.Value
}

// writeChunk is the number of rows writeRows passes to a column writer at
// a time: small enough that pages stay near the page buffer size.
const writeChunk = 1024

// layout maps an Arrow schema plus constants to a Parquet schema whose
// columns are in the same order.
type layout struct {
	arrow   *arrow.Schema
	cols    []column
	parquet *parquet.Schema
}

func newLayout(schema *arrow.Schema, constants []Constant, plain []string) (*layout, error) {
	l := &layout{arrow: schema}
	seen := map[string]bool{}
	var fields []parquet.Field
	add := func(c column) error {
		if c.name == "" || seen[c.name] {
			return fmt.Errorf("column %q: %w (empty or repeated)", c.name, ErrInvalidName)
		}
		seen[c.name] = true
		var n parquet.Node
		switch c.kind {
		case kindString:
			n = parquet.Encoded(parquet.String(), &parquet.RLEDictionary)
			if slices.Contains(plain, c.name) {
				n = parquet.Encoded(parquet.String(), &parquet.Plain)
			}
		case kindFloat32:
			n = parquet.Leaf(parquet.FloatType)
		case kindFloat64:
			n = parquet.Leaf(parquet.DoubleType)
		case kindInt64:
			n = parquet.Leaf(parquet.Int64Type)
		case kindTimestamp:
			n = parquet.Timestamp(parquet.Microsecond)
		}
		if c.optional {
			n = parquet.Optional(n)
		} else {
			n = parquet.Required(n)
		}
		fields = append(fields, namedField{Node: n, name: c.name})
		l.cols = append(l.cols, c)
		return nil
	}
	for i, f := range schema.Fields() {
		k, err := kindOf(f.Type)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", f.Name, err)
		}
		if err := add(column{name: f.Name, kind: k, optional: f.Nullable, src: i}); err != nil {
			return nil, err
		}
	}
	for _, c := range constants {
		k, v, err := constantValue(c.Value)
		if err != nil {
			return nil, fmt.Errorf("constant %q: %w", c.Name, err)
		}
		ci := len(l.cols)
		vals := make([]parquet.Value, writeChunk)
		for i := range vals {
			vals[i] = v.Level(0, 0, ci)
		}
		if err := add(column{name: c.Name, kind: k, src: -1, constants: vals}); err != nil {
			return nil, err
		}
	}
	l.parquet = parquet.NewSchema("schema", orderedGroup(fields))
	return l, nil
}

func kindOf(t arrow.DataType) (colKind, error) {
	switch t := t.(type) {
	case *arrow.StringType:
		return kindString, nil
	case *arrow.Float32Type:
		return kindFloat32, nil
	case *arrow.Float64Type:
		return kindFloat64, nil
	case *arrow.Int64Type:
		return kindInt64, nil
	case *arrow.TimestampType:
		if t.Unit == arrow.Microsecond && t.TimeZone == "UTC" {
			return kindTimestamp, nil
		}
	}
	return 0, fmt.Errorf("%s: %w (want utf8, float32, float64, int64 or timestamp[us, tz=UTC])", t, ErrUnsupportedType)
}

func constantValue(v any) (colKind, parquet.Value, error) {
	switch v := v.(type) {
	case string:
		return kindString, parquet.ByteArrayValue([]byte(v)), nil
	case time.Time:
		return kindTimestamp, parquet.Int64Value(v.UnixMicro()), nil
	case int64:
		return kindInt64, parquet.Int64Value(v), nil
	case float32:
		return kindFloat32, parquet.FloatValue(v), nil
	case float64:
		return kindFloat64, parquet.DoubleValue(v), nil
	}
	return 0, parquet.Value{}, fmt.Errorf("%T: %w", v, ErrUnsupportedType)
}

// orderedGroup is a Parquet group that keeps its fields in the given order
// (parquet.Group is a map and sorts them by name), so that SELECT * shows the
// columns in the order the caller declared.
type orderedGroup []parquet.Field

type namedField struct {
	parquet.Node
	name string
}

func (f namedField) Name() string                      { return f.name }
func (f namedField) Value(reflect.Value) reflect.Value { return reflect.Value{} }

func (g orderedGroup) ID() int                     { return 0 }
func (g orderedGroup) Type() parquet.Type          { return parquet.Group{}.Type() }
func (g orderedGroup) Optional() bool              { return false }
func (g orderedGroup) Repeated() bool              { return false }
func (g orderedGroup) Required() bool              { return true }
func (g orderedGroup) Leaf() bool                  { return false }
func (g orderedGroup) Fields() []parquet.Field     { return g }
func (g orderedGroup) Encoding() encoding.Encoding { return nil }
func (g orderedGroup) Compression() compress.Codec { return nil }
func (g orderedGroup) GoType() reflect.Type        { return reflect.TypeFor[map[string]any]() }
func (g orderedGroup) String() string {
	var b strings.Builder
	b.WriteString("group {")
	for i, f := range g {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(strconv.Quote(f.Name()))
	}
	b.WriteString("}")
	return b.String()
}

// PartWriter writes Arrow records to a sequence of Parquet objects, starting
// a new one every PartRows rows. Columns: utf8 → BYTE_ARRAY STRING with
// dictionary encoding (PLAIN for PartConfig.Plain); float32 → FLOAT;
// float64 → DOUBLE; int64 → INT64;
// timestamp[us, UTC] → INT64 TIMESTAMP(MICROS, isAdjustedToUTC=true);
// nullable fields are OPTIONAL, others REQUIRED, constants REQUIRED. Pages are
// zstd-compressed data page v1 (the most widely readable) with column chunk
// and page statistics and a page index.
//
// A PartWriter is not safe for concurrent use. The caller keeps ownership of
// the records it passes to Write; they are not retained.
type PartWriter struct {
	bucket store.Bucket
	key    func(n int) string
	cfg    PartConfig
	lay    *layout
	opts   []parquet.WriterOption

	cur    *openPart
	parts  []PartFile
	rows   int64
	vals   []parquet.Value
	closed bool
}

type openPart struct {
	key    string
	obj    store.Writer
	hw     *hashWriter
	pw     *parquet.GenericWriter[any]
	rows   int64
	rgRows int64
}

type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (h *hashWriter) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

// pageCodec compresses every page: zstd at its fastest level, which on a
// score table (a 16-hex-digit id and a score a row) wrote the same data in
// about a third less time than the default level (median of five
// alternating rounds), and in fewer bytes (BenchmarkPartWriter;
// docs/performance.md). Shared, as parquet.Zstd is: it pools its encoders.
var pageCodec = zstd.Codec{Level: zstd.SpeedFastest}

// NewPartWriter returns a writer for records of the given schema. key names
// the n-th part object (n from 0).
func NewPartWriter(b store.Bucket, schema *arrow.Schema, key func(n int) string, cfg PartConfig) (*PartWriter, error) {
	cfg = cfg.withDefaults()
	for _, name := range cfg.Plain {
		switch f, ok := schema.FieldsByName(name); {
		case !ok:
			return nil, fmt.Errorf("plain column %q: %w (not a column of the records)", name, ErrInvalidName)
		case f[0].Type.ID() != arrow.STRING:
			return nil, fmt.Errorf("plain column %q: %s: %w (only string columns have a dictionary)", name, f[0].Type, ErrUnsupportedType)
		}
	}
	lay, err := newLayout(schema, cfg.Constants, cfg.Plain)
	if err != nil {
		return nil, fmt.Errorf("parquet schema: %w", err)
	}
	opts := []parquet.WriterOption{
		lay.parquet,
		parquet.Compression(&pageCodec),
		parquet.DataPageVersion(1),
		parquet.DataPageStatistics(true),
		parquet.DictionaryMaxBytes(cfg.DictionaryMaxBytes),
		parquet.CreatedBy("github.com/adtech/scorer", "", ""),
	}
	for _, k := range slices.Sorted(maps.Keys(cfg.Metadata)) { // sorted: same input, same bytes
		opts = append(opts, parquet.KeyValueMetadata(k, cfg.Metadata[k]))
	}
	return &PartWriter{bucket: b, key: key, cfg: cfg, lay: lay, opts: opts}, nil
}

// Rows is the number of rows written so far.
func (w *PartWriter) Rows() int64 { return w.rows }

// Write appends a record's rows.
func (w *PartWriter) Write(ctx context.Context, rec arrow.RecordBatch) error {
	if w.closed {
		return fmt.Errorf("write parquet: %w", ErrClosed)
	}
	if !rec.Schema().Equal(w.lay.arrow) {
		return fmt.Errorf("write parquet: %w: got %s, want %s", ErrSchemaMismatch, rec.Schema(), w.lay.arrow)
	}
	for _, c := range w.lay.cols {
		if c.src >= 0 && !c.optional && rec.Column(c.src).NullN() > 0 {
			return fmt.Errorf("write parquet: column %q: %w", c.name, ErrNullInRequired)
		}
	}
	n := rec.NumRows()
	for off := int64(0); off < n; {
		if err := ctx.Err(); err != nil {
			return err
		}
		if w.cur == nil {
			if err := w.open(ctx); err != nil {
				return err
			}
		}
		p := w.cur
		k := min(n-off, w.cfg.PartRows-p.rows, w.cfg.RowGroupRows-p.rgRows)
		if err := w.writeRows(rec, int(off), int(k)); err != nil {
			return w.fail(fmt.Errorf("write %s: %w", w.bucket.URI(p.key), err))
		}
		off += k
		p.rows += k
		p.rgRows += k
		w.rows += k
		if p.rgRows == w.cfg.RowGroupRows {
			if err := p.pw.Flush(); err != nil {
				return w.fail(fmt.Errorf("write %s: %w", w.bucket.URI(p.key), err))
			}
			p.rgRows = 0
		}
		if p.rows == w.cfg.PartRows {
			if err := w.finish(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close finishes the last part and returns every part written. A writer that
// received no rows writes one part with zero rows, so that the schema is
// readable and globs over the table match a file. After Close, the writer
// cannot be used.
func (w *PartWriter) Close(ctx context.Context) ([]PartFile, error) {
	if w.closed {
		return nil, fmt.Errorf("close parquet: %w", ErrClosed)
	}
	if w.cur == nil && len(w.parts) == 0 {
		if err := w.open(ctx); err != nil {
			return nil, err
		}
	}
	if w.cur != nil {
		if err := w.finish(); err != nil {
			return nil, err
		}
	}
	w.closed = true
	return w.parts, nil
}

// Abort discards the part being written. Parts already complete stay in
// the bucket: they are staging objects, and the caller deletes the staging
// prefix.
func (w *PartWriter) Abort() {
	w.closed = true
	if w.cur != nil {
		w.cur.obj.Abort()
		w.cur = nil
	}
}

func (w *PartWriter) fail(err error) error {
	w.Abort()
	return err
}

func (w *PartWriter) open(ctx context.Context) error {
	key := w.key(len(w.parts))
	// A part outlives the Write call that opens it (it is finished by a
	// later Write or by Close, each with its own context), so the upload is
	// not tied to this call's context; Abort cancels it.
	obj, err := w.bucket.NewWriter(context.WithoutCancel(ctx), key, store.WriteOptions{IfAbsent: true, ContentType: "application/vnd.apache.parquet"})
	if err != nil {
		return fmt.Errorf("write %s: %w", w.bucket.URI(key), err)
	}
	hw := &hashWriter{w: obj, h: sha256.New()}
	w.cur = &openPart{key: key, obj: obj, hw: hw, pw: parquet.NewGenericWriter[any](hw, w.opts...)}
	return nil
}

func (w *PartWriter) finish() error {
	p := w.cur
	if err := p.pw.Close(); err != nil {
		return w.fail(fmt.Errorf("write %s: %w", w.bucket.URI(p.key), err))
	}
	w.cur = nil
	if err := p.obj.Close(); err != nil {
		w.closed = true
		return fmt.Errorf("write %s: %w", w.bucket.URI(p.key), err)
	}
	f := PartFile{Key: p.key, Rows: p.rows, Bytes: p.hw.n, SHA256: hex.EncodeToString(p.hw.h.Sum(nil))}
	w.parts = append(w.parts, f)
	if w.cfg.OnPart != nil {
		if err := w.cfg.OnPart(f); err != nil {
			w.closed = true
			return err
		}
	}
	return nil
}

// writeRows writes rows [off, off+k) of rec column by column, writeChunk
// rows at a time.
func (w *PartWriter) writeRows(rec arrow.RecordBatch, off, k int) error {
	cws := w.cur.pw.ColumnWriters()
	for ci, c := range w.lay.cols {
		for start := off; start < off+k; start += writeChunk {
			end := min(start+writeChunk, off+k)
			if c.src < 0 {
				if _, err := cws[ci].WriteRowValues(c.constants[:end-start]); err != nil {
					return fmt.Errorf("column %q: %w", c.name, err)
				}
				continue
			}
			vals := appendValues(w.vals[:0], rec.Column(c.src), c, ci, start, end)
			if _, err := cws[ci].WriteRowValues(vals); err != nil {
				return fmt.Errorf("column %q: %w", c.name, err)
			}
			clear(vals) // drop references to the record's buffers
			w.vals = vals[:0]
		}
	}
	return nil
}

// appendValues appends the values of rows [start, end) of arr, the record
// column of c (the ci-th column of the part), to vals.
func appendValues(vals []parquet.Value, arr arrow.Array, c column, ci, start, end int) []parquet.Value {
	def := 0
	if c.optional {
		def = 1
	}
	null := parquet.Value{}.Level(0, 0, ci)
	switch c.kind {
	case kindString:
		a := arr.(*array.String)
		data, offs := a.ValueBytes(), a.ValueOffsets()
		base := offs[0]
		for r := start; r < end; r++ {
			if a.IsNull(r) {
				vals = append(vals, null)
				continue
			}
			vals = append(vals, parquet.ByteArrayValue(data[offs[r]-base:offs[r+1]-base]).Level(0, def, ci))
		}
	case kindFloat32:
		a := arr.(*array.Float32)
		for r := start; r < end; r++ {
			if a.IsNull(r) {
				vals = append(vals, null)
				continue
			}
			vals = append(vals, parquet.FloatValue(a.Value(r)).Level(0, def, ci))
		}
	case kindFloat64:
		a := arr.(*array.Float64)
		for r := start; r < end; r++ {
			if a.IsNull(r) {
				vals = append(vals, null)
				continue
			}
			vals = append(vals, parquet.DoubleValue(a.Value(r)).Level(0, def, ci))
		}
	case kindInt64:
		a := arr.(*array.Int64)
		for r := start; r < end; r++ {
			if a.IsNull(r) {
				vals = append(vals, null)
				continue
			}
			vals = append(vals, parquet.Int64Value(a.Value(r)).Level(0, def, ci))
		}
	case kindTimestamp:
		a := arr.(*array.Timestamp)
		for r := start; r < end; r++ {
			if a.IsNull(r) {
				vals = append(vals, null)
				continue
			}
			vals = append(vals, parquet.Int64Value(int64(a.Value(r))).Level(0, def, ci))
		}
	}
	return vals
}
