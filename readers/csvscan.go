package readers

import (
	"bytes"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"io"
	"math"
	"math/bits"
	"slices"
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
// It exists because csv.Reader copies every byte twice, allocates a string
// per record and finds each field's end with a call per field
// (docs/performance.md, Decoders). The scanner reads into one buffer that
// holds at least the current record, finds the delimiters of a line
// without quotes 32 bytes at a time (delimEnds, assembly where the CPU has
// AVX2) or 8 (portable), and gives its fields as views of that buffer:
// valid until the next Read, to be copied by whoever keeps them. Only
// records with quoted fields are copied (unquoted).
type csvScanner struct {
	r       io.Reader
	delim   []byte // the delimiter's UTF-8 encoding
	maxLine int    // bytes in one line, without its line break
	minRead int    // fewest bytes asked of r in one read

	buf       []byte
	start     int   // buf[start:] is kept: the current record's text on
	next, end int   // buf[next:end] is read and not yet scanned
	err       error // the reader's error, once it has given one
	line      int   // lines read, as csv.Reader counts them
	recLine   int   // line the current record starts on
	rec       csvRecord
	unq       []byte // quoted records: their fields' text, unquoted
	unclosed  bool   // the current record ends inside a quoted field
	ascii     bool   // the current record's fields are all ASCII
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

// csvRecord is a record's fields: field k is text[ends[k-1]+gap:ends[k]]
// (from 0 for the first), gap the delimiter's length (0 when text holds
// the fields unquoted, one after the other).
type csvRecord struct {
	text []byte
	ends []int32
	gap  int
}

// Len is the number of fields.
func (r *csvRecord) Len() int { return len(r.ends) }

// Field is field k, a view of the scanner's buffer: valid until the next
// Read.
func (r *csvRecord) Field(k int) string {
	lo := 0
	if k > 0 {
		lo = int(r.ends[k-1]) + r.gap
	}
	return view(r.text[lo:r.ends[k]])
}

// Read returns the next record (its fields are views valid until the next
// call) or an error: io.EOF after the last record, a *csv.ParseError for a record
// that breaks the quoting rules (the scanner then goes on with the line
// after it, as csv.Reader does), errLineTooLong, or the reader's error.
func (s *csvScanner) Read() (*csvRecord, error) {
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
	return &s.rec, err
}

// Text is the current record's text as stored, line breaks included.
func (s *csvScanner) Text() []byte { return s.buf[s.start:s.next] }

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
	for range 100 { // a read may give nothing and no error, but not forever
		n, err := s.r.Read(s.buf[s.end:])
		s.end += n
		if err != nil {
			s.err = err
		}
		if n > 0 || err != nil {
			return
		}
	}
	s.err = io.ErrNoProgress
}

// delimEnds finds the delimiters d in a prefix of p, the longest it can
// look at 32 bytes at a time (n, a multiple of 32, perhaps 0): it writes
// base plus their indices in p, in order, to ends (which has room for
// len(p)), and returns how many (k) and whether p[:n] is all ASCII. split
// does the rest. The assembly version is chosen at start on CPUs that
// have it; delimEndsNone, the portable one, looks at nothing.
var delimEnds = delimEndsNone

// delimEndsName names delimEnds' implementation: "avx2" or "go".
var delimEndsName = "go"

func delimEndsNone([]byte, byte, []int32, int) (n, k int, ascii bool) { return 0, 0, true }

// split sets rec to the fields of a line without quotes, between its
// delimiters, and ascii to whether the line is all ASCII.
func (s *csvScanner) split(line []byte) {
	ends := s.rec.ends[:0]
	s.rec.text, s.rec.gap = line, len(s.delim)
	if len(s.delim) > 1 {
		for from := 0; ; {
			i := bytes.Index(line[from:], s.delim)
			if i < 0 {
				break
			}
			ends = append(ends, int32(from+i))
			from += i + len(s.delim)
		}
		s.rec.ends = append(ends, int32(len(line)))
		s.ascii = false // not known: fields are checked one by one
		return
	}
	ends, s.ascii = appendDelims(ends, line, 0, s.delim[0])
	s.rec.ends = append(ends, int32(len(line)))
}

// appendDelims appends base plus the index of every byte d of line to
// ends, in order, and says whether line is all ASCII.
func appendDelims(ends []int32, line []byte, base int, d byte) ([]int32, bool) {
	i, ascii := 0, true
	for {
		// At most 4 KiB at a time, so that ends need not have room for a
		// delimiter in every byte of a long line.
		c := min(len(line)-i, 4096)
		ends = slices.Grow(ends, c)
		n, k, a := delimEnds(line[i:i+c], d, ends[len(ends):len(ends)+c], base+i)
		if n == 0 {
			break
		}
		ends, i, ascii = ends[:len(ends)+k], i+n, ascii && a
	}
	// The rest 8 bytes at a time: x has a zero byte where the word has the
	// delimiter, and the usual carry-free test marks each zero byte's high
	// bit (exactly those: no borrow runs between bytes).
	const low7, high = 0x7f7f7f7f7f7f7f7f, 0x8080808080808080
	pat := uint64(d) * 0x0101010101010101
	var or uint64 // every byte's bits: a high bit set if a byte is not ASCII
	for ; i+8 <= len(line); i += 8 {
		w := binary.LittleEndian.Uint64(line[i:])
		or |= w
		x := w ^ pat
		for m := ^((x&low7 + low7) | x | low7); m != 0; m &= m - 1 {
			ends = append(ends, int32(base+i+bits.TrailingZeros64(m)>>3))
		}
	}
	for ; i < len(line); i++ {
		or |= uint64(line[i])
		if line[i] == d {
			ends = append(ends, int32(base+i))
		}
	}
	return ends, ascii && or&high == 0
}

// csvBlock is records read ahead by readBlock, all views of the scanner's
// buffer: field k of row r is buf[ends[r*stride+k]+1 : ends[r*stride+k+1]]
// (entry r*stride is one before the row's first byte; stride is the
// number of fields plus one).
type csvBlock struct {
	rows   int
	stride int
	ends   []int32
	line   int // the line row 0 is on; row r is on line+r (a block has no empty line)
}

// readBlock reads up to limit records ahead into blk, as Read would read
// them, as long as each is simple: a whole line already in the buffer, not
// longer than maxLine, not empty, without quotes, all ASCII, with exactly
// fields fields. It stops before the first record that is not (Read then
// reads it) and reads no input, so the block's views stay valid until the
// next Read. It reads nothing with a delimiter of more than one byte.
func (s *csvScanner) readBlock(blk *csvBlock, limit, fields int) {
	blk.rows, blk.stride = 0, fields+1
	blk.ends, blk.line = blk.ends[:0], s.line+1
	if len(s.delim) != 1 {
		return
	}
	d := s.delim[0]
	for blk.rows < limit {
		n := bytes.IndexByte(s.buf[s.next:s.end], '\n')
		if n < 0 || n > s.maxLine {
			return
		}
		line := s.buf[s.next : s.next+n]
		if k := len(line); k > 0 && line[k-1] == '\r' {
			line = line[:k-1]
		}
		if len(line) == 0 || bytes.IndexByte(line, '"') >= 0 {
			return
		}
		mark := len(blk.ends)
		ends, ascii := appendDelims(append(blk.ends, int32(s.next-1)), line, s.next, d)
		ends = append(ends, int32(s.next+len(line)))
		if !ascii || len(ends)-mark != blk.stride {
			blk.ends = ends[:mark]
			return
		}
		blk.ends = ends
		s.next += n + 1
		s.start = s.next
		s.line++
		blk.rows++
	}
}

// rewind takes back the rows of blk from row r on: the next Read reads
// row r again.
func (s *csvScanner) rewind(blk *csvBlock, r int) {
	s.next = int(blk.ends[r*blk.stride]) + 1
	s.start = s.next
	s.line = blk.line + r - 1
}

// parseQuoted sets fields from a record with at least one quote, reading
// the further lines a quoted field spans. Its rules are csv.Reader's
// (LazyQuotes off), and so are its errors' lines and columns.
func (s *csvScanner) parseQuoted(line []byte, nl bool) error {
	s.unq = s.unq[:0]
	ends := s.rec.ends[:0]
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
			ends = append(ends, int32(len(s.unq)))
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
					ends = append(ends, int32(len(s.unq)))
					continue fields
				case len(line) == 0: // the record's end
					ends = append(ends, int32(len(s.unq)))
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
	if len(s.unq) > math.MaxInt32 {
		return errors.New("a record of more than 2 GiB")
	}
	s.rec = csvRecord{text: s.unq, ends: ends}
	return err
}

// view is b as a string without a copy: valid while b's bytes are.
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
