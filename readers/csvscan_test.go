package readers

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// scanDelims are the delimiters the scanner is compared with csv.Reader on:
// the two defaults, another ASCII one, and two- and three-byte runes.
var scanDelims = []rune{',', '\t', ';', '§', '│'}

// compareWithCSV reads data with csv.Reader and with the scanner, from
// reads of at most chunk bytes into a buffer of size bytes, and fails on
// the first difference: fields, start lines, errors (kind, lines, column),
// and the record's text (what the csv.Reader's input offsets enclose,
// less the empty lines before the record).
func compareWithCSV(t *testing.T, data []byte, delim rune, chunk, size int) {
	t.Helper()
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comma = delim
	cr.FieldsPerRecord = -1
	var in io.Reader = bytes.NewReader(data)
	if chunk > 0 {
		in = &chunkReader{data: data, n: chunk}
	}
	sc := newCSVScanner(in, delim, 1<<20)
	if size > 0 {
		sc.buf, sc.minRead = make([]byte, size), max(1, size/4)
	}
	var off int64
	for k := 0; ; k++ {
		want, werr := cr.Read()
		rec, gerr := sc.Read()
		var got []string
		if rec != nil {
			for i := range rec.Len() {
				got = append(got, rec.Field(i))
			}
		}
		where := func() string { return "record " + strconv.Itoa(k) }
		var wpe, gpe *csv.ParseError
		switch {
		case errors.Is(werr, io.EOF) || errors.Is(gerr, io.EOF):
			if !errors.Is(werr, io.EOF) || !errors.Is(gerr, io.EOF) {
				t.Fatalf("%s: csv.Reader: %v, scanner: %v", where(), werr, gerr)
			}
			return
		case errors.As(werr, &wpe):
			if !errors.As(gerr, &gpe) || *gpe != *wpe {
				t.Fatalf("%s: csv.Reader: %v, scanner: %v", where(), werr, gerr)
			}
		case werr != nil || gerr != nil:
			t.Fatalf("%s: csv.Reader: %v, scanner: %v", where(), werr, gerr)
		default:
			if !slices.Equal(got, want) {
				t.Fatalf("%s: scanner %q, csv.Reader %q", where(), got, want)
			}
			if sc.ASCII() && slices.ContainsFunc(got, func(f string) bool { return strings.ContainsFunc(f, func(r rune) bool { return r >= utf8.RuneSelf }) }) {
				t.Fatalf("%s: scanner says all ASCII: %q", where(), got)
			}
			if l, _ := cr.FieldPos(0); sc.Line() != l {
				t.Fatalf("%s: scanner says line %d, csv.Reader %d", where(), sc.Line(), l)
			}
		}
		end := cr.InputOffset()
		text := data[off:end]
		if !bytes.HasSuffix(text, sc.Text()) || strings.Trim(string(text[:len(text)-len(sc.Text())]), "\r\n") != "" {
			t.Fatalf("%s: scanner's text %q, input from %d to %d %q", where(), sc.Text(), off, end, text)
		}
		off = end
		if k > len(data) {
			t.Fatalf("more records than bytes")
		}
	}
}

// chunkReader gives data in reads of at most n bytes.
type chunkReader struct {
	data []byte
	n    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.data)
	c.data = c.data[k:]
	return k, nil
}

// forEachSplitter runs f with each implementation of delimEnds in use: the
// one chosen at start (assembly where the CPU has it) and the portable one.
func forEachSplitter(t *testing.T, f func(t *testing.T)) {
	for name, fn := range map[string]func([]byte, byte, []int32, int) (int, int, bool){"chosen": delimEnds, "portable": delimEndsNone} {
		t.Run(name, func(t *testing.T) {
			defer func(old func([]byte, byte, []int32, int) (int, int, bool)) { delimEnds = old }(delimEnds)
			delimEnds = fn
			f(t)
		})
	}
}

