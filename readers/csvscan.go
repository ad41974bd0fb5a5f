package readers

import (
	"bytes"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"io"
	"math/bits"
	"unicode/utf8"
	"unsafe"
)

// csvScanner splits delimited text into records exactly as encoding/csv's
// Reader does with its defaults and any number of fields per record
// (FieldsPerRecord -1): fields quoted with '"' may hold the delimiter, line
// breaks and doubled quotes; "\r\n" reads as "\n"; empty lines are skipped;
// a quote in an unquoted field, or a quoted field not closed before the
// end of the file or followed by anything but a delimiter or a line break,
// is a *csv.ParseError with the line and byte column csv.Reader gives
// (FuzzCSVScanner compares the two on arbitrary input).
//
// It exists because csv.Reader copies every byte twice and allocates a
// string per record, and splits fields with a call per field: about 40% of
// the CPU of decoding the reference rows. The scanner reads into one
// buffer that holds at least the current record, splits a line without
// quotes 8 bytes at a time, and returns its fields as views of that
// buffer: valid until the next call to next, to be copied by whoever
// keeps them. Only records with quoted fields are copied (unquoted).
type csvScanner struct {
	r       io.Reader
	delim   []byte // the delimiter's UTF-8 encoding
	maxLine int    // bytes in one line, without its line break
	minRead int    // fewest bytes asked of r in one read

	buf        []byte
	start      int   // buf[start:] is kept: the current record's text on
	next, end  int   // buf[next:end] is read and not yet scanned
	err        error // the reader's error, once it has given one
	line       int   // lines read, as csv.Reader counts them
	recLine    int   // line the current record starts on
	fields     []string
	ends       []int  // quoted records: end of each field in unq
	unq        []byte // quoted records: their fields' text, unquoted
	recordText []byte // the current record's text, line breaks included
	unclosed   bool   // the current record ends inside a quoted field
	ascii      bool   // the current record's fields are all ASCII
}

// scanBufSize is the scanner's first buffer; it grows for a longer record.
// Reads are at least minRead bytes, so that a bufio.Reader under the
// scanner copies nothing (it hands reads of its size or more straight on).
const (
	scanBufSize = 256 << 10
	minRead     = 64 << 10
)

func newCSVScanner(r io.Reader, delim rune, maxLine int) *csvScanner {
	return &csvScanner{
		r:       r,
		delim:   utf8.AppendRune(nil, delim),
		maxLine: maxLine,
		minRead: minRead,
		buf:     make([]byte, scanBufSize),
	}
}

// Read returns the next record's fields (views valid until the next call)
// or an error: io.EOF after the last record, a *csv.ParseError for a record
// that breaks the quoting rules (the scanner then goes on with the line
// after it, as csv.Reader does), errLineTooLong, or the reader's error.
func (s *csvScanner) Read() ([]string, error) {
	s.start, s.unclosed = s.next, false
	var line []byte
	var nl bool
	for {
		var err error
		line, nl, err = s.readLine()
		if err != nil {
			return nil, err
		}
		if len(line) > 0 {
			break
		}
		s.start = s.next // an empty line: skipped, not part of any record
	}
	s.recLine = s.line
	var err error
	if bytes.IndexByte(line, '"') < 0 {
		s.split(line)
	} else {
		err = s.parseQuoted(line, nl)
		s.ascii = false
	}
	s.recordText = s.buf[s.start:s.next]
	return s.fields, err
}

// Text is the current record's text as stored, line breaks included.
func (s *csvScanner) Text() []byte { return s.recordText }

// Line is the line the current record starts on (1 for the first).
func (s *csvScanner) Line() int { return s.recLine }

// ASCII reports whether the current record's fields are known to be all
// ASCII (so valid UTF-8): false if they are not, or were not looked at.
func (s *csvScanner) ASCII() bool { return s.ascii }

// Unclosed reports whether the current record's error is a quoted field
// still open at the end of the input.
func (s *csvScanner) Unclosed() bool { return s.unclosed }

// readLine returns the next line without its line break (and without the
// '\r' before it, or a '\r' at the very end of the input, as csv.Reader
// drops them) and whether it had a line break; io.EOF when no byte is
// left. It counts the line, as csv.Reader does even for the final io.EOF.
func (s *csvScanner) readLine() (line []byte, nl bool, err error) {
	for from := s.next; ; {
		if i := bytes.IndexByte(s.buf[from:s.end], '\n'); i >= 0 {
			i += from
			if i-s.next > s.maxLine {
				return nil, false, errLineTooLong
			}
			line, s.next, nl = s.buf[s.next:i], i+1, true
			break
		}
		if s.end-s.next > s.maxLine {
			return nil, false, errLineTooLong
		}
		if s.err != nil {
			if !errors.Is(s.err, io.EOF) {
				return nil, false, s.err
			}
			if s.next == s.end {
				s.line++
				return nil, false, io.EOF
			}
			line, s.next = s.buf[s.next:s.end], s.end
			break
		}
		from = s.end - s.next // where to look on from, relative to next
		s.fill()
		from += s.next
	}
	s.line++
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nl, nil
}

