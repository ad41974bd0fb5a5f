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

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// batcher turns converted rows of one file into records of BatchSize rows
// and hands them on. Every format decoder writes rows through one.
type batcher struct {
	src    *Reader
	file   *fileState
	schema *arrow.Schema
	bld    *array.RecordBuilder // the fixed-width columns
	str    []*strCol            // the string columns (nil elsewhere)
	flt    []*array.Float64Builder
	ts     []*array.TimestampBuilder
	ints   []*array.Int64Builder
	n      int // rows in the record being built
}

// strCol is one string column of the record being built, in Go slices
// kept from record to record: the values' bytes one after the other,
// their end offsets, and which are null. Arrow's StringBuilder spent
// about 40 ns a value on its checks (Reserve, the offset, the bitmap),
// about 9% of the end-to-end CPU with 26 string columns; here a value is
// two appends, and flush copies the column into Arrow buffers at once.
type strCol struct {
	data  []byte
	offs  []int32 // offs[r+1] is where value r ends; offs[0] = 0
	valid []byte  // 1 where value r is present, 0 where null
	nulls int
}

func (c *strCol) append(v string) {
	c.data = append(c.data, v...)
	c.offs = append(c.offs, int32(len(c.data)))
	c.valid = append(c.valid, 1)
}

func (c *strCol) appendNull() {
	c.offs = append(c.offs, int32(len(c.data)))
	c.valid = append(c.valid, 0)
	c.nulls++
}

func (c *strCol) reset() {
	c.data, c.offs, c.valid, c.nulls = c.data[:0], append(c.offs[:0], 0), c.valid[:0], 0
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

// array copies the column into Arrow buffers from mem and resets it.
func (c *strCol) array(mem memory.Allocator) (arrow.Array, error) {
	n := len(c.valid)
	if len(c.data) > math.MaxInt32 {
		return nil, fmt.Errorf("a record's string column holds %d bytes, more than Arrow's 32-bit offsets address; lower batch_size", len(c.data))
	}
	offs := memory.NewResizableBuffer(mem)
	offs.Resize((n + 1) * arrow.Int32SizeBytes)
	copy(arrow.Int32Traits.CastFromBytes(offs.Bytes()), c.offs)
	data := memory.NewResizableBuffer(mem)
	data.Resize(len(c.data))
	copy(data.Bytes(), c.data)
	var valid *memory.Buffer
	if c.nulls > 0 {
		valid = memory.NewResizableBuffer(mem)
		valid.Resize(int(bitutil.BytesForBits(int64(n))))
		packBits(valid.Bytes(), c.valid)
	}
	d := array.NewData(arrow.BinaryTypes.String, n, []*memory.Buffer{valid, offs, data}, nil, c.nulls, 0)
	a := array.NewStringData(d)
	d.Release()
	for _, b := range []*memory.Buffer{valid, offs, data} {
		if b != nil {
			b.Release()
		}
	}
	c.reset()
	return a, nil
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
	b := &batcher{
		src:    src,
		file:   fs,
		schema: schema,
		bld:    array.NewRecordBuilder(src.cfg.Mem, schema),
	}
	n := len(src.cfg.cols)
	b.str = make([]*strCol, n)
	b.flt = make([]*array.Float64Builder, n)
	b.ts = make([]*array.TimestampBuilder, n)
	b.ints = make([]*array.Int64Builder, n)
	for i, c := range src.cfg.cols {
		switch c.typ {
		case tString:
			b.str[i] = &strCol{offs: []int32{0}}
		case tFloat:
			b.flt[i] = b.bld.Field(i).(*array.Float64Builder)
		case tInt:
			b.ints[i] = b.bld.Field(i).(*array.Int64Builder)
		default:
			b.ts[i] = b.bld.Field(i).(*array.TimestampBuilder)
		}
	}
	return b
}

// release frees what is being built. The batcher is unusable afterwards.
func (b *batcher) release() { b.bld.Release() }

// appendRow adds one good row (one value per target column) and sends a
// record once BatchSize rows are in.
func (b *batcher) appendRow(ctx context.Context, vals []value) error {
	if b.n == 0 {
		b.reserve()
	}
	for i, v := range vals {
		switch {
		case b.str[i] != nil:
			if v.null {
				b.str[i].appendNull()
			} else {
				b.str[i].append(v.s)
			}
		// Fixed-width builders have room for BatchSize values (reserve).
		case b.flt[i] != nil:
			if v.null {
				b.flt[i].UnsafeAppendBoolToBitmap(false)
			} else {
				b.flt[i].UnsafeAppend(v.f)
			}
		case b.ints[i] != nil:
			if v.null {
				b.ints[i].UnsafeAppendBoolToBitmap(false)
			} else {
				b.ints[i].UnsafeAppend(v.i)
			}
		default:
			if v.null {
				b.ts[i].UnsafeAppendBoolToBitmap(false)
			} else {
				b.ts[i].UnsafeAppend(arrow.Timestamp(v.i))
			}
		}
	}
	b.n++
	if b.n >= b.src.cfg.BatchSize {
		return b.flush(ctx)
	}
	return nil
}

// appendText adds one good text row: column j's string is fields[idx[j]],
// converted into t (idx[j] is only read where t.null[j] is false, so a
// column the file lacks may have idx[j] < 0). It sends a record once
// BatchSize rows are in.
func (b *batcher) appendText(ctx context.Context, rec *csvRecord, idx []int, t *textRow) error {
	if b.n == 0 {
		b.reserve()
	}
	for i, null := range t.null {
		switch {
		case b.str[i] != nil:
			if null {
				b.str[i].appendNull()
			} else {
				b.str[i].append(rec.Field(idx[i]))
			}
		// Fixed-width builders have room for BatchSize values (reserve).
		case b.flt[i] != nil:
			if null {
				b.flt[i].UnsafeAppendBoolToBitmap(false)
			} else {
				b.flt[i].UnsafeAppend(t.f[i])
			}
		case b.ints[i] != nil:
			if null {
				b.ints[i].UnsafeAppendBoolToBitmap(false)
			} else {
				b.ints[i].UnsafeAppend(t.i[i])
			}
		default:
			if null {
				b.ts[i].UnsafeAppendBoolToBitmap(false)
			} else {
				b.ts[i].UnsafeAppend(arrow.Timestamp(t.i[i]))
			}
		}
	}
	b.n++
	if b.n >= b.src.cfg.BatchSize {
		return b.flush(ctx)
	}
	return nil
}

// reserve sizes the fixed-width builders for a full record (BatchSize
// values); the string columns keep their slices' room from record to
// record.
func (b *batcher) reserve() {
	for i, sc := range b.str {
		if sc == nil {
			b.bld.Field(i).Reserve(b.src.cfg.BatchSize)
		}
	}
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
	for i, sc := range b.str {
		if sc == nil {
			cols[i] = b.bld.Field(i).NewArray()
			continue
		}
		a, err := sc.array(b.src.cfg.Mem)
		if err != nil {
			return fmt.Errorf("%s: %w", b.file.task.info.Key, err)
		}
		cols[i] = a
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