// TestDelimEnds checks the delimiter finder in use against a byte loop:
// delimiters at every position of a 32-byte block and across blocks, runs
// of them, non-ASCII bytes anywhere, and a base added to the indices.
func TestDelimEnds(t *testing.T) {
	t.Logf("delimiter finder in use: %s", delimEndsName)
	forEachSplitter(t, testDelimEnds)
}

func testDelimEnds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 2000 {
		p := make([]byte, rng.IntN(300))
		for i := range p {
			switch r := rng.IntN(10); {
			case r < 3:
				p[i] = ','
			case r == 3 && round%2 == 0:
				p[i] = byte(0x80 + rng.IntN(128))
			default:
				p[i] = byte('a' + rng.IntN(26))
			}
		}
		base := rng.IntN(1000)
		ends := make([]int32, len(p))
		n, k, ascii := delimEnds(p, ',', ends, base)
		if n != 0 && n != len(p)&^31 || n == 0 && strings.HasSuffix(t.Name(), "chosen") && delimEndsName != "go" && len(p) >= 32 {
			t.Fatalf("%s looked at %d of %d bytes", delimEndsName, n, len(p))
		}
		var want []int32
		wantASCII := true
		for i, c := range p[:n] {
			if c == ',' {
				want = append(want, int32(base+i))
			}
			wantASCII = wantASCII && c < utf8.RuneSelf
		}
		if !slices.Equal(ends[:k], want) || ascii != wantASCII {
			t.Fatalf("%q: delimiters at %v (ASCII %v), want %v (%v)", p[:n], ends[:k], ascii, want, wantASCII)
		}
	}
}

func TestCSVScannerAsEncodingCSV(t *testing.T) {
	forEachSplitter(t, testCSVScannerAsEncodingCSV)
}

func testCSVScannerAsEncodingCSV(t *testing.T) {
	cases := []string{
		"",
		"\n",
		"\r\n\r\n",
		"\r",
		"a",
		"a,b,c\n1,2,3\n",
		"a,b,c\r\n1,2,3\r\n",
		"a,b\n\n\n1,2\n",
		"a,b\r",
		"a,b\r\r\n",
		"a\rb,c\n",
		",,\n,\n",
		"a,,b,\n",
		`"a","b,c","d""e"` + "\n",
		`"multi` + "\nline\r\n" + `field",x` + "\n" + "next,row\n",
		`"a"b,c` + "\n" + "d,e\n",
		`a"b,c` + "\n" + "d,e\n",
		`a,"b` + "\n",
		`a,"b`,
		`a,"b` + "\n\n",
		`a,"b` + "\r",
		`"a` + "\n" + `b"` + "\n",
		`""` + "\n",
		`"",""` + "\n",
		`"""",x` + "\n",
		`x,"y"` + "\r\n" + "z\n",
		`x,"y" ` + "\n",
		`"a"` + "\n" + `"b"c` + "\n" + `"d"`,
		"é,ü\n\xff,\xfe\n",
		"a;b;\"c;d\"\nx§y§\"z§w\"\n",
		"a│b│\"c│\"\n",
		"first line\n\"\n\"\n",
	}
	for _, c := range cases {
		for _, d := range scanDelims {
			for _, chunk := range []int{0, 1, 3} {
				t.Run("", func(t *testing.T) {
					compareWithCSV(t, []byte(strings.ReplaceAll(c, ",", string(d))), d, chunk, 0)
					compareWithCSV(t, []byte(c), d, chunk, 8)
				})
			}
		}
	}
}

// TestCSVScannerLongInput crosses many buffer refills and growths: lines
// longer than the buffer, quoted fields spanning refills.
func TestCSVScannerLongInput(t *testing.T) {
	forEachSplitter(t, testCSVScannerLongInput)
}

