package readers

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	pqformat "github.com/parquet-go/parquet-go/format"

	"github.com/adtech/scorer/readers/store"
)

// parquetReadSize is the most parquet-go asks of a column chunk at a time,
// and the size of the footer's read: each is one ranged read of the store.
const parquetReadSize = 256 << 10

// readParquet decodes a Parquet object with ranged reads, pinned to the
// generation listed (or, when the listing gave none, found now), so that an
// object replaced while it is read fails with store.ErrNotExist instead of
// mixing two versions. Nothing is spooled: the footer comes in one read of
// the object's tail, then parquet-go reads one page per column at a time
// (parquetReadSize at most per read), and we convert BatchSize rows at a
// time.
//
// The accounting is that of the other formats. FileStat.CRC32C is the
// CRC32C of the whole object: the store's own, for the generation read,
// where it keeps one (GCS checks it on upload); otherwise the object is read
// once more, whole and pinned, to compute it (a local file, from the page
// cache). BytesRead counts the ranges read, and the object's size once it
// is done.
func (r *Reader) readParquet(ctx context.Context, fs *fileState, b *batcher) error {
	info, uri := fs.task.info, fs.task.uri
	if info.Generation == 0 || info.Size <= 0 {
		st, err := r.bucket.Stat(ctx, info.Key)
		if err != nil {
			return fmt.Errorf("read %s: %w", uri, err)
		}
		switch {
		case info.Generation != 0 && st.Generation != info.Generation:
			return fmt.Errorf("read %s generation %d: %w (replaced since it was listed)", uri, info.Generation, store.ErrNotExist)
		case info.Size > 0 && st.Size != info.Size:
			return fmt.Errorf("read %s: object has %d bytes, %d listed: %w", uri, st.Size, info.Size, io.ErrUnexpectedEOF)
		}
		info.Generation, info.Size = st.Generation, st.Size
		if info.CRC32C == 0 {
			info.CRC32C = st.CRC32C
		}
	}
	fs.stat.Size = info.Size
	ra := &rangeReaderAt{
		open: func(off, n int64) (io.ReadCloser, error) {
			return r.bucket.NewRangeReader(ctx, info.Key, info.Generation, off, n)
		},
		size:     info.Size,
		progress: &r.bytesRead,
	}
	err := r.decodeParquetAt(ctx, ra, b)
	if err == nil {
		r.bytesRead.Add(info.Size - ra.credited.Load())
		fs.stat.CRC32C = info.CRC32C
		if info.CRC32C == 0 {
			if fs.stat.CRC32C, err = r.checksum(ctx, info); err != nil {
				return fmt.Errorf("read %s: %w", uri, err)
			}
		}
	}
	return classify(uri, ra.storeErr(), err)
}

// decodeParquetAt decodes through ra, turning a decoder panic into an
// error: parquet-go panics on some corrupt files (e.g. impossible schema
// elements), and a file must never take the process down.
func (r *Reader) decodeParquetAt(ctx context.Context, ra *rangeReaderAt, b *batcher) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = badInput("corrupt parquet: decoder panic: %v", p)
		}
	}()
	if err := ra.readTail(min(ra.size, parquetReadSize)); err != nil {
		return err
	}
	return r.decodeParquet(ctx, ra, ra.size, b)
}

// checksum reads one generation of an object whole and returns its CRC32C.
func (r *Reader) checksum(ctx context.Context, info store.ObjectInfo) (uint32, error) {
	rc, err := r.bucket.NewReader(ctx, info.Key, info.Generation)
	if err != nil {
		return 0, err
	}
	defer func() { _ = rc.Close() }()
	var uncounted atomic.Int64 // the bytes were counted as the ranges were read
	raw := &rawReader{r: rc, total: &uncounted}
	if _, err := io.Copy(io.Discard, raw); err != nil {
		return 0, err
	}
	if raw.n != info.Size {
		return 0, fmt.Errorf("object has %d bytes, %d read: %w", info.Size, raw.n, io.ErrUnexpectedEOF)
	}
	return raw.crc, nil
}

