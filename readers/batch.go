package readers

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// batcher turns converted rows of one file into records of BatchSize rows
// and hands them on. Every format decoder writes rows through one: a row's
// values are set column by column as they are converted (setNull, setText;
// appendRow for a row converted whole), then the row is either committed
// (commitRow) or, when one of its values turns out bad, taken back
// (rollback).
type batcher struct {
	src    *Reader
	file   *fileState
	schema *arrow.Schema
	// Column j is in str[j], f64[j] or i64[j] (int64 and timestamps), by
	// its type; the others are nil.
	str  []*strCol
	f64  []*numCol[float64]
	i64  []*numCol[int64]
	n    int // rows committed in the record being built
	room int // rows the columns have room for (grow)
}

// strCol is one string column of the record being built, in Go slices
// kept from record to record: the values' bytes one after the other, their
// end offsets, and which are valid. Arrow's StringBuilder spent about 40 ns
// a value on its checks (Reserve, the offset, the bitmap), about 9% of the
// end-to-end CPU with 26 string columns. Here the offsets and validity have
// room for the batcher's rows (grow) and value r is written at index r:
// one append (its bytes) and two stores; a row taken back is one
// truncation of the bytes; flush copies the column into Arrow buffers at
// once.
type strCol struct {
	data  []byte
	offs  []int32 // offs[r+1] is where value r ends; offs[0] = 0
	valid []byte  // 1 where value r is present, 0 where null
}

// set makes v value r; values 0..r-1 are set.
func (c *strCol) set(r int, v string) {
	c.data = appendShort(c.data, v)
	c.offs[r+1] = int32(len(c.data))
	c.valid[r] = 1
}

// appendShort is append(dst, v...), with the copy of a value of 4 to 16
// bytes (categorical codes, ids) done inline as two overlapping moves
// rather than by a call to memmove: decoding Criteo-like rows about 9%
// faster in BenchmarkDecodeReference (built without PGO; docs/performance.md).
func appendShort(dst []byte, v string) []byte {
	n, k := len(dst), len(v)
	if k < 4 || k > 16 || cap(dst)-n < k {
		return append(dst, v...)
	}
	dst = dst[:n+k]
	p := unsafe.Pointer(unsafe.StringData(v))
	if k >= 8 {
		*(*uint64)(unsafe.Pointer(&dst[n])) = *(*uint64)(p)
		*(*uint64)(unsafe.Pointer(&dst[n+k-8])) = *(*uint64)(unsafe.Add(p, k-8))
	} else {
		*(*uint32)(unsafe.Pointer(&dst[n])) = *(*uint32)(p)
		*(*uint32)(unsafe.Pointer(&dst[n+k-4])) = *(*uint32)(unsafe.Add(p, k-4))
	}
	return dst
}

// setNull makes value r null; values 0..r-1 are set.
func (c *strCol) setNull(r int) {
	c.offs[r+1] = int32(len(c.data))
	c.valid[r] = 0
}

// truncate keeps the first n values, whatever row n holds.
func (c *strCol) truncate(n int) { c.data = c.data[:c.offs[n]] }

// grow makes room for rows values.
func (c *strCol) grow(rows int) {
	c.offs = slices.Grow(c.offs, rows+1-len(c.offs))[:rows+1]
	c.valid = slices.Grow(c.valid, rows-len(c.valid))[:rows]
}

// array copies the first n values into Arrow buffers from mem and empties
// the column's bytes.
func (c *strCol) array(mem memory.Allocator, n int) (arrow.Array, error) {
	if len(c.data) > math.MaxInt32 {
		return nil, fmt.Errorf("a record's string column holds %d bytes, more than Arrow's 32-bit offsets address; lower batch_size", len(c.data))
	}
	offs := memory.NewResizableBuffer(mem)
	offs.Resize((n + 1) * arrow.Int32SizeBytes)
	copy(arrow.Int32Traits.CastFromBytes(offs.Bytes()), c.offs[:n+1])
	data := memory.NewResizableBuffer(mem)
	data.Resize(int(c.offs[n])) // the n values' bytes, nothing after them
	copy(data.Bytes(), c.data)
	valid, nulls := validity(mem, c.valid[:n])
	a := newArray(arrow.BinaryTypes.String, n, nulls, valid, offs, data)
	c.data = c.data[:0]
	return a, nil
}