// fill reads more input after buf[:end], moving the kept bytes to the
// front of the buffer first or growing it if less than minRead is free.
func (s *csvScanner) fill() {
	if len(s.buf)-s.end < s.minRead {
		keep := s.buf[s.start:s.end]
		if len(s.buf)-len(keep) < s.minRead {
			nb := make([]byte, 2*len(s.buf)+s.minRead)
			copy(nb, keep)
			s.buf = nb
		} else {
			copy(s.buf, keep)
		}
		s.next -= s.start
		s.end -= s.start
		s.start = 0
	}
	n, err := s.r.Read(s.buf[s.end:])
	s.end += n
	if err != nil {
		s.err = err
	} else if n == 0 {
		s.err = io.ErrNoProgress
	}
}

// split sets fields to the views of a line without quotes, between its
// delimiters, and ascii to whether the line is all ASCII.
func (s *csvScanner) split(line []byte) {
	fields := s.fields[:0]
	defer func() { s.fields = fields }()
	if len(s.delim) > 1 {
		for {
			i := bytes.Index(line, s.delim)
			if i < 0 {
				break
			}
			fields = append(fields, view(line[:i]))
			line = line[i+len(s.delim):]
		}
		fields = append(fields, view(line))
		s.ascii = false // not known: fields are checked one by one
		return
	}
	// The delimiter's bytes are found 8 at a time: x has a zero byte where
	// the word has the delimiter, and the usual carry-free test marks each
	// zero byte's high bit (exactly those: no borrow runs between bytes).
	const low7, high = 0x7f7f7f7f7f7f7f7f, 0x8080808080808080
	pat := uint64(s.delim[0]) * 0x0101010101010101
	from, i := 0, 0
	var or uint64 // every byte's bits: a high bit set if a byte is not ASCII
	for ; i+8 <= len(line); i += 8 {
		w := binary.LittleEndian.Uint64(line[i:])
		or |= w
		x := w ^ pat
		m := ^((x&low7 + low7) | x | low7)
		for m != 0 {
			j := i + bits.TrailingZeros64(m)>>3
			fields = append(fields, view(line[from:j]))
			from = j + 1
			m &= m - 1
		}
	}
	for d := s.delim[0]; i < len(line); i++ {
		or |= uint64(line[i])
		if line[i] == d {
			fields = append(fields, view(line[from:i]))
			from = i + 1
		}
	}
	fields = append(fields, view(line[from:]))
	s.ascii = or&high == 0
}

// parseQuoted sets fields from a record with at least one quote, reading
// the further lines a quoted field spans. Its rules are csv.Reader's
// (LazyQuotes off), and so are its errors' lines and columns.
func (s *csvScanner) parseQuoted(line []byte, nl bool) error {
	s.unq, s.ends = s.unq[:0], s.ends[:0]
	delim := s.delim
	lineNo, col := s.line, 1 // where line starts
	var err error
fields:
	for {
		if len(line) == 0 || line[0] != '"' {
			i := bytes.Index(line, delim)
			field := line
			if i >= 0 {
				field = line[:i]
			}
			if j := bytes.IndexByte(field, '"'); j >= 0 {
				err = &csv.ParseError{StartLine: s.recLine, Line: s.line, Column: col + j, Err: csv.ErrBareQuote}
				break
			}
			s.unq = append(s.unq, field...)
			s.ends = append(s.ends, len(s.unq))
			if i < 0 {
				break
			}
			line = line[i+len(delim):]
			col += i + len(delim)
			continue
		}
		line = line[1:]
		col++
		for {
			if i := bytes.IndexByte(line, '"'); i >= 0 {
				s.unq = append(s.unq, line[:i]...)
				line = line[i+1:]
				col += i + 1
				switch {
				case len(line) > 0 && line[0] == '"': // "" in a quoted field: a quote
					s.unq = append(s.unq, '"')
					line = line[1:]
					col++
				case bytes.HasPrefix(line, delim): // the field's end
					line = line[len(delim):]
					col += len(delim)
					s.ends = append(s.ends, len(s.unq))
					continue fields
				case len(line) == 0: // the record's end
					s.ends = append(s.ends, len(s.unq))
					break fields
				default:
					err = &csv.ParseError{StartLine: s.recLine, Line: s.line, Column: col - 1, Err: csv.ErrQuote}
					break fields
				}
				continue
			}
			if len(line) > 0 || nl {
				// The field goes on on the next line.
				s.unq = append(s.unq, line...)
				col += len(line)
				if nl {
					s.unq = append(s.unq, '\n')
					col++
				}
				var rerr error
				line, nl, rerr = s.readLine()
				switch {
				case errors.Is(rerr, io.EOF):
					line, nl = nil, false
				case rerr != nil:
					return rerr
				case len(line) > 0 || nl: // csv.Reader does not count an empty last line
					lineNo, col = lineNo+1, 1
				}
				continue
			}
			// The end of the input inside a quoted field.
			s.unclosed = true
			err = &csv.ParseError{StartLine: s.recLine, Line: lineNo, Column: col, Err: csv.ErrQuote}
			break fields
		}
	}
	s.fields = s.fields[:0]
	from := 0
	for _, e := range s.ends {
		s.fields = append(s.fields, view(s.unq[from:e]))
		from = e
	}
	return err
}

// view is b as a string without a copy: valid while b's bytes are.
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
