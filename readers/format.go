package readers

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

type formatKind uint8

const (
	kindCSV formatKind = iota
	kindTSV
	kindJSONL
	kindParquet
)

// format is how a file is decoded, known from its name.
type format struct {
	kind formatKind
	gzip bool
}

// formatOf maps a key's extension to its format: .csv, .tsv, .jsonl,
// .ndjson, .json (one object per line), .parquet, and .gz after a text one.
// Case is ignored.
func formatOf(key string) (format, error) {
	name := strings.ToLower(path.Base(key))
	var f format
	if strings.HasSuffix(name, ".gz") {
		f.gzip = true
		name = strings.TrimSuffix(name, ".gz")
	}
	switch path.Ext(name) {
	case ".csv":
		f.kind = kindCSV
	case ".tsv":
		f.kind = kindTSV
	case ".jsonl", ".ndjson", ".json":
		f.kind = kindJSONL
	case ".parquet":
		if f.gzip {
			return f, badInput("unsupported format %q (Parquet compresses inside the file; gzip around it is not supported)", path.Base(key))
		}
		f.kind = kindParquet
	default:
		return f, badInput("unknown format of %q (want .csv, .tsv, .jsonl, .ndjson, .json, .parquet, or a text one with .gz)", path.Base(key))
	}
	return f, nil
}

// maxLineBytes bounds one line of a text file, so that a file without line
// breaks cannot make a decoder hold it whole.
const maxLineBytes = 64 << 20

var errLineTooLong = errors.New("line too long")

// readText decodes a CSV, TSV or JSON Lines file, gunzipping it first if
// its name says so. Nothing is held beyond one line and one batch.
func (r *Reader) readText(ctx context.Context, fs *fileState, raw io.Reader, b *batcher) error {
	if !fs.task.format.gzip {
		return r.decodeText(ctx, fs, raw, b)
	}
	cr := &countReader{r: bufio.NewReaderSize(raw, 64<<10)}
	zr, err := gzip.NewReader(cr)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // not even a header
		}
		return badInput("truncated or corrupt gzip: %w", err)
	}
	defer func() { _ = zr.Close() }()
	err = r.decodeText(ctx, fs, gzipErrors{zr, cr}, b)
	if err != nil && errors.Is(err, ErrBadInput) && !errors.As(err, new(gzipError)) {
		// Damage inside a gzip stream decodes to wrong text until the
		// checksum at its end: a bad row may be the first symptom of a
		// corrupt file. Read the stream to its end to tell the two apart.
		if _, derr := io.Copy(io.Discard, gzipErrors{zr, cr}); derr != nil {
			var ge gzipError
			if errors.As(derr, &ge) {
				return badInput("%w; the text before it is unreliable (first symptom: %v)", ge, err)
			}
		}
	}
	return err
}

func (r *Reader) decodeText(ctx context.Context, fs *fileState, in io.Reader, b *batcher) error {
	br := bufio.NewReaderSize(in, 64<<10)
	// A UTF-8 byte order mark is not part of the first column name or line.
	if bom, err := br.Peek(3); err == nil && bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3)
	}
	switch fs.task.format.kind {
	case kindJSONL:
		return r.decodeJSONL(ctx, br, b)
	default:
		delim := r.cfg.CSV.Delimiter
		if delim == 0 {
			delim = ','
			if fs.task.format.kind == kindTSV {
				delim = '\t'
			}
		}
		return r.decodeCSV(ctx, br, delim, b)
	}
}

// countReader counts the compressed bytes the gzip decoder consumes (it
// is a flate.Reader, so the decoder reads no further than it needs).
type countReader struct {
	r *bufio.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

// gzipError is a failure of the gzip stream itself: truncated, a corrupt
// deflate block, a checksum or length that does not match.
type gzipError struct {
	offset int64 // compressed bytes consumed when it was found
	err    error
}

func (e gzipError) Error() string {
	return fmt.Sprintf("truncated or corrupt gzip stream, found at compressed byte %d: %v", e.offset, e.err)
}

func (e gzipError) Unwrap() error { return e.err }

// gzipErrors names errors of the gzip stream as such.
type gzipErrors struct {
	r  io.Reader
	cr *countReader
}

func (g gzipErrors) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = gzipError{offset: g.cr.n, err: err}
	}
	return n, err
}