// numCol is one fixed-width column of the record being built (float64;
// int64, also for timestamps in microseconds), in Go slices kept from
// record to record with room for the batcher's rows, as strCol: value r is
// two stores, and a row taken back costs nothing (the next row's values
// overwrite it).
type numCol[T float64 | int64] struct {
	vals  []T
	valid []byte // 1 where value r is present, 0 where null
}

func (c *numCol[T]) set(r int, v T) {
	c.vals[r] = v
	c.valid[r] = 1
}

func (c *numCol[T]) setNull(r int) {
	c.vals[r] = 0
	c.valid[r] = 0
}

// grow makes room for rows values.
func (c *numCol[T]) grow(rows int) {
	c.vals = slices.Grow(c.vals, rows-len(c.vals))[:rows]
	c.valid = slices.Grow(c.valid, rows-len(c.valid))[:rows]
}

// array copies the first n values into Arrow buffers from mem, as an array
// of type typ (whose values are T's).
func (c *numCol[T]) array(mem memory.Allocator, typ arrow.DataType, n int) arrow.Array {
	vals := memory.NewResizableBuffer(mem)
	vals.Resize(n * 8)
	copy(vals.Bytes(), unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(c.vals))), n*8))
	valid, nulls := validity(mem, c.valid[:n])
	return newArray(typ, n, nulls, valid, vals)
}

// validity is the Arrow validity bitmap of valid (nil without nulls) and
// the number of nulls.
func validity(mem memory.Allocator, valid []byte) (*memory.Buffer, int) {
	nulls := bytes.Count(valid, []byte{0})
	if nulls == 0 {
		return nil, 0
	}
	buf := memory.NewResizableBuffer(mem)
	buf.Resize(int(bitutil.BytesForBits(int64(len(valid)))))
	packBits(buf.Bytes(), valid)
	return buf, nulls
}

// newArray makes an array of n values from buffers (the validity bitmap
// first, nil without nulls) that it takes over.
func newArray(typ arrow.DataType, n, nulls int, bufs ...*memory.Buffer) arrow.Array {
	d := array.NewData(typ, n, bufs, nil, nulls, 0)
	a := array.MakeFromData(d)
	d.Release()
	for _, b := range bufs {
		if b != nil {
			b.Release()
		}
	}
	return a
}

// packBits sets bit j of dst[j/8] (least significant first, Arrow's order)
// where src[j] is 1; src holds only 0s and 1s. Eight at a time: with each
// byte's flag in its lowest bit, the multiplication moves byte k's flag to
// bit 56+k and adds nothing else there.
func packBits(dst, src []byte) {
	i := 0
	for ; i+8 <= len(src); i += 8 {
		dst[i/8] = byte(binary.LittleEndian.Uint64(src[i:]) * 0x0102040810204080 >> 56)
	}
	if i < len(src) {
		var b byte
		for j, v := range src[i:] {
			b |= v << j
		}
		dst[i/8] = b
	}
}

func newBatcher(src *Reader, fs *fileState) *batcher {
	md := src.cfg.Schema.Metadata()
	keys := append(append([]string(nil), md.Keys()...), MetadataFileKey)
	vals := append(append([]string(nil), md.Values()...), fs.task.info.Key)
	if i := md.FindKey(MetadataFileKey); i >= 0 { // replace, do not repeat
		keys, vals = keys[:len(keys)-1], vals[:len(vals)-1]
		vals[i] = fs.task.info.Key
	}
	meta := arrow.NewMetadata(keys, vals)
	schema := arrow.NewSchema(src.cfg.Schema.Fields(), &meta)
	b := &batcher{src: src, file: fs, schema: schema}
	n := len(src.cfg.cols)
	b.str = make([]*strCol, n)
	b.f64 = make([]*numCol[float64], n)
	b.i64 = make([]*numCol[int64], n)
	for i, c := range src.cfg.cols {
		switch c.typ {
		case tString:
			b.str[i] = &strCol{}
		case tFloat:
			b.f64[i] = &numCol[float64]{}
		default: // tInt, tTimestamp
			b.i64[i] = &numCol[int64]{}
		}
	}
	b.grow(min(src.cfg.BatchSize, 1024))
	return b
}

