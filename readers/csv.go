package readers

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// decodeCSV reads delimited text into the batcher.
//
// It splits records with csvScanner (encoding/csv's rules and errors,
// without its copies) and fills Arrow builders itself rather than using
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
	conv := newTextRow(len(cols))
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
			// Null in every row: set once here, never converted.
			i, conv.null[j] = -1, true
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
	for {
		if row%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
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
		conv.ascii = cr.ASCII()
		if rec.Len() != len(names) {
			reason := fmt.Sprintf("%d fields, want %d", rec.Len(), len(names))
			// The fields are not where the header says: no id is trusted.
			if err := b.badRow(RowError{Row: row, Line: line, Reason: reason}, raw); err != nil {
				return err
			}
			continue
		}
		good := true
		for j := range cols {
			i := idx[j]
			if i < 0 {
				continue // an Optional column the file lacks: null, as set above
			}
			c := &cols[j]
			s := rec.Field(i)
			var reason string
			if nulls.has(s) {
				reason = conv.setNull(j, c)
			} else {
				reason = conv.convert(j, c, s)
			}
			if reason != "" {
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
				if idx[j] < 0 || conv.null[j] {
					return ""
				}
				return strings.Clone(rec.Field(idx[j])) // a check may keep it
			}, func() *[]string { return r.textIDs(rec, idx) }, row, line, raw)
			if err != nil {
				return err
			}
			good = ok
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
			good = ok
		}
		if good {
			if err := b.appendText(ctx, rec, idx, conv); err != nil {
				return err
			}
		}
	}
	return b.flush(ctx)
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

// textRow is one text row's converted fields, column by column. Strings are
// not copied here (appendText takes them from the row itself), so that
// converting a field stores no pointer: with a value per field, the string
// stores and their GC write barriers cost a fifth of decoding.
type textRow struct {
	null []bool
	f    []float64 // float64 columns
	i    []int64   // int64 columns; timestamp columns, in microseconds

	ascii bool // the row is all ASCII: its strings need no UTF-8 check
}

func newTextRow(n int) *textRow {
	return &textRow{null: make([]bool, n), f: make([]float64, n), i: make([]int64, n)}
}

// setNull records a null in column j, or returns why c rejects it.
func (t *textRow) setNull(j int, c *colSpec) string {
	if !c.nullable {
		return reasonMissing
	}
	t.null[j] = true
	return ""
}

// convert converts a text field that is not null into column j, as
// fromText does; it returns a reason if the field is bad.
func (t *textRow) convert(j int, c *colSpec, s string) string {
	t.null[j] = false
	if s == "" && !c.nullable {
		return reasonMissing
	}
	switch c.typ {
	case tString:
		if !t.ascii && !validUTF8(s) {
			return reasonBadUTF8
		}
	case tFloat:
		v, reason := parseFloat(s)
		t.f[j] = v.f
		return reason
	case tInt:
		v, reason := c.intValue(parseInt(s))
		t.i[j] = v.i
		return reason
	default:
		var reason string
		t.i[j], reason = parseTimestamp(s)
		return reason
	}
	return ""
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