// rangeReaderAt is an io.ReaderAt over ranged reads of one generation of an
// object, with its tail kept in memory (the footer is read from it more
// than once). It remembers the first error of the store, so that it is never
// mistaken for bad input when it surfaces through the decoder.
type rangeReaderAt struct {
	open     func(off, n int64) (io.ReadCloser, error)
	size     int64
	progress *atomic.Int64 // Reader.bytesRead
	credited atomic.Int64  // bytes added to progress, at most size

	tail    []byte // the last len(tail) bytes of the object
	tailOff int64

	mu  sync.Mutex
	err error
}

// readTail reads the last n bytes into memory.
func (a *rangeReaderAt) readTail(n int64) error {
	if n == 0 {
		return nil
	}
	tail := make([]byte, n)
	if _, err := a.ReadAt(tail, a.size-n); err != nil {
		return err
	}
	a.tail, a.tailOff = tail, a.size-n
	return nil
}

// ReadAt reads len(p) bytes at off with one ranged read, from memory for the
// tail. Safe for concurrent use.
func (a *rangeReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at negative offset %d", off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off >= a.size {
		return 0, io.EOF
	}
	want := int(min(int64(len(p)), a.size-off))
	if a.tail != nil && off >= a.tailOff {
		n := copy(p[:want], a.tail[off-a.tailOff:])
		return n, eofIf(n < len(p))
	}
	rc, err := a.open(off, int64(want))
	if err != nil {
		return 0, a.fail(err)
	}
	n, err := io.ReadFull(rc, p[:want])
	_ = rc.Close()
	if n > 0 {
		a.credit(int64(n))
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("object shorter than its %d bytes: %w", a.size, err)
		}
		return n, a.fail(err)
	}
	return n, eofIf(n < len(p))
}

func eofIf(short bool) error {
	if short {
		return io.EOF
	}
	return nil
}

// credit adds n bytes to the progress, as long as the total stays within
// the object's size (the footer and header may be read twice).
func (a *rangeReaderAt) credit(n int64) {
	for {
		c := a.credited.Load()
		add := min(n, a.size-c)
		if add <= 0 || a.credited.CompareAndSwap(c, c+add) {
			if add > 0 {
				a.progress.Add(add)
			}
			return
		}
	}
}

func (a *rangeReaderAt) fail(err error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err == nil {
		a.err = err
	}
	return err
}

func (a *rangeReaderAt) storeErr() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// pqConvert converts one Parquet value; it returns the value, the text to
// show in an error and a reason when the value is bad.
type pqConvert func(v parquet.Value) (value, string, string)

// checkFooter rejects files whose footer length does not fit in the file.
// parquet-go allocates whatever length the footer claims (up to 4 GiB)
// before reading it, so one flipped byte would cost gigabytes.
func checkFooter(f io.ReaderAt, size int64) error {
	const minSize = 4 + 4 + 4 // "PAR1", footer length, "PAR1"
	if size < minSize {
		return badInput("corrupt parquet: %d bytes is too short for a parquet file", size)
	}
	var tail [8]byte
	if _, err := f.ReadAt(tail[:], size-8); err != nil {
		return fmt.Errorf("read parquet footer: %w", err)
	}
	if m := string(tail[4:]); m != "PAR1" {
		if m == "PARE" {
			return badInput("encrypted parquet files are not supported")
		}
		return badInput("corrupt parquet: no magic footer (%q)", m)
	}
	if n := int64(binary.LittleEndian.Uint32(tail[:4])); n > size-minSize {
		return badInput("corrupt parquet: footer of %d bytes in a file of %d", n, size)
	}
	return nil
}