// grow gives every column room for rows values, keeping those set.
func (b *batcher) grow(rows int) {
	for j := range b.str {
		switch {
		case b.str[j] != nil:
			b.str[j].grow(rows)
		case b.f64[j] != nil:
			b.f64[j].grow(rows)
		default:
			b.i64[j].grow(rows)
		}
	}
	b.room = rows
}

// setNull makes column j's value in the row being built null.
func (b *batcher) setNull(j int) { b.setNullAt(j, b.n) }

// setNullAt makes column j's value r null; values 0..r-1 are set.
func (b *batcher) setNullAt(j, r int) {
	switch {
	case b.str[j] != nil:
		b.str[j].setNull(r)
	case b.f64[j] != nil:
		b.f64[j].setNull(r)
	default:
		b.i64[j].setNull(r)
	}
}

// setText converts a text field that is not null into column j of the row
// being built, as fromText does; it returns a reason, and sets nothing, if
// the field is bad. ascii says the row is all ASCII: its strings need no
// UTF-8 check.
func (b *batcher) setText(j int, c *colSpec, s string, ascii bool) string {
	if s == "" && !c.nullable {
		return reasonMissing
	}
	switch c.typ {
	case tString:
		if !ascii && !validUTF8(s) {
			return reasonBadUTF8
		}
		b.str[j].set(b.n, s)
	case tFloat:
		f, reason := parseFloat(s)
		if reason != "" {
			return reason
		}
		b.f64[j].set(b.n, f)
	case tInt:
		n, reason := c.intValue(parseInt(s))
		if reason != "" {
			return reason
		}
		b.i64[j].set(b.n, n)
	default:
		t, reason := parseTimestamp(s)
		if reason != "" {
			return reason
		}
		b.i64[j].set(b.n, t)
	}
	return ""
}

// plainString is column j's strCol if s goes into it as it is, setText's
// checks (missing, UTF-8) all passed: a non-empty string of an ASCII row;
// nil otherwise. A check added to setText's string case belongs here too.
// The CSV decoder asks it first, to set the common case without the call
// (setText is too large to inline; a call a field was measurable:
// docs/performance.md, Decoders).
func (b *batcher) plainString(j int, s string, ascii bool) *strCol {
	if sc := b.str[j]; sc != nil && ascii && s != "" {
		return sc
	}
	return nil
}

// null says whether column j's value in the row being built is null.
func (b *batcher) null(j int) bool {
	switch {
	case b.str[j] != nil:
		return b.str[j].valid[b.n] == 0
	case b.f64[j] != nil:
		return b.f64[j].valid[b.n] == 0
	default:
		return b.i64[j].valid[b.n] == 0
	}
}

// rollback takes back the values set for the row being built: the string
// columns' bytes (the next row overwrites the rest).
func (b *batcher) rollback() { b.rollbackTo(b.n) }

// rollbackTo takes back the values set for rows n on (n >= b.n).
func (b *batcher) rollbackTo(n int) {
	for _, c := range b.str {
		if c != nil {
			c.truncate(n)
		}
	}
}

// reserve gives the columns room for rows more rows after those
// committed (at most BatchSize in all).
func (b *batcher) reserve(rows int) {
	if need := b.n + rows; need > b.room {
		b.grow(min(max(2*b.room, need), b.src.cfg.BatchSize))
	}
}

// commitRows ends rows rows set from row b.n on (setBlock; commitRow's
// one), at most BatchSize-b.n of them; it sends a record once BatchSize
// rows are in.
func (b *batcher) commitRows(ctx context.Context, rows int) error {
	b.n += rows
	switch {
	case b.n >= b.src.cfg.BatchSize:
		return b.flush(ctx)
	case b.n == b.room:
		b.grow(min(2*b.room, b.src.cfg.BatchSize))
	}
	return nil
}

// commitRow ends the row being built, every column's value set; it sends a
// record once BatchSize rows are in.
func (b *batcher) commitRow(ctx context.Context) error { return b.commitRows(ctx, 1) }

// appendRow adds one good row (one value per target column) and sends a
// record once BatchSize rows are in.
func (b *batcher) appendRow(ctx context.Context, vals []value) error {
	for j, v := range vals {
		switch {
		case v.null:
			b.setNull(j)
		case b.str[j] != nil:
			b.str[j].set(b.n, v.s)
		case b.f64[j] != nil:
			b.f64[j].set(b.n, v.f)
		default:
			b.i64[j].set(b.n, v.i)
		}
	}
	return b.commitRow(ctx)
}

