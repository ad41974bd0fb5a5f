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
