package readers

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/parquet-go/parquet-go"

	"github.com/adtech/scorer/readers/store"
)

// newMem returns a checked allocator that must be back at zero when the
// test ends (records released, builders freed).
func newMem(t testing.TB) *memory.CheckedAllocator {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

var tsType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

// adSchema is the target schema of most tests.
var adSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.BinaryTypes.String, Nullable: false},
	{Name: "cat", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "price", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "ts", Type: tsType, Nullable: true},
}, nil)

// adRow is one row of adSchema, as the tests compare it.
type adRow struct {
	ID    string
	Cat   *string
	Price *float64
	TS    *int64 // microseconds since the epoch
}

func (r adRow) String() string {
	s := r.ID
	for _, p := range []any{r.Cat, r.Price, r.TS} {
		switch v := p.(type) {
		case *string:
			if v == nil {
				s += " <nil>"
			} else {
				s += fmt.Sprintf(" %q", *v)
			}
		case *float64:
			if v == nil {
				s += " <nil>"
			} else {
				s += fmt.Sprintf(" %v", *v)
			}
		case *int64:
			if v == nil {
				s += " <nil>"
			} else {
				s += " " + time.UnixMicro(*v).UTC().Format(time.RFC3339Nano)
			}
		}
	}
	return s
}

func ptr[T any](v T) *T { return &v }

var baseTime = time.Date(2020, 9, 2, 10, 0, 0, 0, time.UTC)

// makeRows returns n rows with ids prefix1000.. and every kind of null.
func makeRows(prefix string, n int) []adRow {
	rows := make([]adRow, n)
	for i := range rows {
		r := adRow{ID: fmt.Sprintf("%s%d", prefix, 1000+i)} // numeric when prefix is ""
		if i%5 != 0 {
			r.Cat = ptr(fmt.Sprintf("%03d", i%7)) // "003": stays a string
		}
		if i%4 != 1 {
			r.Price = ptr(float64(i)*1.5 - 3)
		}
		if i%6 != 2 {
			us := baseTime.Add(time.Duration(i) * time.Hour).UnixMicro()
			if i%3 == 0 {
				us += 123456 // fractional seconds
			}
			r.TS = ptr(us)
		}
		rows[i] = r
	}
	return rows
}

// tsText writes a timestamp in one of the accepted text forms.
func tsText(us int64, i int) string {
	t := time.UnixMicro(us).UTC()
	switch i % 5 {
	case 0:
		return t.Format(time.RFC3339Nano)
	case 1:
		return t.In(time.FixedZone("", 2*3600)).Format(time.RFC3339Nano)
	case 2:
		return t.Format("2006-01-02 15:04:05.999999")
	case 3:
		return t.Format("2006-01-02T15:04:05.999999")
	default:
		return fmt.Sprintf("%d.%06d", us/1e6, us%1e6) // Unix seconds
	}
}

func fmtFloat(f float64) string { return fmt.Sprintf("%.1f", f) } // "260.0" style

// csvBytes writes rows as delimited text with a header (columns in another
// order than the schema, plus an ignored one), nulls as "" or "NA".
// formatFile is one file of rows in one of the formats, named by its key.
type formatFile struct {
	key  string
	data []byte
}

// everyFormat is rows as a CSV, a JSON Lines and a Parquet file.
func everyFormat(t testing.TB, rows []adRow) []formatFile {
	return []formatFile{{"a.csv", csvBytes(rows, ",")}, {"a.jsonl", jsonlBytes(rows)}, {"a.parquet", parquetBytes(t, rows)}}
}

func csvBytes(rows []adRow, delim string) []byte {
	var b bytes.Buffer
	b.WriteString(strings.Join([]string{"extra", "ts", "price", "id", "cat"}, delim) + "\n")
	for i, r := range rows {
		null := ""
		if i%2 == 1 {
			null = "NA"
		}
		cat, price, ts := null, null, null
		if r.Cat != nil {
			cat = *r.Cat
		}
		if r.Price != nil {
			price = fmtFloat(*r.Price)
		}
		if r.TS != nil {
			ts = tsText(*r.TS, i)
		}
		b.WriteString(strings.Join([]string{"x" + fmt.Sprint(i), ts, price, r.ID, cat}, delim) + "\n")
	}
	return b.Bytes()
}

// jsonlBytes writes rows as JSON Lines, varying how values are given:
// numeric ids as numbers, prices as strings, timestamps as Unix seconds,
// nulls as null or missing members.
func jsonlBytes(rows []adRow) []byte {
	var b bytes.Buffer
	for i, r := range rows {
		m := map[string]any{"extra": map[string]any{"nested": []int{1, 2}}}
		if n, err := json.Number(r.ID).Int64(); err == nil && i%2 == 0 {
			m["id"] = json.Number(fmt.Sprint(n))
		} else {
			m["id"] = r.ID
		}
		if r.Cat != nil {
			m["cat"] = *r.Cat
		} else if i%2 == 0 {
			m["cat"] = nil
		}
		if r.Price != nil {
			if i%3 == 0 {
				m["price"] = fmt.Sprint(*r.Price)
			} else {
				m["price"] = *r.Price
			}
		} else if i%2 == 1 {
			m["price"] = nil
		}
		if r.TS != nil {
			if i%2 == 0 {
				m["ts"] = json.Number(fmt.Sprintf("%d.%06d", *r.TS/1e6, *r.TS%1e6))
			} else {
				m["ts"] = tsText(*r.TS, i)
			}
		}
		line, err := json.Marshal(m)
		if err != nil {
			panic(err)
		}
		b.Write(line)
		b.WriteByte('\n')
		if i%7 == 3 {
			b.WriteString("\n") // blank lines are skipped
		}
	}
	return b.Bytes()
}