// flush sends the rows built so far, if any.
func (b *batcher) flush(ctx context.Context) error {
	if b.n == 0 {
		return nil
	}
	cols := make([]arrow.Array, len(b.str))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	mem := b.src.cfg.Mem
	for j := range cols {
		switch {
		case b.str[j] != nil:
			a, err := b.str[j].array(mem, b.n)
			if err != nil {
				return fmt.Errorf("%s: %w", b.file.task.info.Key, err)
			}
			cols[j] = a
		case b.f64[j] != nil:
			cols[j] = b.f64[j].array(mem, arrow.PrimitiveTypes.Float64, b.n)
		default:
			cols[j] = b.i64[j].array(mem, b.schema.Field(j).Type, b.n)
		}
	}
	rec := array.NewRecordBatch(b.schema, cols, int64(b.n))
	n := b.n
	b.n = 0
	if err := b.src.emit(ctx, rec); err != nil {
		return err
	}
	b.file.stat.Rows += int64(n) // rows delivered, not merely decoded
	return nil
}

// admit asks Options.Admit about a good row with these ids: ok when the row
// is admitted; otherwise the row was reported as bad (err is then OnBadRow's
// answer).
func (b *batcher) admit(ids []string, row, line int64, raw []byte) (ok bool, err error) {
	adm := b.src.cfg.Admit
	if adm == nil {
		return true, nil
	}
	b.src.badMu.Lock()
	reason := adm(ids)
	b.src.badMu.Unlock()
	if reason == "" {
		return true, nil
	}
	cp := slices.Clone(ids)
	for i := range cp {
		cp[i] = strings.Clone(cp[i])
	}
	e := RowError{Row: row, Line: line, Column: b.src.cfg.IDColumns[0], Value: cp[0], Reason: reason, ids: &cp}
	return false, b.badRow(e, raw)
}

// check runs Options.Checks on a converted row, whose field j has the
// value value(j) ("" for a null): ok when every check passes; otherwise
// the row was reported as bad (err is then OnBadRow's answer), or a check
// failed (err).
func (b *batcher) check(ctx context.Context, value func(j int) string, ids func() *[]string, row, line int64, raw []byte) (ok bool, err error) {
	for _, c := range b.src.cfg.checks {
		v := value(c.col)
		reason, err := c.check(ctx, v)
		if err != nil {
			return false, stopError{fmt.Errorf("%s: row %d: column %q: %w", b.file.task.info.Key, row, b.src.cfg.cols[c.col].name, err)}
		}
		if reason != "" {
			e := RowError{Row: row, Line: line, Column: b.src.cfg.cols[c.col].name, Value: strings.Clone(v), Reason: reason, ids: ids()}
			return false, b.badRow(e, raw)
		}
	}
	return true, nil
}

// rowIDs fills buf with the id values of a converted row.
func (b *batcher) rowIDs(buf []string, vals []value) []string {
	buf = buf[:0]
	for _, j := range b.src.cfg.ids {
		buf = append(buf, vals[j].s)
	}
	return buf
}

// badRow reports a row that cannot be converted, with its stored text (nil
// if not known). It returns nil when the row is dropped and reading goes
// on.
func (b *batcher) badRow(e RowError, raw []byte) error {
	e.File = b.file.task.info.Key
	e.Value = shorten(e.Value)
	e.Raw = cutRaw(raw, b.src.cfg.RawMaxBytes)
	if err := b.src.onBadRow(e); err != nil {
		return stopError{err}
	}
	b.file.stat.BadRows++
	return nil
}

// stopError marks an error that must reach Read unchanged: a fatal
// RowError or what OnBadRow returned.
type stopError struct{ err error }

func (e stopError) Error() string { return e.err.Error() }
func (e stopError) Unwrap() error { return e.err }

// cutRaw is a bad row's stored text for RowError.Raw: without its final
// line break, at most max bytes cut at a character boundary, valid UTF-8.
func cutRaw(raw []byte, max int) string {
	if max < 0 || len(raw) == 0 {
		return ""
	}
	raw = bytes.TrimSuffix(raw, []byte("\n"))
	raw = bytes.TrimSuffix(raw, []byte("\r"))
	if len(raw) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(raw[cut]) {
			cut--
		}
		raw = raw[:cut]
	}
	return strings.ToValidUTF8(string(raw), "\uFFFD")
}
