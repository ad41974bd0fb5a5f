package readers

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// decodeCSV reads delimited text into the batcher.
//
// It splits records with csvScanner (encoding/csv's rules and errors,
// without its copies) and fills the record's columns itself rather than using
// arrow/csv, because arrow/csv cannot give what the error contract needs:
// it stops for good at the first ragged row (so the row cannot be reported
// through OnBadRow and skipped), it gives no line numbers for rows (quoted
// fields may span lines, so the line is not the row number plus one), and it
// needs the input columns to match the schema one to one, where we pick
// columns by header name and ignore the others.
func (r *Reader) decodeCSV(ctx context.Context, in io.Reader, delim rune, b *batcher) error {
	cr := newCSVScanner(in, delim, r.cfg.lineLimit)
	opts := r.cfg.CSV
	var names []string
	source := "header"
	if opts.Header || len(opts.ColumnNames) == 0 {
		rec, err := cr.Read()
		switch {
		case errors.Is(err, io.EOF):
			return badInput("empty file: no header line")
		case errors.Is(err, errLineTooLong):
			return badInput("header: a line longer than %d bytes", r.cfg.lineLimit)
		case err != nil:
			return badInput("header: %w", err)
		}
		names = make([]string, rec.Len())
		for i := range names {
			names[i] = strings.TrimSpace(strings.Clone(rec.Field(i)))
		}
	}
	if len(opts.ColumnNames) > 0 {
		names, source = opts.ColumnNames, "column names"
	}

	cols := r.cfg.cols
	idx := make([]int, len(cols)) // input field of each target column; -1 if the file lacks it
	pos := make(map[string]int, len(names))
	for i, n := range names {
		if _, dup := pos[n]; dup {
			pos[n] = -1
			continue
		}
		pos[n] = i
	}
	for j, c := range cols {
		i, ok := pos[c.name]
		switch {
		case !ok && c.optional:
			i = -1 // null in every row
			b.file.missing(c.name)
		case !ok:
			return badInput("column %q missing from %s", c.name, source)
		case i < 0:
			return badInput("column %q appears more than once in %s", c.name, source)
		}
		idx[j] = i
	}

	nulls := &r.cfg.nulls
	var idBuf []string
	var row, line int64
	// Simple rows (csvScanner.readBlock) are converted a block at a time,
	// column by column, while no check or Admit needs to see each row;
	// a record the block stops at, and a row with a bad value, go through
	// the loop's one-row path below, which reports it.
	blocks := r.cfg.blockRows > 0 && len(r.cfg.checks) == 0 && r.cfg.Admit == nil
	var blk csvBlock
	for {
		if blocks || row%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if blocks {
			n := min(r.cfg.blockRows, r.cfg.BatchSize-b.n)
			cr.readBlock(&blk, n, len(names))
			if blk.rows > 0 {
				good := b.setBlock(&blk, cr.buf, cols, idx, nulls)
				if good > 0 {
					row, line = row+int64(good), int64(blk.line+good-1)
					if err := b.commitRows(ctx, good); err != nil {
						return err
					}
				}
				if good == blk.rows {
					continue
				}
				cr.rewind(&blk, good)
			}
		}
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				// The scanner goes on after the line in error, so this is
				// one bad row; but a quoted field still open at the end of
				// the file has swallowed every line after it, which must
				// not pass for a single dropped row.
				if cr.Unclosed() {
					return badInput("line %d: quoted field not closed before the end of the file", pe.StartLine)
				}
				row++
				reason := fmt.Sprintf("malformed CSV at line %d, column %d: %v", pe.Line, pe.Column, pe.Err)
				if err := b.badRow(RowError{Row: row, Line: int64(pe.StartLine), Reason: reason}, cr.Text()); err != nil {
					return err
				}
				continue
			}
			if errors.Is(err, errLineTooLong) {
				return badInput("a line after line %d is longer than %d bytes", line, r.cfg.lineLimit)
			}
			return badInput("%w", err)
		}
		row++
		line = int64(cr.Line())
		raw := cr.Text()
		ascii := cr.ASCII()
		if rec.Len() != len(names) {
			reason := fmt.Sprintf("%d fields, want %d", rec.Len(), len(names))
			// The fields are not where the header says: no id is trusted.
			if err := b.badRow(RowError{Row: row, Line: line, Reason: reason}, raw); err != nil {
				return err
			}
			continue
		}
		// Each field is converted into its column as it is read; a bad
		// one takes the row's values back.
		good := true
		for j := range cols {
			i := idx[j]
			if i < 0 {
				b.setNull(j) // an Optional column the file lacks
				continue
			}
			c := &cols[j]
			s := rec.Field(i)
			var reason string
			switch {
			case !nulls.has(s):
				if sc := b.plainString(j, s, ascii); sc != nil {
					sc.set(b.n, s) // setText's first case, without the call
					break
				}
				reason = b.setText(j, c, s, ascii)
			case c.nullable:
				b.setNull(j)
			default:
				reason = reasonMissing
			}
			if reason != "" {
				b.rollback()
				e := RowError{Row: row, Line: line, Column: c.name, Value: strings.Clone(s), Reason: reason, ids: r.textIDs(rec, idx)}
				if err := b.badRow(e, raw); err != nil {
					return err
				}
				good = false
				break
			}
		}
		if good && len(r.cfg.checks) > 0 {
			ok, err := b.check(ctx, func(j int) string {
				if idx[j] < 0 || b.null(j) {
					return ""
				}
				return strings.Clone(rec.Field(idx[j])) // a check may keep it
			}, func() *[]string { return r.textIDs(rec, idx) }, row, line, raw)
			if err != nil {
				return err
			}
			if good = ok; !ok {
				b.rollback()
			}
		}
		if good && r.cfg.Admit != nil {
			idBuf = idBuf[:0]
			for _, j := range r.cfg.ids {
				idBuf = append(idBuf, rec.Field(idx[j]))
			}
			ok, err := b.admit(idBuf, row, line, raw)
			if err != nil {
				return err
			}
			if good = ok; !ok {
				b.rollback()
			}
		}
		if good {
			if err := b.commitRow(ctx); err != nil {
				return err
			}
		}
	}
	return b.flush(ctx)
}