// pqAd is adSchema as Parquet, plus an ignored column.
type pqAd struct {
	Extra int32    `parquet:"extra"`
	TS    *int64   `parquet:"ts,optional,timestamp(microsecond)"`
	Price *float64 `parquet:"price,optional"`
	ID    string   `parquet:"id"`
	Cat   *string  `parquet:"cat,optional,dict"`
}

func parquetBytes(t testing.TB, rows []adRow, opts ...parquet.WriterOption) []byte {
	t.Helper()
	pq := make([]pqAd, len(rows))
	for i, r := range rows {
		pq[i] = pqAd{Extra: int32(i), TS: r.TS, Price: r.Price, ID: r.ID, Cat: r.Cat}
	}
	return writeParquet(t, pq, opts...)
}

func writeParquet[T any](t testing.TB, rows []T, opts ...parquet.WriterOption) []byte {
	t.Helper()
	var b bytes.Buffer
	w := parquet.NewGenericWriter[T](&b, opts...)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gzipBytes(data []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write(data)
	_ = zw.Close()
	return b.Bytes()
}

// fixture is a bucket in a temporary folder.
type fixture struct {
	t   testing.TB
	dir string
	b   store.Bucket
}

func newFixture(t testing.TB) *fixture {
	dir := t.TempDir()
	return &fixture{t: t, dir: dir, b: store.NewFileBucket(dir)}
}

// put writes an object and returns its info as List gives it.
func (f *fixture) put(key string, data []byte) store.ObjectInfo {
	f.t.Helper()
	p := filepath.Join(f.dir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		f.t.Fatal(err)
	}
	info, err := f.b.Stat(context.Background(), key)
	if err != nil {
		f.t.Fatal(err)
	}
	return info
}

// result is everything read from a source.
type result struct {
	rows    []adRow
	files   []string // SourceFile of each row
	batches []int    // rows per record
	err     error
}

// drain reads src to the end (or its first error) and releases every
// record.
func drain(t testing.TB, src Source) result {
	t.Helper()
	var res result
	ctx := context.Background()
	for {
		rec, err := src.Read(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				res.err = err
			}
			return res
		}
		if !rec.Schema().Equal(src.Schema()) {
			t.Errorf("record schema %s, want %s", rec.Schema(), src.Schema())
		}
		res.batches = append(res.batches, int(rec.NumRows()))
		file := SourceFile(rec)
		if !rec.Schema().Equal(adSchema) {
			res.rows = append(res.rows, make([]adRow, rec.NumRows())...)
			rec.Release()
			continue
		}
		for _, r := range adRows(t, rec) {
			res.rows = append(res.rows, r)
			res.files = append(res.files, file)
		}
		rec.Release()
	}
}

// adRows converts a record of adSchema.
func adRows(t testing.TB, rec arrow.RecordBatch) []adRow {
	t.Helper()
	id := rec.Column(0).(*array.String)
	cat := rec.Column(1).(*array.String)
	price := rec.Column(2).(*array.Float64)
	ts := rec.Column(3).(*array.Timestamp)
	out := make([]adRow, rec.NumRows())
	for i := range out {
		if id.IsNull(i) {
			t.Errorf("row %d: null id", i)
		}
		r := adRow{ID: id.Value(i)}
		if cat.IsValid(i) {
			r.Cat = ptr(cat.Value(i))
		}
		if price.IsValid(i) {
			r.Price = ptr(price.Value(i))
		}
		if ts.IsValid(i) {
			r.TS = ptr(int64(ts.Value(i)))
		}
		out[i] = r
	}
	return out
}

func sortRows(rows []adRow) []adRow {
	rows = slices.Clone(rows)
	slices.SortFunc(rows, func(a, b adRow) int { return strings.Compare(a.ID, b.ID) })
	return rows
}

func diffRows(t testing.TB, got, want []adRow) {
	t.Helper()
	got, want = sortRows(got), sortRows(want)
	if len(got) != len(want) {
		t.Errorf("got %d rows, want %d", len(got), len(want))
	}
	bad := 0
	for i := range min(len(got), len(want)) {
		if g, w := got[i].String(), want[i].String(); g != w {
			t.Errorf("row %d:\n got  %s\n want %s", i, g, w)
			if bad++; bad > 5 {
				return
			}
		}
	}
}

func mustOpen(t testing.TB, b store.Bucket, files []store.ObjectInfo, opts Options) *Reader {
	t.Helper()
	src, err := Open(context.Background(), b, files, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src
}