func testCSVScannerLongInput(t *testing.T) {
	var b strings.Builder
	for i := range 2000 {
		switch i % 5 {
		case 0:
			b.WriteString(strings.Repeat("x", i) + ",short\n")
		case 1:
			b.WriteString(`"` + strings.Repeat("q\n", i%37) + `""",` + strconv.Itoa(i) + "\r\n")
		case 2:
			b.WriteString("\n\n")
		case 3:
			b.WriteString(strconv.Itoa(i) + "," + strconv.Itoa(i*i) + ",,\n")
		default:
			b.WriteString(`bad"quote,` + strconv.Itoa(i) + "\n")
		}
	}
	data := []byte(b.String())
	for _, size := range []int{0, 16, 1000} {
		for _, chunk := range []int{0, 7, 4096} {
			compareWithCSV(t, data, ',', chunk, size)
		}
	}
}

func TestCSVScannerLineLimit(t *testing.T) {
	long := strings.Repeat("x", 100)
	for _, c := range []struct {
		in   string
		good int // records read before the long line
	}{
		{"a,b\n" + long + "\n", 1},
		{"a,b\n" + long, 1},
		{"a,\"b\n" + long + "\"\n", 0}, // a line of a quoted field counts as any other
	} {
		sc := newCSVScanner(strings.NewReader(c.in), ',', 99)
		sc.buf, sc.minRead = make([]byte, 16), 4
		for range c.good {
			if _, err := sc.Read(); err != nil {
				t.Fatalf("%q: %v", c.in, err)
			}
		}
		if _, err := sc.Read(); !errors.Is(err, errLineTooLong) {
			t.Fatalf("%q: a line over 99 bytes with a limit of 99: %v, want errLineTooLong", c.in, err)
		}
	}
	sc := newCSVScanner(strings.NewReader(long[:99]+"\n"), ',', 99)
	if rec, err := sc.Read(); err != nil || len(rec.Field(0)) != 99 {
		t.Fatalf("a line of 99 bytes with a limit of 99: %v", err)
	}
}

// emptyReads answers every other read with nothing and no error.
type emptyReads struct {
	r    io.Reader
	skip bool
}

func (e *emptyReads) Read(p []byte) (int, error) {
	if e.skip = !e.skip; e.skip {
		return 0, nil
	}
	return e.r.Read(p)
}

func TestCSVScannerEmptyReads(t *testing.T) {
	sc := newCSVScanner(&emptyReads{r: strings.NewReader("a,b\nc,d\n")}, ',', 1<<20)
	for _, want := range []string{"a", "c"} {
		if rec, err := sc.Read(); err != nil || rec.Field(0) != want {
			t.Fatalf("want a record starting %q: %v", want, err)
		}
	}
	if _, err := sc.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last record: %v, want io.EOF", err)
	}
	sc = newCSVScanner(iotest.ErrReader(nil), ',', 1<<20) // nothing and no error, always
	if _, err := sc.Read(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("a reader that never gives anything: %v, want io.ErrNoProgress", err)
	}
}

func TestCSVScannerReadError(t *testing.T) {
	boom := errors.New("boom")
	sc := newCSVScanner(io.MultiReader(strings.NewReader("a,b\nc,"), iotest.ErrReader(boom)), ',', 1<<20)
	if rec, err := sc.Read(); err != nil || rec.Len() != 2 || rec.Field(0) != "a" || rec.Field(1) != "b" {
		t.Fatalf("first record: %v", err)
	}
	if _, err := sc.Read(); !errors.Is(err, boom) {
		t.Fatalf("the record the read failed in: %v, want the reader's error", err)
	}
}

func FuzzCSVScanner(f *testing.F) {
	for _, s := range []string{"a,b\n", `"a""b",c` + "\r\n", "a\"b\n", `"a` + "\n", "x;\"y\"\"\n\"z\n"} {
		f.Add([]byte(s), uint8(0), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, delim, chunk uint8) {
		// Small buffers: refills and growth on every input, and no 256 KiB
		// allocation per call to slow the fuzzing down.
		compareWithCSV(t, data, scanDelims[int(delim)%len(scanDelims)], int(chunk%16), 64)
		compareWithCSV(t, data, scanDelims[int(delim)%len(scanDelims)], int(chunk%16)+1, 8)
	})
}
