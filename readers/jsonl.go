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
	obj := newJSONRow(cols)
	var row, line int64
	var idBuf []string
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
		reason := ""
		if text[0] != '{' {
			reason = "not a JSON object"
		} else if err := obj.parse(text); err != nil {
			reason = reasonMalformedJS + ": " + err.Error()
		}
		if reason != "" {
			if err := b.badRow(RowError{Row: row, Line: line, Value: string(text[:min(len(text), maxValueInError+1)]), Reason: reason}, text); err != nil {
				return err
			}
			continue
		}
		if obj.unknown != nil && r.cfg.UnknownMembers != "" {
			e := RowError{Row: row, Line: line, Column: memberName(obj.unknown), Reason: r.cfg.UnknownMembers, ids: r.jsonIDs(obj)}
			if err := b.badRow(e, text); err != nil {
				return err
			}
			continue
		}
		good := true
		for j := range cols {
			c := &cols[j]
			var shown string
			vals[j], shown, reason = fromJSON(c, obj.raw[j], obj.present[j])
			if reason != "" {
				e := RowError{Row: row, Line: line, Column: c.name, Value: shown, Reason: reason, ids: r.jsonIDs(obj)}
				if err := b.badRow(e, text); err != nil {
					return err
				}
				good = false
				break
			}
		}
		if good && len(r.cfg.checks) > 0 {
			ok, err := b.check(ctx, func(j int) string { return vals[j].s }, func() *[]string { return r.jsonIDs(obj) }, row, line, text)
			if err != nil {
				return err
			}
			good = ok
		}
		if good && r.cfg.Admit != nil {
			idBuf = b.rowIDs(idBuf, vals)
			ok, err := b.admit(idBuf, row, line, text)
			if err != nil {
				return err
			}
			good = ok
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

// jsonIDs are the id values of a parsed object, nil unless all are good.
func (r *Reader) jsonIDs(obj *jsonRow) *[]string {
	if len(r.cfg.ids) == 0 {
		return nil
	}
	ids := make([]string, len(r.cfg.ids))
	for k, j := range r.cfg.ids {
		c := &r.cfg.cols[j]
		v, _, reason := fromJSON(c, obj.raw[j], obj.present[j])
		if reason != "" || v.null || v.s == "" {
			return nil
		}
		ids[k] = v.s
	}
	return &ids
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
		s, ok := plainJSONString(raw)
		if !ok {
			if err := json.Unmarshal(raw, &s); err != nil {
				return value{}, string(raw), reasonMalformedJS
			}
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
	case tInt:
		return value{}, shown, reasonNotInteger
	default:
		return value{}, shown, reasonNotTime
	}
}

// jsonRow holds the members of one JSON object that the target columns
// name, as raw JSON. It replaces json.Unmarshal into a
// map[string]json.RawMessage (which allocated a key and a value copy per
// member, 180 allocations for a 40-column row) with a walk over the
// object's bytes once json.Valid has accepted them; invalid lines still get
// json.Unmarshal's error. As with the map, a repeated member's last value
// counts. raw points into the line, valid until the next line.
type jsonRow struct {
	index   map[string]int // target column by name
	raw     [][]byte
	present []bool
	unknown []byte // the key token of the first member no column names, nil if none
}

func newJSONRow(cols []colSpec) *jsonRow {
	r := &jsonRow{index: make(map[string]int, len(cols)), raw: make([][]byte, len(cols)), present: make([]bool, len(cols))}
	for j, c := range cols {
		r.index[c.name] = j
	}
	return r
}

// parse reads a line that starts with '{'.
func (r *jsonRow) parse(text []byte) error {
	clear(r.raw)
	clear(r.present)
	r.unknown = nil
	if !json.Valid(text) {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(text, &obj); err != nil {
			return err
		}
		return errors.New("invalid JSON") // not reached: Valid and Unmarshal agree
	}
	i := skipSpace(text, 1)
	for i < len(text) && text[i] != '}' {
		kend := skipString(text, i)
		quoted := text[i:kend]
		i = skipSpace(text, skipSpace(text, kend)+1) // past ':'
		vend := skipValue(text, i)
		if j, ok := r.column(quoted); ok {
			r.raw[j], r.present[j] = text[i:vend], true
		} else if r.unknown == nil {
			r.unknown = quoted
		}
		i = skipSpace(text, vend)
		if i < len(text) && text[i] == ',' {
			i = skipSpace(text, i+1)
		}
	}
	return nil
}

// column finds the target column of a member key, given as its string
// token.
func (r *jsonRow) column(quoted []byte) (int, bool) {
	if key := quoted[1 : len(quoted)-1]; bytes.IndexByte(key, '\\') < 0 && validUTF8Bytes(key) {
		j, ok := r.index[string(key)]
		return j, ok
	}
	var k string
	if err := json.Unmarshal(quoted, &k); err != nil {
		return 0, false
	}
	j, ok := r.index[k]
	return j, ok
}

// memberName is a member's name from its key token.
func memberName(quoted []byte) string {
	var k string
	if json.Unmarshal(quoted, &k) != nil {
		return string(quoted)
	}
	return k
}

// plainJSONString is the value of a JSON string token without escapes and
// with valid UTF-8, which is its bytes between the quotes; ok is false for
// any other token.
func plainJSONString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') >= 0 || !validUTF8Bytes(body) {
		return "", false
	}
	return string(body), true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string token at b[i] ('"').
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the (valid) JSON value at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}