func (r *Reader) decodeParquet(ctx context.Context, f io.ReaderAt, size int64, b *batcher) error {
	if err := checkFooter(f, size); err != nil {
		return err
	}
	pf, err := parquet.OpenFile(f, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true), parquet.ReadBufferSize(parquetReadSize))
	if err != nil {
		return badInput("corrupt parquet: %w", err)
	}
	cols := r.cfg.cols
	leafIndex := make([]int, len(cols)) // -1 for an Optional column the file lacks
	convs := make([]pqConvert, len(cols))
	strs := &arena{} // the chunk's strings; see arena
	fields := pf.Schema().Fields()
	for j := range cols {
		c := &cols[j]
		var field parquet.Field
		for _, fl := range fields {
			if fl.Name() == c.name {
				field = fl
				break
			}
		}
		if field == nil && c.optional {
			leafIndex[j] = -1
			b.file.missing(c.name)
			continue
		}
		if field == nil {
			return badInput("column %q missing from parquet schema", c.name)
		}
		if !field.Leaf() || field.Repeated() {
			return badInput("column %q: nested or repeated parquet columns are not supported", c.name)
		}
		leaf, ok := pf.Schema().Lookup(c.name)
		if !ok {
			return badInput("column %q missing from parquet schema", c.name)
		}
		conv, err := pqConverter(c, field.Type(), strs)
		if err != nil {
			return badInput("column %q: %w", c.name, err)
		}
		leafIndex[j], convs[j] = leaf.ColumnIndex, conv
	}

	// Rows are converted chunk by chunk: at most BatchSize, and no more
	// than the largest row group needs.
	chunk := 1
	for _, rg := range pf.RowGroups() {
		chunk = int(max(int64(chunk), min(int64(r.cfg.BatchSize), rg.NumRows())))
	}
	stage := make([][]value, len(cols)) // stage[column][row in chunk]
	for j := range stage {
		stage[j] = make([]value, chunk)
		if leafIndex[j] < 0 { // null in every row: set once, never overwritten
			for i := range stage[j] {
				stage[j][i].null = true
			}
		}
	}
	rowErr := make([]*RowError, chunk)
	buf := make([]parquet.Value, min(chunk, 4096))
	vals := make([]value, len(cols))
	var idBuf []string
	var row int64 // rows before this chunk

	for _, rg := range pf.RowGroups() {
		nrows := rg.NumRows()
		chunks := rg.ColumnChunks()
		err := func() error {
			cursors := make([]pqCursor, len(cols))
			defer func() {
				for j := range cursors {
					if cursors[j].pages != nil {
						_ = cursors[j].pages.Close()
					}
				}
			}()
			for j := range cols {
				if leafIndex[j] < 0 {
					continue
				}
				if leafIndex[j] >= len(chunks) {
					return badInput("corrupt parquet: row group has %d column chunks, want at least %d", len(chunks), leafIndex[j]+1)
				}
				cursors[j].pages = chunks[leafIndex[j]].Pages()
			}
			for done := int64(0); done < nrows; {
				if err := ctx.Err(); err != nil {
					return err
				}
				m := int(min(int64(chunk), nrows-done))
				strs.reset() // the previous chunk's rows are in the record's columns
				for j := range cols {
					if leafIndex[j] < 0 {
						continue
					}
					for got := 0; got < m; {
						vs, err := cursors[j].next(buf[:min(len(buf), m-got)])
						if errors.Is(err, io.EOF) {
							return badInput("corrupt parquet: column %q has fewer values than its row group's %d rows", cols[j].name, nrows)
						}
						if err != nil {
							return badInput("corrupt parquet: column %q: %w", cols[j].name, err)
						}
						// Convert now: values may point into the page, which
						// the next read may replace.
						for k, v := range vs {
							i := got + k
							var shown, reason string
							stage[j][i], shown, reason = convs[j](v)
							if reason != "" && rowErr[i] == nil {
								rowErr[i] = &RowError{Row: row + int64(i) + 1, Column: cols[j].name, Value: shown, Reason: reason}
							}
						}
						got += len(vs)
					}
				}
				for i := 0; i < m; i++ {
					if e := rowErr[i]; e != nil {
						rowErr[i] = nil
						if err := b.badRow(*e, nil); err != nil {
							return err
						}
						continue
					}
					for j := range vals {
						vals[j] = stage[j][i]
					}
					if len(r.cfg.checks) > 0 {
						ok, err := b.check(ctx, func(j int) string { return vals[j].s }, func() *[]string {
							ids := b.rowIDs(nil, vals)
							for k := range ids {
								ids[k] = strings.Clone(ids[k])
							}
							return &ids
						}, row+int64(i)+1, 0, nil)
						if err != nil {
							return err
						}
						if !ok {
							continue
						}
					}
					if r.cfg.Admit != nil {
						idBuf = b.rowIDs(idBuf, vals)
						ok, err := b.admit(idBuf, row+int64(i)+1, 0, nil)
						if err != nil {
							return err
						}
						if !ok {
							continue
						}
					}
					if err := b.appendRow(ctx, vals); err != nil {
						return err
					}
				}
				done += int64(m)
				row += int64(m)
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	return b.flush(ctx)
}

// pqCursor reads the values of one column chunk, page after page.
type pqCursor struct {
	pages  parquet.Pages
	values parquet.ValueReader
}

// next reads up to len(buf) values, all from one page. They are valid until
// the next call. It returns io.EOF after the last page.
func (c *pqCursor) next(buf []parquet.Value) ([]parquet.Value, error) {
	for stalls := 0; ; {
		if c.values == nil {
			p, err := c.pages.ReadPage()
			if err != nil {
				return nil, err
			}
			c.values = p.Values()
		}
		n, err := c.values.ReadValues(buf)
		if n > 0 {
			return buf[:n], nil
		}
		switch {
		case errors.Is(err, io.EOF):
			c.values = nil
		case err != nil:
			return nil, err
		default:
			if stalls++; stalls > 100 {
				return nil, errors.New("page reader makes no progress")
			}
		}
	}
}

// pqConverter picks the conversion of a Parquet column type to a target
// column, or says why there is none.
func pqConverter(c *colSpec, t parquet.Type, strs *arena) (pqConvert, error) {
	var (
		tsUnit    int64 // units per microsecond scale: see below
		isTS      bool
		isDate    bool
		decScale  int32
		isDecimal bool
		unsigned  bool
		other     string
	)
	if lt := t.LogicalType(); lt != nil {
		switch v := lt.Value.(type) {
		case *pqformat.TimestampType:
			isTS = true
			switch v.Unit.Value.(type) {
			case *pqformat.MilliSeconds:
				tsUnit = 1_000
			case *pqformat.MicroSeconds:
				tsUnit = 1
			case *pqformat.NanoSeconds:
				tsUnit = -1_000
			default:
				return nil, fmt.Errorf("timestamp with unknown unit %s", &v.Unit)
			}
		case *pqformat.DateType:
			isDate = true
		case *pqformat.DecimalType:
			isDecimal, decScale = true, v.Scale
		case *pqformat.IntType:
			unsigned = !v.IsSigned
		case *pqformat.StringType, *pqformat.EnumType, *pqformat.JsonType, *pqformat.NullType, nil:
		default:
			other = lt.String()
		}
	}
	kind := t.Kind()
	cannot := func() (pqConvert, error) {
		name := kind.String()
		if lt := t.LogicalType(); lt != nil && lt.Value != nil {
			name += " (" + lt.String() + ")"
		}
		return nil, fmt.Errorf("parquet type %s cannot be read as %s", name, c.typ)
	}
	if other != "" || (isDecimal && kind != parquet.Int32 && kind != parquet.Int64) {
		return cannot()
	}
	wrap := func(f func(v parquet.Value) (value, string, string)) pqConvert {
		return func(v parquet.Value) (value, string, string) {
			if v.IsNull() {
				val, reason := nullOrMissing(c)
				return val, "", reason
			}
			return f(v)
		}
	}
	// Integers, with their logical reading.
	intOf := func(v parquet.Value) int64 {
		if kind == parquet.Int32 {
			if unsigned {
				return int64(uint32(v.Int32()))
			}
			return int64(v.Int32())
		}
		return v.Int64()
	}
	intText := func(v parquet.Value) string {
		if unsigned && kind == parquet.Int64 {
			return strconv.FormatUint(uint64(v.Int64()), 10)
		}
		return strconv.FormatInt(intOf(v), 10)
	}
	numeric := func(v parquet.Value) float64 {
		switch {
		case unsigned && kind == parquet.Int64:
			return float64(uint64(v.Int64()))
		case isDecimal:
			return float64(intOf(v)) / math.Pow10(int(decScale))
		}
		return float64(intOf(v))
	}

	switch c.typ {
	case tString:
		if isTS || isDate || isDecimal {
			return cannot()
		}
		switch kind {
		case parquet.ByteArray, parquet.FixedLenByteArray:
			return wrap(func(v parquet.Value) (value, string, string) {
				bs := v.ByteArray()
				if !validUTF8Bytes(bs) {
					return value{}, fmt.Sprintf("%x", bs[:min(len(bs), 32)]), reasonBadUTF8
				}
				if len(bs) == 0 && !c.nullable {
					return value{}, "", reasonMissing
				}
				// Copied (values point into the page, which the next read
				// may replace) into the chunk's arena; fromText's UTF-8
				// check is done.
				return value{s: strs.str(bs)}, "", ""
			}), nil
		case parquet.Int32, parquet.Int64:
			return wrap(func(v parquet.Value) (value, string, string) { return value{s: intText(v)}, "", "" }), nil
		case parquet.Float:
			return wrap(func(v parquet.Value) (value, string, string) {
				return value{s: strconv.FormatFloat(float64(v.Float()), 'g', -1, 32)}, "", ""
			}), nil
		case parquet.Double:
			return wrap(func(v parquet.Value) (value, string, string) {
				return value{s: strconv.FormatFloat(v.Double(), 'g', -1, 64)}, "", ""
			}), nil
		case parquet.Boolean:
			return wrap(func(v parquet.Value) (value, string, string) {
				return value{s: strconv.FormatBool(v.Boolean())}, "", ""
			}), nil
		}
	case tFloat:
		if isTS || isDate {
			return cannot()
		}
		switch kind {
		case parquet.Int32, parquet.Int64:
			return wrap(func(v parquet.Value) (value, string, string) { return value{f: numeric(v)}, "", "" }), nil
		case parquet.Float:
			return wrap(func(v parquet.Value) (value, string, string) {
				val, reason := floatValue(float64(v.Float()))
				return val, shownIf(reason, func() string { return fmt.Sprint(v.Float()) }), reason
			}), nil
		case parquet.Double:
			return wrap(func(v parquet.Value) (value, string, string) {
				val, reason := floatValue(v.Double())
				return val, shownIf(reason, func() string { return fmt.Sprint(v.Double()) }), reason
			}), nil
		case parquet.Boolean:
			return wrap(func(v parquet.Value) (value, string, string) {
				if v.Boolean() {
					return value{f: 1}, "", ""
				}
				return value{}, "", ""
			}), nil
		case parquet.ByteArray, parquet.FixedLenByteArray:
			return wrap(func(v parquet.Value) (value, string, string) {
				s := string(v.ByteArray())
				val, reason := fromText(c, s)
				return val, shownIf(reason, func() string { return s }), reason
			}), nil
		}
	case tInt:
		if isTS || isDate {
			return cannot()
		}
		// Integers as they are (a decimal only if its value is whole),
		// floats if they hold an integer, booleans as 0/1, text as
		// parseInt reads it; then the column's ranges.
		checked := func(n int64, reason string, text func() string) (value, string, string) {
			n, reason = c.intValue(n, reason)
			return value{i: n}, shownIf(reason, text), reason
		}
		switch kind {
		case parquet.Int32, parquet.Int64:
			pow := int64(1)
			if isDecimal {
				if decScale > 18 {
					return cannot()
				}
				for range decScale {
					pow *= 10
				}
			}
			return wrap(func(v parquet.Value) (value, string, string) {
				text := func() string { return intText(v) }
				if unsigned && kind == parquet.Int64 && v.Int64() < 0 {
					return value{}, text(), reasonIntRange
				}
				n := intOf(v)
				if n%pow != 0 {
					return value{}, strconv.FormatFloat(numeric(v), 'g', -1, 64), reasonNotInteger
				}
				return checked(n/pow, "", text)
			}), nil
		case parquet.Float, parquet.Double:
			return wrap(func(v parquet.Value) (value, string, string) {
				f := v.Double()
				if kind == parquet.Float {
					f = float64(v.Float())
				}
				n, reason := floatInt(f)
				return checked(n, reason, func() string { return fmt.Sprint(f) })
			}), nil
		case parquet.Boolean:
			return wrap(func(v parquet.Value) (value, string, string) {
				var n int64
				if v.Boolean() {
					n = 1
				}
				return checked(n, "", func() string { return strconv.FormatBool(v.Boolean()) })
			}), nil
		case parquet.ByteArray, parquet.FixedLenByteArray:
			return wrap(func(v parquet.Value) (value, string, string) {
				s := string(v.ByteArray())
				val, reason := fromText(c, s)
				return val, shownIf(reason, func() string { return s }), reason
			}), nil
		}
	case tTimestamp:
		if isDecimal {
			return cannot()
		}
		switch kind {
		case parquet.Int32, parquet.Int64:
			switch {
			case isDate:
				return wrap(func(v parquet.Value) (value, string, string) {
					us, reason := secondsToMicros(intOf(v) * 86400)
					return value{i: us}, shownIf(reason, func() string { return intText(v) }), reason
				}), nil
			case isTS && tsUnit < 0: // nanoseconds
				return wrap(func(v parquet.Value) (value, string, string) {
					n := intOf(v)
					return value{i: floorDiv(n, -tsUnit)}, "", ""
				}), nil
			case isTS:
				return wrap(func(v parquet.Value) (value, string, string) {
					n := intOf(v)
					if n > math.MaxInt64/tsUnit || n < math.MinInt64/tsUnit {
						return value{}, intText(v), reasonTimeRange
					}
					return value{i: n * tsUnit}, "", ""
				}), nil
			}
			return wrap(func(v parquet.Value) (value, string, string) {
				if unsigned && kind == parquet.Int64 && v.Int64() < 0 {
					return value{}, intText(v), reasonTimeRange
				}
				us, reason := secondsToMicros(intOf(v))
				return value{i: us}, shownIf(reason, func() string { return intText(v) }), reason
			}), nil
		case parquet.Float, parquet.Double:
			return wrap(func(v parquet.Value) (value, string, string) {
				f := v.Double()
				if kind == parquet.Float {
					f = float64(v.Float())
				}
				us, reason := floatSecondsToMicros(f)
				return value{i: us}, shownIf(reason, func() string { return fmt.Sprint(f) }), reason
			}), nil
		case parquet.Int96:
			// Legacy Impala/Spark timestamps: nanoseconds of the day, then
			// the Julian day number.
			return wrap(func(v parquet.Value) (value, string, string) {
				x := v.Int96()
				nanos := int64(uint64(x[1])<<32 | uint64(x[0]))
				days := int64(x[2]) - 2440588 // Julian day of 1970-01-01
				us, reason := secondsToMicros(days * 86400)
				if reason != "" {
					return value{}, x.String(), reason
				}
				return value{i: us + nanos/1000}, "", ""
			}), nil
		case parquet.ByteArray, parquet.FixedLenByteArray:
			return wrap(func(v parquet.Value) (value, string, string) {
				s := string(v.ByteArray())
				val, reason := fromText(c, s)
				return val, shownIf(reason, func() string { return s }), reason
			}), nil
		}
	}
	return cannot()
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// shownIf is the value to show in an error: text() when there is a reason,
// nothing otherwise (formatting every good value cost more than converting
// it).
func shownIf(reason string, text func() string) string {
	if reason == "" {
		return ""
	}
	return text()
}

// validUTF8Bytes is utf8.Valid with the ASCII case inline.
func validUTF8Bytes(b []byte) bool {
	for i, c := range b {
		if c >= utf8.RuneSelf {
			return utf8.Valid(b[i:])
		}
	}
	return true
}

// arena holds copies of the byte arrays of one chunk of Parquet rows, as
// strings, until the rows are in the record's columns (which copy them):
// one buffer per chunk instead of one allocation per value. Strings that
// outlive the chunk (error values) must not come from it.
type arena struct{ buf []byte }

// str returns a string holding a copy of b, valid until reset.
func (a *arena) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(a.buf)+len(b) > cap(a.buf) {
		// A new buffer: strings already handed out keep the old one alive.
		a.buf = make([]byte, 0, max(2*cap(a.buf), len(b), 64<<10))
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return unsafe.String(&a.buf[start], len(b))
}

// reset makes the arena's memory reusable: no string it returned may be
// used afterwards.
func (a *arena) reset() { a.buf = a.buf[:0] }