// csvBlockRows is the most rows decodeCSV reads in one block
// (Options.blockRows). Blocks of 32 to 256 rows decoded the reference rows
// equally fast (BenchmarkDecodeCSVBlocks); 128 rows of 40 fields keep a
// block's field ends (21 KiB) in the L1 cache.
const csvBlockRows = 128

// setBlock converts the fields of blk's rows into the columns from row
// b.n on, column by column: it returns how many rows, from the first, are
// good: all, or those before the first row with a value setText would
// call bad (read it again one row at a time to report it). Each column
// stops at its first bad value, the next ones at the first bad row so far;
// the values set for rows from the first bad one on are taken back, as
// rollback takes back a row's. The caller commits the good rows
// (commitRows).
func (b *batcher) setBlock(blk *csvBlock, text []byte, cols []colSpec, idx []int, nulls *nullSet) int {
	b.reserve(blk.rows)
	good := blk.rows
	for j := range cols {
		i := idx[j]
		if i < 0 { // an Optional column the file lacks
			for r := range good {
				b.setNullAt(j, b.n+r)
			}
			continue
		}
		f := blockFields{text: text, ends: blk.ends[i:], stride: blk.stride}
		c := &cols[j]
		switch {
		case b.str[j] != nil:
			good = b.str[j].setFields(b.n, good, f, nulls, c.nullable)
		case b.f64[j] != nil:
			good = setFloats(b.f64[j], b.n, good, f, nulls, c.nullable)
		default:
			good = setInts(b.i64[j], b.n, good, f, nulls, c)
		}
	}
	if good < blk.rows {
		b.rollbackTo(b.n + good)
	}
	return good
}

// blockFields is one field of a block's rows: row r's is
// text[ends[r*stride]+1 : ends[r*stride+1]].
type blockFields struct {
	text   []byte
	ends   []int32 // from the block's ends at the field's index
	stride int
}

