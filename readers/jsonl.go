package readers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
)

// decodeJSONL reads one JSON object per line into the batcher.
//
// It decodes line by line itself rather than with array.NewJSONReader,
// because that reader does not fit the contract: it decodes a json.Decoder
// stream, so a bad object stops the whole file with no line number (and a
// malformed line cannot be skipped at all); it rejects numbers for utf8
// columns, where we keep the number's text (REST APIs send ids as
// numbers); it reads a number for a timestamp column as a count of the
// column's unit (microseconds) where we read Unix seconds, and does not know
// "2006-01-02 15:04:05"; and it does not reject nulls in non-nullable
// fields. Re-decoding failing chunks line by line would still need all of
// this, so every line goes through it. Blank lines are skipped and are not
// rows.
func (r *Reader) decodeJSONL(ctx context.Context, in io.Reader, b *batcher) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, min(64<<10, r.cfg.lineLimit)), r.cfg.lineLimit)
	cols := r.cfg.cols
	vals := make([]value, len(cols))
	obj := make(map[string]json.RawMessage, len(cols))
	var row, line int64
	for sc.Scan() {
		line++
		if line%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		row++
		clear(obj)
		reason := ""
		if text[0] != '{' {
			reason = "not a JSON object"
		} else if err := json.Unmarshal(text, &obj); err != nil {
			reason = reasonMalformedJS + ": " + err.Error()
		}
		if reason != "" {
			if err := b.badRow(RowError{Row: row, Line: line, Value: string(text[:min(len(text), maxValueInError+1)]), Reason: reason}); err != nil {
				return err
			}
			continue
		}
		good := true
		for j := range cols {
			c := &cols[j]
			raw, ok := obj[c.name]
			var shown string
			vals[j], shown, reason = fromJSON(c, raw, ok)
			if reason != "" {
				if err := b.badRow(RowError{Row: row, Line: line, Column: c.name, Value: shown, Reason: reason}); err != nil {
					return err
				}
				good = false
				break
			}
		}
		if good {
			if err := b.appendRow(ctx, vals); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return badInput("line %d: longer than %d bytes", line+1, r.cfg.lineLimit)
		}
		return badInput("%w", err)
	}
	return b.flush(ctx)
}

// fromJSON converts one member of a JSON object (raw is valid JSON). It
// returns the value, the text to show in an error, and a reason if bad.
func fromJSON(c *colSpec, raw json.RawMessage, present bool) (value, string, string) {
	if !present || string(raw) == "null" {
		v, reason := nullOrMissing(c)
		return v, "", reason
	}
	switch ch := raw[0]; {
	case ch == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return value{}, string(raw), reasonMalformedJS
		}
		v, reason := fromText(c, s)
		return v, s, reason
	case ch == '-' || (ch >= '0' && ch <= '9'):
		v, reason := fromNumber(c, string(raw))
		return v, string(raw), reason
	}
	// true, false, an object or an array.
	shown := string(raw[:min(len(raw), maxValueInError+1)])
	switch c.typ {
	case tString:
		return value{}, shown, reasonNotString
	case tFloat:
		return value{}, shown, reasonNotNumber
	default:
		return value{}, shown, reasonNotTime
	}
}
