package readers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/adtech/scorer/internal/perf"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/writers"
)

// BenchmarkDecodeReference decodes Criteo-like rows (internal/perf: an id,
// 13 counts, 26 hashed categoricals; about 240 bytes a row as CSV) into the
// reference spec's schema, from memory, one file at a time: the reader's
// share of an end-to-end run, per format.
func BenchmarkDecodeReference(b *testing.B) {
	const rows = 100_000
	files := map[string][]byte{
		"csv":     referenceCSV(b, rows),
		"jsonl":   referenceJSONL(b, rows),
		"parquet": referenceParquet(b, rows),
	}
	schema := perf.Spec().InputSchema([]string{perf.IDColumn}, false)
	for _, format := range []string{"csv", "jsonl", "parquet"} {
		b.Run(fmt.Sprintf("format=%s/batch=4096", format), func(b *testing.B) {
			benchDecode(b, schema, format, files[format], rows, 0)
		})
	}
}

// BenchmarkDecodeCSVBlocks decodes the reference rows as CSV with blocks
// of rows converted column by column (csvBlockRows, and other sizes) and
// one row at a time (block=0), alternating in the same run.
func BenchmarkDecodeCSVBlocks(b *testing.B) {
	const rows = 100_000
	data := referenceCSV(b, rows)
	schema := perf.Spec().InputSchema([]string{perf.IDColumn}, false)
	for range 3 {
		for _, n := range []int{csvBlockRows, 32, 64, 256, -1} {
			b.Run(fmt.Sprintf("block=%d", max(n, 0)), func(b *testing.B) {
				benchDecode(b, schema, "csv", data, rows, n)
			})
		}
	}
}

// benchDecode reads data, a file of the format with rows rows, into
// batches of 4096, CSV blocks of blockRows rows (Options.blockRows).
func benchDecode(b *testing.B, schema *arrow.Schema, format string, data []byte, rows int64, blockRows int) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		opts := Options{Schema: schema, BatchSize: 4096, CSV: CSVOptions{Header: true}, blockRows: blockRows}
		info := store.ObjectInfo{Key: "dumps/a." + format, Size: int64(len(data))}
		src, err := Open(context.Background(), memBucket{data: data}, []store.ObjectInfo{info}, opts)
		if err != nil {
			b.Fatal(err)
		}
		n := int64(0)
		for {
			rec, err := src.Read(context.Background())
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n += rec.NumRows()
			rec.Release()
		}
		_ = src.Close()
		if n != rows {
			b.Fatalf("%d rows, want %d", n, rows)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkCSVScan splits the reference rows (as CSV) into records and
// fields, nothing more, with the delimiter finder chosen at start (the
// assembly where the CPU has AVX2) and with the portable one, alternating
// in the same run.
func BenchmarkCSVScan(b *testing.B) {
	data := referenceCSV(b, 100_000)
	chosen := delimEndsName
	for range 3 {
		for _, name := range []string{chosen, "go"} {
			b.Run("finder="+name, func(b *testing.B) {
				defer func(old func([]byte, byte, []int32, int) (int, int, bool)) { delimEnds = old }(delimEnds)
				if name == "go" {
					delimEnds = delimEndsNone
				}
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					sc := newCSVScanner(bytes.NewReader(data), ',', maxLineBytes)
					for {
						if _, err := sc.Read(); err != nil {
							if !errors.Is(err, io.EOF) {
								b.Fatal(err)
							}
							break
						}
					}
				}
			})
		}
	}
}

func referenceCSV(b *testing.B, rows int) []byte {
	var buf bytes.Buffer
	if err := perf.NewGenerator(1).WriteCSV(&buf, rows); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// referenceJSONL is the same rows as JSON Lines: counts as numbers, the id
// and categoricals as strings, missing values left out.
func referenceJSONL(b *testing.B, rows int) []byte {
	rec := perf.NewGenerator(1).Record(memory.DefaultAllocator, rows)
	defer rec.Release()
	var buf bytes.Buffer
	for r := range rows {
		buf.WriteByte('{')
		for c := range int(rec.NumCols()) {
			col := rec.Column(c)
			if col.IsNull(r) {
				continue
			}
			if buf.Bytes()[buf.Len()-1] != '{' {
				buf.WriteByte(',')
			}
			fmt.Fprintf(&buf, "%q:", rec.ColumnName(c))
			switch col := col.(type) {
			case *array.String:
				fmt.Fprintf(&buf, "%q", col.Value(r))
			case *array.Float64:
				buf.WriteString(strconv.FormatFloat(col.Value(r), 'g', -1, 64))
			}
		}
		buf.WriteString("}\n")
	}
	return buf.Bytes()
}

// referenceParquet is the same rows as Parquet (one row group, the
// writers package's encoding: zstd, dictionary strings).
func referenceParquet(b *testing.B, rows int) []byte {
	rec := perf.NewGenerator(1).Record(memory.DefaultAllocator, rows)
	defer rec.Release()
	dir := b.TempDir()
	w, err := writers.NewPartWriter(store.NewFileBucket(dir), rec.Schema(), func(int) string { return "a.parquet" },
		writers.PartConfig{RowGroupRows: int64(rows), PartRows: int64(rows)})
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Write(context.Background(), rec); err != nil {
		b.Fatal(err)
	}
	if _, err := w.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "a.parquet"))
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func TestParseSmallIntMatchesParseFloat(t *testing.T) {
	for _, s := range []string{
		"0", "-0", "+0", "7", "-1", "+42", "007", "123456789012345", "-123456789012345",
		"1234567890123456", "", "-", "+", "1.5", "1e3", " 1", "1 ", "0x10", "--1", "9",
	} {
		got, ok := parseSmallInt(s)
		want, err := strconv.ParseFloat(s, 64)
		if ok && (err != nil || math.Float64bits(got) != math.Float64bits(want)) {
			t.Errorf("parseSmallInt(%q) = %v, ParseFloat gives %v, %v", s, got, want, err)
		}
		if !ok && err == nil && len(s) <= 16 && !strings.ContainsAny(s, ".eE x") && s != "1234567890123456" {
			t.Errorf("parseSmallInt(%q) declined an integer", s)
		}
	}
}