// setFields sets values row..row+n-1 from fields 0..n-1 of f (all ASCII),
// as decodeCSV's one-row path would; it stops at the first field that path
// would call bad and returns its index (n if none).
//
// Its inner loop takes the common value, 1 to 16 bytes that cannot be
// null, with one 16-byte move (text and the column have room after it),
// and calls nothing: with a call in the loop the compiler keeps the loop's
// variables in memory. Any other value goes through the outer loop, as
// strCol.set would set it.
func (c *strCol) setFields(row, n int, f blockFields, nulls *nullSet, nullable bool) int {
	offs, valid := c.offs[row+1:row+1+n], c.valid[row:row+n]
	text, ends, stride := f.text, f.ends, f.stride
	c.data = slices.Grow(c.data, 16*n)
	data := c.data
	for r, k := 0, 0; r < n; r, k = r+1, k+stride { // k: row r's entry in ends
		p, w, room := unsafe.Pointer(unsafe.SliceData(data)), len(data), cap(data)-16
		for ; r < n; r, k = r+1, k+stride {
			lo, hi := int(ends[k])+1, int(ends[k+1])
			m := hi - lo
			if uint(m-1) >= 16 || w > room || lo > len(text)-16 || nulls.mayHold(m, text[lo]) {
				break
			}
			*(*[2]uint64)(unsafe.Add(p, w)) = *(*[2]uint64)(unsafe.Pointer(&text[lo]))
			w += m
			offs[r], valid[r] = int32(w), 1
		}
		data = data[:w]
		if r == n {
			break
		}
		s := view(text[ends[k]+1 : ends[k+1]])
		switch {
		case nulls.has(s):
			if !nullable {
				c.data = data
				return r
			}
			valid[r] = 0
		case s == "" && !nullable:
			c.data = data
			return r
		default:
			data = append(data, s...)
			valid[r] = 1
		}
		offs[r] = int32(len(data))
	}
	c.data = data
	return n
}

// setFloats is setFields for a float64 column. Its inner loop takes 1 to
// 15 digits that cannot be null (parseSmallInt's common case, exact in a
// float64) without a call; any other value goes through parseFloat.
func setFloats(c *numCol[float64], row, n int, f blockFields, nulls *nullSet, nullable bool) int {
	vals, valid := c.vals[row:row+n], c.valid[row:row+n]
	text, ends, stride := f.text, f.ends, f.stride
	for r, k := 0, 0; r < n; r, k = r+1, k+stride { // k: row r's entry in ends
	digits:
		for ; r < n; r, k = r+1, k+stride {
			lo, hi := int(ends[k])+1, int(ends[k+1])
			if m := hi - lo; uint(m-1) >= 15 || nulls.mayHold(m, text[lo]) {
				break
			}
			var x int64
			for _, ch := range text[lo:hi] {
				d := ch - '0'
				if d > 9 {
					break digits
				}
				x = x*10 + int64(d)
			}
			vals[r], valid[r] = float64(x), 1
		}
		if r == n {
			break
		}
		s := view(text[ends[k]+1 : ends[k+1]])
		if nulls.has(s) {
			if !nullable {
				return r
			}
			vals[r], valid[r] = 0, 0
			continue
		}
		v, reason := parseFloat(s) // "" is not a number either
		if reason != "" {
			return r
		}
		vals[r], valid[r] = v, 1
	}
	return n
}

// setInts is setFields for an int64 or timestamp column.
func setInts(c *numCol[int64], row, n int, f blockFields, nulls *nullSet, spec *colSpec) int {
	vals, valid := c.vals[row:row+n], c.valid[row:row+n]
	text, ends, stride := f.text, f.ends, f.stride
	k := 0 // row r's entry in ends
	for r := range valid {
		s := view(text[ends[k]+1 : ends[k+1]])
		k += stride
		if nulls.has(s) {
			if !spec.nullable {
				return r
			}
			vals[r], valid[r] = 0, 0
			continue
		}
		var v int64
		var reason string
		if spec.typ == tInt {
			v, reason = spec.intValue(parseInt(s))
		} else {
			v, reason = parseTimestamp(s)
		}
		if reason != "" { // "" is not a number either
			return r
		}
		vals[r], valid[r] = v, 1
	}
	return n
}

// textIDs are the id values of a text row whose fields match the header,
// nil unless all are good.
func (r *Reader) textIDs(rec *csvRecord, idx []int) *[]string {
	if len(r.cfg.ids) == 0 {
		return nil
	}
	ids := make([]string, len(r.cfg.ids))
	for k, j := range r.cfg.ids {
		s := rec.Field(idx[j])
		if s == "" || r.cfg.nulls.has(s) || !validUTF8(s) {
			return nil
		}
		ids[k] = strings.Clone(s)
	}
	return &ids
}

// validUTF8 is utf8.ValidString with the ASCII case inline: most fields are
// short ASCII strings, for which the call costs more than the check.
func validUTF8(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return utf8.ValidString(s[i:])
		}
	}
	return true
}
