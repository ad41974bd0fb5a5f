package readers

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"go.uber.org/goleak"

	"github.com/adtech/scorer/readers/store"
)

// formatCases are the same rows in every format.
func formatCases(t *testing.T, rows []adRow) []struct {
	key  string
	data []byte
} {
	return []struct {
		key  string
		data []byte
	}{
		{"ads/a.csv", csvBytes(rows, ",")},
		{"ads/a.csv.gz", gzipBytes(csvBytes(rows, ","))},
		{"ads/a.tsv", csvBytes(rows, "\t")},
		{"ads/A.TSV.GZ", gzipBytes(csvBytes(rows, "\t"))},
		{"queue/a.jsonl", jsonlBytes(rows)},
		{"queue/a.ndjson", jsonlBytes(rows)},
		{"queue/a.json", jsonlBytes(rows)},
		{"queue/a.jsonl.gz", gzipBytes(jsonlBytes(rows))},
		{"tables/a.parquet", parquetBytes(t, rows)},
		// Small pages and row groups: batches cross page and group limits.
		{"tables/small.parquet", parquetBytes(t, rows, parquet.PageBufferSize(256), parquet.MaxRowsPerRowGroup(17))},
	}
}

func TestFormatsRoundTrip(t *testing.T) {
	rows := makeRows("", 50)
	for _, tc := range formatCases(t, rows) {
		for _, bs := range []int{1, 3, 1000} {
			t.Run(fmt.Sprintf("%s/batch=%d", tc.key, bs), func(t *testing.T) {
				f := newFixture(t)
				info := f.put(tc.key, tc.data)
				src := mustOpen(t, f.b, []store.ObjectInfo{info}, Options{Schema: adSchema, BatchSize: bs, Mem: newMem(t)})
				res := drain(t, src)
				if res.err != nil {
					t.Fatal(res.err)
				}
				diffRows(t, res.rows, rows)
				for i, n := range res.batches {
					if want := min(bs, len(rows)-i*bs); n != want {
						t.Errorf("batch %d has %d rows, want %d", i, n, want)
					}
				}
				for _, file := range res.files {
					if file != tc.key {
						t.Fatalf("SourceFile = %q, want %q", file, tc.key)
					}
				}
				st := src.Files()[0]
				if st.Rows != int64(len(rows)) || st.BadRows != 0 {
					t.Errorf("Files() = %+v, want %d rows", st, len(rows))
				}
				if again, err := src.Read(context.Background()); again != nil || !errors.Is(err, io.EOF) {
					t.Errorf("Read after EOF = %v, %v", again, err)
				}
			})
		}
	}
}

func TestManyFilesConcurrently(t *testing.T) {
	f := newFixture(t)
	var files []store.ObjectInfo
	var want []adRow
	wantFile := map[string]string{} // id -> key
	for i := range 24 {
		rows := makeRows(fmt.Sprintf("f%02d-", i), 40+i)
		var key string
		var data []byte
		switch i % 6 {
		case 0:
			key, data = fmt.Sprintf("d/%02d.csv", i), csvBytes(rows, ",")
		case 1:
			key, data = fmt.Sprintf("d/%02d.tsv.gz", i), gzipBytes(csvBytes(rows, "\t"))
		case 2:
			key, data = fmt.Sprintf("d/%02d.jsonl", i), jsonlBytes(rows)
		case 3:
			key, data = fmt.Sprintf("d/%02d.ndjson.gz", i), gzipBytes(jsonlBytes(rows))
		default:
			key, data = fmt.Sprintf("d/%02d.parquet", i), parquetBytes(t, rows, parquet.MaxRowsPerRowGroup(9))
		}
		files = append(files, f.put(key, data))
		want = append(want, rows...)
		for _, r := range rows {
			wantFile[r.ID] = key
		}
	}
	src := mustOpen(t, f.b, files, Options{Schema: adSchema, BatchSize: 7, Concurrency: 4, Mem: newMem(t)})
	res := drain(t, src)
	if res.err != nil {
		t.Fatal(res.err)
	}
	seen := map[string]int{}
	for i, r := range res.rows {
		seen[r.ID]++
		if res.files[i] != wantFile[r.ID] {
			t.Errorf("row %s: SourceFile %q, want %q", r.ID, res.files[i], wantFile[r.ID])
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("row %s read %d times", id, n)
		}
	}
	diffRows(t, res.rows, want)
	for i, st := range src.Files() {
		if st.Key != files[i].Key || st.Rows != int64(40+i) {
			t.Errorf("Files()[%d] = %+v, want %s with %d rows", i, st, files[i].Key, 40+i)
		}
	}
}

func TestAccounting(t *testing.T) {
	f := newFixture(t)
	rows := makeRows("", 30)
	var files []store.ObjectInfo
	var datas [][]byte
	var total int64
	for _, tc := range formatCases(t, rows) {
		files = append(files, f.put(tc.key, tc.data))
		datas = append(datas, tc.data)
		total += int64(len(tc.data))
	}
	src := mustOpen(t, f.b, files, Options{Schema: adSchema, Concurrency: 3, Mem: newMem(t)})

	// BytesRead is safe to poll from another goroutine while reading.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_ = src.BytesRead()
				_ = src.Files()
				time.Sleep(50 * time.Microsecond)
			}
		}
	}()
	res := drain(t, src)
	close(stop)
	wg.Wait()
	if res.err != nil {
		t.Fatal(res.err)
	}
	table := crc32.MakeTable(crc32.Castagnoli)
	for i, st := range src.Files() {
		want := FileStat{
			Key:        files[i].Key,
			Generation: files[i].Generation,
			Size:       int64(len(datas[i])),
			CRC32C:     crc32.Checksum(datas[i], table),
			Rows:       int64(len(rows)),
		}
		if !reflect.DeepEqual(st, want) {
			t.Errorf("Files()[%d] = %+v, want %+v", i, st, want)
		}
	}
	if got := src.BytesRead(); got != total {
		t.Errorf("BytesRead() = %d, want %d", got, total)
	}
}

// badRowCase is one file with one bad row among good ones.
type badRowCase struct {
	name string
	key  string
	data []byte
	want RowError // File is the key
	good int64    // rows kept when the bad one is dropped
	// msg, when set, is the whole of want.Error().
	msg string
}

type pqPriceText struct {
	ID    *string `parquet:"id,optional"`
	Price *string `parquet:"price,optional"`
}

func badRowCases(t *testing.T) []badRowCase {
	const hdr = "id,cat,price,ts\n"
	return []badRowCase{
		{
			name: "csv not a number", key: "a.csv",
			data: []byte(hdr + "1,x,1.5,\n2,y,abc,\n3,z,2,\n"),
			want: RowError{Row: 2, Line: 3, Column: "price", Value: "abc", Reason: "not a number"}, good: 2,
			msg: `a.csv: row 2 (line 3): column "price": not a number ("abc")`,
		},
		{
			name: "csv ragged row after a multi-line field", key: "a.csv",
			data: []byte(hdr + "1,\"two\nlines\",1,\n2,y\n3,z,2,\n"),
			want: RowError{Row: 2, Line: 4, Reason: "2 fields, want 4"}, good: 2,
		},
		{
			name: "tsv too many fields", key: "a.tsv",
			data: []byte("id\tcat\tprice\tts\n1\tx\t1\t\n2\ty\t1\t\tmore\n"),
			want: RowError{Row: 2, Line: 3, Reason: "5 fields, want 4"}, good: 1,
		},
		{
			name: "csv missing id", key: "a.csv",
			data: []byte(hdr + "1,x,1,\n,y,2,\n"),
			want: RowError{Row: 2, Line: 3, Column: "id", Reason: "missing required value"}, good: 1,
		},
		{
			name: "csv NA id", key: "a.csv",
			data: []byte(hdr + "NA,y,2,\n1,x,1,\n"),
			want: RowError{Row: 1, Line: 2, Column: "id", Value: "NA", Reason: "missing required value"}, good: 1,
		},
		{
			name: "csv bad timestamp", key: "a.csv",
			data: []byte(hdr + "1,x,1,2020-09-02 10:00:00\n2,x,1,yesterday\n"),
			want: RowError{Row: 2, Line: 3, Column: "ts", Value: "yesterday", Reason: "not a timestamp"}, good: 1,
		},
		{
			name: "csv NaN", key: "a.csv",
			data: []byte(hdr + "1,x,NaN,\n2,x,1,\n"),
			want: RowError{Row: 1, Line: 2, Column: "price", Value: "NaN", Reason: "not a finite number"}, good: 1,
		},
		{
			name: "csv invalid UTF-8", key: "a.csv",
			data: []byte(hdr + "1,\xff\xfe,1,\n2,x,1,\n"),
			want: RowError{Row: 1, Line: 2, Column: "cat", Value: "\xff\xfe", Reason: "invalid UTF-8"}, good: 1,
		},
		{
			name: "csv bare quote", key: "a.csv",
			data: []byte(hdr + "1,x,1,\n2,a\"b,1,\n3,x,1,\n"),
			want: RowError{Row: 2, Line: 3, Reason: `malformed CSV at line 3, column 4: bare " in non-quoted-field`}, good: 2,
		},
		{
			name: "csv stray quote in a quoted field", key: "a.csv",
			data: []byte(hdr + "1,\"x\"y,1,\n2,x,1,\n"),
			want: RowError{Row: 1, Line: 2, Reason: `malformed CSV at line 2, column 5: extraneous or missing " in quoted-field`}, good: 1,
		},
		{
			// Closed, then followed by a stray character: one bad row, even
			// on the last line (only a field left open stops the file).
			name: "csv stray quote on the last line", key: "a.csv",
			data: []byte(hdr + "1,x,1,\n2,\"x\"y,1,"),
			want: RowError{Row: 2, Line: 3, Reason: `malformed CSV at line 3, column 5: extraneous or missing " in quoted-field`}, good: 1,
		},
		{
			name: "csv quoted fields, CRLF and a blank line", key: "a.csv",
			data: []byte(hdr + "1,\"x,\"\"y\"\"\",1,\r\n\r\n2,\"two\nlines\",zz,\r\n3,x,1,\r\n"),
			want: RowError{Row: 2, Line: 4, Column: "price", Value: "zz", Reason: "not a number"}, good: 2,
		},
		{
			name: "jsonl string that is not a number", key: "queue/2020-09-02.jsonl",
			data: []byte(strings.Repeat(`{"id":"a","price":1}`+"\n", 16) + `{"id":"b","price":"abc"}` + "\n" + `{"id":"c"}` + "\n"),
			want: RowError{Row: 17, Line: 17, Column: "price", Value: "abc", Reason: "not a number"}, good: 17,
			msg: `queue/2020-09-02.jsonl: row 17: column "price": not a number ("abc")`,
		},
		{
			name: "jsonl malformed line after a blank one", key: "a.jsonl",
			data: []byte(`{"id":"a"}` + "\n\n" + `{"id":"b",` + "\n" + `{"id":"c"}` + "\n"),
			want: RowError{Row: 2, Line: 3, Value: `{"id":"b",`, Reason: "malformed JSON: unexpected end of JSON input"}, good: 2,
		},
		{
			name: "jsonl not an object", key: "a.jsonl",
			data: []byte(`[1,2]` + "\n" + `{"id":"c"}` + "\n"),
			want: RowError{Row: 1, Line: 1, Value: `[1,2]`, Reason: "not a JSON object"}, good: 1,
		},
		{
			name: "jsonl bool for a number", key: "a.jsonl",
			data: []byte(`{"id":"a","price":true}` + "\n" + `{"id":"c"}` + "\n"),
			want: RowError{Row: 1, Line: 1, Column: "price", Value: "true", Reason: "not a number"}, good: 1,
		},
		{
			name: "jsonl object for a string", key: "a.jsonl",
			data: []byte(`{"id":"c"}` + "\n" + `{"id":"a","cat":{"x":1}}` + "\n"),
			want: RowError{Row: 2, Line: 2, Column: "cat", Value: `{"x":1}`, Reason: "not a string or number"}, good: 1,
		},
		{
			name: "jsonl null id", key: "a.jsonl",
			data: []byte(`{"id":null}` + "\n" + `{"id":7}` + "\n"),
			want: RowError{Row: 1, Line: 1, Column: "id", Reason: "missing required value"}, good: 1,
		},
		{
			name: "jsonl missing id", key: "a.jsonl",
			data: []byte(`{"id":7}` + "\n" + `{"price":7}` + "\n"),
			want: RowError{Row: 2, Line: 2, Column: "id", Reason: "missing required value"}, good: 1,
		},
		{
			name: "jsonl empty id", key: "a.jsonl",
			data: []byte(`{"id":""}` + "\n" + `{"id":7}` + "\n"),
			want: RowError{Row: 1, Line: 1, Column: "id", Reason: "missing required value"}, good: 1,
		},
		{
			name: "jsonl timestamp out of range", key: "a.jsonl",
			data: []byte(`{"id":"a","ts":1e300}` + "\n" + `{"id":7}` + "\n"),
			want: RowError{Row: 1, Line: 1, Column: "ts", Value: "1e300", Reason: "timestamp out of range"}, good: 1,
		},
		{
			name: "parquet text that is not a number", key: "a.parquet",
			data: writeParquet(t, []pqPriceText{{ID: ptr("a"), Price: ptr("1.5")}, {ID: ptr("b"), Price: ptr("abc")}, {ID: ptr("c")}}),
			want: RowError{Row: 2, Column: "price", Value: "abc", Reason: "not a number"}, good: 2,
		},
		{
			name: "parquet null id", key: "a.parquet",
			data: writeParquet(t, []pqPriceText{{ID: ptr("a")}, {ID: ptr("b")}, {Price: ptr("1")}}),
			want: RowError{Row: 3, Column: "id", Reason: "missing required value"}, good: 2,
		},
	}
}

// priceSchema is adSchema without cat and ts where a case's file lacks them.
func schemaFor(key string) *arrow.Schema {
	if strings.HasSuffix(key, ".parquet") {
		return arrow.NewSchema([]arrow.Field{adSchema.Field(0), adSchema.Field(2)}, nil)
	}
	return adSchema
}

func TestBadRows(t *testing.T) {
	for _, tc := range badRowCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			want.File = tc.key
			if tc.msg != "" && want.Error() != tc.msg {
				t.Errorf("Error() = %s\nwant      %s", want.Error(), tc.msg)
			}
			f := newFixture(t)
			files := []store.ObjectInfo{f.put(tc.key, tc.data)}

			t.Run("fatal", func(t *testing.T) {
				src := mustOpen(t, f.b, files, Options{Schema: schemaFor(tc.key), BatchSize: 1, Mem: newMem(t), RawMaxBytes: -1})
				res := drain(t, src)
				var re RowError
				if !errors.As(res.err, &re) {
					t.Fatalf("error %v, want a RowError", res.err)
				}
				if re != want {
					t.Errorf("RowError\n got  %#v\n want %#v", re, want)
				}
				if !errors.Is(res.err, ErrBadInput) {
					t.Errorf("%v does not wrap ErrBadInput", res.err)
				}
				if _, err := src.Read(context.Background()); !errors.Is(err, res.err) {
					t.Errorf("Read after error = %v, want the same error", err)
				}
			})

			t.Run("dropped", func(t *testing.T) {
				var got []RowError
				src := mustOpen(t, f.b, files, Options{
					Schema: schemaFor(tc.key), BatchSize: 2, Mem: newMem(t), RawMaxBytes: -1,
					OnBadRow: func(e RowError) error { got = append(got, e); return nil },
				})
				n := int64(0)
				for {
					rec, err := src.Read(context.Background())
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					n += rec.NumRows()
					rec.Release()
				}
				if len(got) != 1 || got[0] != want {
					t.Errorf("OnBadRow got %#v, want %#v", got, want)
				}
				if st := src.Files()[0]; st.Rows != tc.good || st.BadRows != 1 || n != tc.good {
					t.Errorf("read %d rows, Files() = %+v; want %d rows and 1 bad", n, st, tc.good)
				}
			})
		})
	}
}

func TestOnBadRowStops(t *testing.T) {
	f := newFixture(t)
	files := []store.ObjectInfo{f.put("a.csv", []byte("id,cat,price,ts\n1,x,1,\n2,x,no,\n"))}
	errStop := errors.New("too many bad rows")
	src := mustOpen(t, f.b, files, Options{Schema: adSchema, Mem: newMem(t), OnBadRow: func(RowError) error { return errStop }})
	if res := drain(t, src); !errors.Is(res.err, errStop) {
		t.Fatalf("error %v, want %v", res.err, errStop)
	}
}

type pqBoolTS struct {
	ID string `parquet:"id"`
	TS bool   `parquet:"ts"`
}

type pqList struct {
	ID  string   `parquet:"id"`
	Cat []string `parquet:"cat,list"`
}

func TestFileErrors(t *testing.T) {
	rows := makeRows("", 200)
	csvGz := gzipBytes(csvBytes(rows, ","))
	pq := parquetBytes(t, rows)
	tests := []struct {
		name, key string
		data      []byte
		opts      func(*Options)
		want      string // in the message, besides the key
	}{
		{name: "truncated gzip", key: "ads/a.csv.gz", data: csvGz[:len(csvGz)-12], want: "truncated or corrupt gzip"},
		{name: "gzip cut in the header", key: "ads/a.jsonl.gz", data: csvGz[:5], want: "gzip"},
		{name: "empty gzip", key: "ads/a.jsonl.gz", data: nil, want: "gzip"},
		{name: "not gzip", key: "ads/a.csv.gz", data: []byte("id,cat\n1,2\n"), want: "gzip"},
		{name: "gzip checksum", key: "ads/a.csv.gz", data: flipByte(csvGz, len(csvGz)-6), want: "gzip"},
		{name: "parquet garbage", key: "t/a.parquet", data: []byte("this is not parquet at all"), want: "corrupt parquet"},
		{name: "empty parquet", key: "t/a.parquet", data: nil, want: "corrupt parquet"},
		{name: "truncated parquet", key: "t/a.parquet", data: pq[:len(pq)-20], want: "corrupt parquet"},
		{name: "parquet without its first half", key: "t/a.parquet", data: append([]byte("PAR1"), pq[len(pq)/2:]...), want: "parquet"},
		{name: "parquet footer longer than the file", key: "t/a.parquet", data: append(append([]byte(nil), pq[:len(pq)-8]...), 0xff, 0xff, 0xff, 0x7f, 'P', 'A', 'R', '1'), want: "corrupt parquet: footer of 2147483647 bytes"},
		{name: "csv quote never closed", key: "a.csv", data: []byte("id,cat,price,ts\n1,x,1,\n2,\"open,1,\n3,x,1,\n4,x,1,\n"), want: "line 3: quoted field not closed"},
		{name: "missing column in header", key: "a.csv", data: []byte("id,cat,ts\n1,2,\n"), want: `column "price" missing from header`},
		{name: "missing column in names", key: "a.tsv", data: []byte("1\t2\n"), opts: func(o *Options) {
			o.CSV.ColumnNames = []string{"id", "cat", "ts"}
		}, want: `column "price" missing from column names`},
		{name: "duplicate column", key: "a.csv", data: []byte("id,cat,price,ts,price\n1,2,3,,4\n"), want: `column "price" appears more than once`},
		{name: "empty csv", key: "a.csv", data: nil, want: "no header line"},
		{name: "bad quote in header", key: "a.csv", data: []byte("id,\"cat\n"), want: "header"},
		{name: "missing column in parquet", key: "t/a.parquet", data: writeParquet(t, []pqPriceText{{ID: ptr("1")}}), want: `column "cat" missing from parquet schema`},
		{name: "parquet type that does not convert", key: "t/a.parquet", data: writeParquet(t, []pqBoolTS{{ID: "1"}}), opts: func(o *Options) {
			o.Schema = arrow.NewSchema([]arrow.Field{adSchema.Field(0), adSchema.Field(3)}, nil)
		}, want: `column "ts": parquet type BOOLEAN cannot be read as timestamp[us]`},
		{name: "parquet list", key: "t/a.parquet", data: writeParquet(t, []pqList{{ID: "1", Cat: []string{"a"}}}), opts: func(o *Options) {
			o.Schema = arrow.NewSchema([]arrow.Field{adSchema.Field(0), adSchema.Field(1)}, nil)
		}, want: `column "cat": nested or repeated`},
		{name: "csv line too long", key: "a.csv", data: []byte("id,cat,price,ts\n1,x,1,\n" + strings.Repeat("x", 5000)), opts: func(o *Options) {
			o.lineLimit = 1000
		}, want: "a line after line 2 is longer than 1000 bytes"},
		{name: "jsonl line too long", key: "a.jsonl", data: []byte(`{"id":1}` + "\n" + strings.Repeat("x", 5000)), opts: func(o *Options) {
			o.lineLimit = 1000
		}, want: "line 2: longer than 1000 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			files := []store.ObjectInfo{f.put(tc.key, tc.data)}
			opts := Options{Schema: adSchema, Mem: newMem(t), OnBadRow: func(RowError) error { return nil }}
			if tc.opts != nil {
				tc.opts(&opts)
			}
			src := mustOpen(t, f.b, files, opts)
			res := drain(t, src)
			if !errors.Is(res.err, ErrBadInput) {
				t.Fatalf("error %v, want ErrBadInput", res.err)
			}
			if msg := res.err.Error(); !strings.Contains(msg, tc.key) || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q should name %q and say %q", msg, tc.key, tc.want)
			}
		})
	}
}

func flipByte(b []byte, i int) []byte {
	b = append([]byte(nil), b...)
	b[i] ^= 0xff
	return b
}

func TestSupported(t *testing.T) {
	for _, key := range []string{"a.csv", "d/A.CSV.GZ", "a.tsv", "a.tsv.gz", "a.jsonl", "a.ndjson.gz", "a.json", "a.parquet"} {
		if err := Supported(key); err != nil {
			t.Errorf("Supported(%q) = %v", key, err)
		}
	}
}

func TestUnknownFormat(t *testing.T) {
	f := newFixture(t)
	for _, key := range []string{"a.txt", "a.gz", "a.parquet.gz", "noext", "a.csv.zip"} {
		t.Run(key, func(t *testing.T) {
			if err := Supported(key); !errors.Is(err, ErrBadInput) {
				t.Errorf("Supported(%q) = %v, want ErrBadInput", key, err)
			}
			info := f.put(key, []byte("id\n1\n"))
			_, err := Open(context.Background(), f.b, []store.ObjectInfo{info}, Options{Schema: adSchema})
			if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), key) {
				t.Errorf("Open: %v, want ErrBadInput naming %s", err, key)
			}
		})
	}
}

// flakyBucket fails reads after some bytes, like a dropped connection.
type flakyBucket struct {
	store.Bucket
	after int
	err   error
}

func (b flakyBucket) NewReader(ctx context.Context, key string, gen int64) (io.ReadCloser, error) {
	rc, err := b.Bucket.NewReader(ctx, key, gen)
	if err != nil {
		return nil, err
	}
	return &flakyReader{rc: rc, left: b.after, err: b.err}, nil
}

type flakyReader struct {
	rc   io.ReadCloser
	left int
	err  error
}

func (r *flakyReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, r.err
	}
	p = p[:min(len(p), r.left)]
	n, err := r.rc.Read(p)
	r.left -= n
	return n, err
}

func (r *flakyReader) Close() error { return r.rc.Close() }

func TestStoreErrorsAreNotBadInput(t *testing.T) {
	rows := makeRows("", 300)
	errNet := errors.New("connection reset")
	for _, tc := range formatCases(t, rows) {
		t.Run(tc.key, func(t *testing.T) {
			f := newFixture(t)
			files := []store.ObjectInfo{f.put(tc.key, tc.data)}
			b := flakyBucket{Bucket: f.b, after: len(tc.data) / 2, err: errNet}
			src := mustOpen(t, b, files, Options{Schema: adSchema, BatchSize: 10, Mem: newMem(t)})
			res := drain(t, src)
			if !errors.Is(res.err, errNet) || errors.Is(res.err, ErrBadInput) {
				t.Fatalf("error %v, want %v and not ErrBadInput", res.err, errNet)
			}
			if !strings.Contains(res.err.Error(), tc.key) {
				t.Errorf("error %q does not name the file", res.err)
			}
		})
	}
	t.Run("missing object", func(t *testing.T) {
		f := newFixture(t)
		src := mustOpen(t, f.b, []store.ObjectInfo{{Key: "gone.csv"}}, Options{Schema: adSchema, Mem: newMem(t)})
		res := drain(t, src)
		if !errors.Is(res.err, store.ErrNotExist) || errors.Is(res.err, ErrBadInput) {
			t.Fatalf("error %v, want store.ErrNotExist", res.err)
		}
	})
	t.Run("object shorter than listed", func(t *testing.T) {
		f := newFixture(t)
		info := f.put("a.csv", csvBytes(rows, ","))
		info.Size += 10
		info.Generation = 0
		src := mustOpen(t, f.b, []store.ObjectInfo{info}, Options{Schema: adSchema, Mem: newMem(t)})
		res := drain(t, src)
		if !errors.Is(res.err, io.ErrUnexpectedEOF) || errors.Is(res.err, ErrBadInput) {
			t.Fatalf("error %v, want io.ErrUnexpectedEOF", res.err)
		}
	})
}

func TestCloseAndCancel(t *testing.T) {
	f := newFixture(t)
	var files []store.ObjectInfo
	for i := range 8 {
		rows := makeRows(fmt.Sprintf("f%d-", i), 2000)
		if i%2 == 0 {
			files = append(files, f.put(fmt.Sprintf("%d.csv", i), csvBytes(rows, ",")))
		} else {
			files = append(files, f.put(fmt.Sprintf("%d.parquet", i), parquetBytes(t, rows)))
		}
	}

	t.Run("close before the end", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		src, err := Open(context.Background(), f.b, files, Options{Schema: adSchema, BatchSize: 10, Concurrency: 4, Mem: newMem(t)})
		if err != nil {
			t.Fatal(err)
		}
		rec, err := src.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		rec.Release()
		if err := src.Close(); err != nil {
			t.Fatal(err)
		}
		if err := src.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := src.Read(context.Background()); err == nil {
			t.Fatal("Read after Close succeeded")
		}
	})

	t.Run("close without reading", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		src, err := Open(context.Background(), f.b, files, Options{Schema: adSchema, Mem: newMem(t)})
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Close(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("cancel the open context", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		src2, err := Open(ctx, f.b, files, Options{Schema: adSchema, BatchSize: 10, Mem: newMem(t)})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = src2.Close() }()
		rec, err := src2.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		rec.Release()
		cancel()
		for i := 0; ; i++ {
			rec, err := src2.Read(context.Background())
			if err != nil {
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("error %v, want context.Canceled", err)
				}
				break
			}
			rec.Release()
			if i > 10 { // at most one record per decoding goroutine was under way
				t.Fatal("reading goes on after cancel")
			}
		}
	})

	t.Run("cancel one Read", func(t *testing.T) {
		src := mustOpen(t, f.b, files[:1], Options{Schema: adSchema, BatchSize: 500, Mem: newMem(t)})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := src.Read(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Read(cancelled) = %v", err)
		}
		res := drain(t, src) // the source goes on
		if res.err != nil || len(res.rows) != 2000 {
			t.Fatalf("after a cancelled Read: %d rows, %v", len(res.rows), res.err)
		}
	})
}

func TestCSVOptions(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "label", Type: arrow.PrimitiveTypes.Float64},
		{Name: "I1", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "C1", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	tests := []struct {
		name, key, data string
		csv             CSVOptions
		want            string // rows as "label|I1|C1", nulls as <nil>
	}{
		{
			name: "headerless tsv", key: "a.tsv", data: "1\t\t68fd1e64\n0\t-1\t\n",
			csv: CSVOptions{ColumnNames: []string{"label", "I1", "C1"}}, want: "1|<nil>|68fd1e64 0|-1|<nil>",
		},
		{
			name: "header replaced by names", key: "a.csv", data: "a,b,c\n1,2,x\n",
			csv: CSVOptions{Header: true, ColumnNames: []string{"label", "I1", "C1"}}, want: "1|2|x",
		},
		{name: "delimiter", key: "a.csv", data: "label;I1;C1\n1;2.5;x\n", csv: CSVOptions{Delimiter: ';'}, want: "1|2.5|x"},
		{
			name: "custom nulls", key: "a.csv", data: "label,I1,C1\n1,-,\n0,-,NA\n",
			csv: CSVOptions{NullValues: []string{"-"}}, want: "1|<nil>| 0|<nil>|NA",
		},
		{
			name: "no nulls: empty stays a string", key: "a.csv", data: "label,I1,C1\n1,3,\n",
			csv: CSVOptions{NullValues: []string{}}, want: "1|3|",
		},
		{
			name: "bom, crlf, spaces in header and numbers", key: "a.csv", data: "\ufefflabel , I1,C1\r\n 1 ,2 ,x\r\n",
			want: "1|2|x",
		},
		{name: "quoted fields", key: "a.csv", data: "label,I1,C1\n\"1\",\"2\",\"a,\"\"b\"\"\nc\"\n", want: "1|2|a,\"b\"\nc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			src := mustOpen(t, f.b, []store.ObjectInfo{f.put(tc.key, []byte(tc.data))}, Options{Schema: schema, CSV: tc.csv, Mem: newMem(t)})
			var got []string
			for {
				rec, err := src.Read(context.Background())
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				for i := range int(rec.NumRows()) {
					var cells []string
					for c := range 3 {
						col := rec.Column(c)
						if col.IsNull(i) {
							cells = append(cells, "<nil>")
						} else {
							cells = append(cells, col.ValueStr(i))
						}
					}
					got = append(got, strings.Join(cells, "|"))
				}
				rec.Release()
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("got %q, want %q", g, tc.want)
			}
		})
	}
}

// pqTypes has every physical type, and some logical ones.
type pqTypes struct {
	I32   int32              `parquet:"i32"`
	I64   int64              `parquet:"i64"`
	F32   float32            `parquet:"f32"`
	F64   float64            `parquet:"f64"`
	S     string             `parquet:"s"`
	B     bool               `parquet:"b"`
	U32   uint32             `parquet:"u32"`
	Dec   int64              `parquet:"dec,decimal(2:10)"`
	TSms  int64              `parquet:"ts_ms,timestamp(millisecond)"`
	TSns  int64              `parquet:"ts_ns,timestamp(nanosecond)"`
	Date  int32              `parquet:"date,date"`
	Secs  int64              `parquet:"secs"`
	TSStr string             `parquet:"ts_str"`
	Int96 parquetInt96       `parquet:"i96"`
	Enum  string             `parquet:"enum,enum"`
	Opt   *float64           `parquet:"opt,optional"`
	Map   map[string]float64 `parquet:"map"`
}

type parquetInt96 = deprecated.Int96

func int96Of(t time.Time) parquetInt96 {
	day := t.Unix()/86400 + 2440588
	nanos := uint64(t.UnixNano() % (86400 * 1e9))
	return parquetInt96{uint32(nanos), uint32(nanos >> 32), uint32(day)}
}

func TestParquetTypes(t *testing.T) {
	ts := time.Date(2021, 3, 4, 5, 6, 7, 890123000, time.UTC)
	rows := []pqTypes{{
		I32: -7, I64: 1234567890123, F32: 1.5, F64: 0.25, S: "3.75", B: true, U32: 4000000000,
		Dec: 12345, TSms: ts.UnixMilli(), TSns: ts.UnixNano(), Date: 18690, Secs: ts.Unix(),
		TSStr: "2021-03-04 05:06:07.890123", Int96: int96Of(ts), Enum: "e1", Opt: nil,
		Map: map[string]float64{"a": 1},
	}}
	data := writeParquet(t, rows)
	f, s := arrow.PrimitiveTypes.Float64, arrow.BinaryTypes.String
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "i32", Type: f},
		{Name: "i64", Type: s},
		{Name: "f32", Type: f},
		{Name: "f64", Type: s},
		{Name: "s", Type: f},
		{Name: "b", Type: f},
		{Name: "u32", Type: f},
		{Name: "dec", Type: f},
		{Name: "ts_ms", Type: tsType},
		{Name: "ts_ns", Type: tsType},
		{Name: "date", Type: tsType},
		{Name: "secs", Type: tsType},
		{Name: "ts_str", Type: tsType},
		{Name: "i96", Type: tsType},
		{Name: "enum", Type: s},
		{Name: "opt", Type: f, Nullable: true},
	}, nil)
	fx := newFixture(t)
	src := mustOpen(t, fx.b, []store.ObjectInfo{fx.put("t.parquet", data)}, Options{Schema: schema, Mem: newMem(t)})
	rec, err := src.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	us := ts.UnixMicro()
	want := []any{
		-7.0, "1234567890123", 1.5, "0.25", 3.75, 1.0, 4e9, 123.45,
		ts.Truncate(time.Millisecond).UnixMicro(), us, time.Date(2021, 3, 4, 0, 0, 0, 0, time.UTC).UnixMicro(),
		ts.Truncate(time.Second).UnixMicro(), us, us, "e1", nil,
	}
	for i, w := range want {
		col := rec.Column(i)
		var got any
		switch a := col.(type) {
		case *array.Float64:
			got = a.Value(0)
		case *array.String:
			got = a.Value(0)
		case *array.Timestamp:
			got = int64(a.Value(0))
		}
		if col.IsNull(0) {
			got = nil
		}
		if got != w {
			t.Errorf("%s: got %v (%T), want %v (%T)", schema.Field(i).Name, got, got, w, w)
		}
	}
}

func TestOptionsValidation(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"no schema", Options{}},
		{"empty schema", Options{Schema: arrow.NewSchema(nil, nil)}},
		{"int32 field", Options{Schema: arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int32}}, nil)}},
		{"timestamp in ms", Options{Schema: arrow.NewSchema([]arrow.Field{{Name: "a", Type: &arrow.TimestampType{Unit: arrow.Millisecond}}}, nil)}},
		{"timestamp in Paris", Options{Schema: arrow.NewSchema([]arrow.Field{{Name: "a", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "Europe/Paris"}}}, nil)}},
		{"field twice", Options{Schema: arrow.NewSchema([]arrow.Field{adSchema.Field(0), adSchema.Field(0)}, nil)}},
		{"quote delimiter", Options{Schema: adSchema, CSV: CSVOptions{Delimiter: '"'}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Open(context.Background(), f.b, nil, tc.opts); !errors.Is(err, ErrInvalidOptions) {
				t.Errorf("Open: %v, want ErrInvalidOptions", err)
			}
		})
	}
	t.Run("no files", func(t *testing.T) {
		src := mustOpen(t, f.b, nil, Options{Schema: adSchema, Mem: newMem(t)})
		if _, err := src.Read(context.Background()); !errors.Is(err, io.EOF) {
			t.Errorf("Read = %v, want io.EOF", err)
		}
	})
}

func TestSchemaMetadata(t *testing.T) {
	md := arrow.NewMetadata([]string{"owner", MetadataFileKey}, []string{"ads", "stale"})
	schema := arrow.NewSchema(adSchema.Fields(), &md)
	f := newFixture(t)
	src := mustOpen(t, f.b, []store.ObjectInfo{f.put("x/a.jsonl", []byte(`{"id":"1"}`+"\n"))}, Options{Schema: schema, Mem: newMem(t)})
	rec, err := src.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	got := rec.Schema().Metadata()
	if got.Len() != 2 || SourceFile(rec) != "x/a.jsonl" || got.Values()[got.FindKey("owner")] != "ads" {
		t.Errorf("metadata %v", got)
	}
	if SourceFile(nil) != "" {
		t.Error("SourceFile(nil) is not empty")
	}
}

func TestParseTimestamp(t *testing.T) {
	at := func(s string) int64 {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixMicro()
	}
	tests := []struct {
		in   string
		want int64
		bad  string
	}{
		{in: "2020-09-02T10:00:00Z", want: at("2020-09-02T10:00:00Z")},
		{in: "2020-09-02T12:00:00+02:00", want: at("2020-09-02T10:00:00Z")},
		{in: "2020-09-02T10:00:00.5Z", want: at("2020-09-02T10:00:00.5Z")},
		{in: "2020-09-02 10:00:00", want: at("2020-09-02T10:00:00Z")},
		{in: "2020-09-02 10:00:00.000001", want: at("2020-09-02T10:00:00.000001Z")},
		{in: "2020-09-02T10:00:00", want: at("2020-09-02T10:00:00Z")},
		{in: "2020-09-02 10:00:00-01:00", want: at("2020-09-02T11:00:00Z")},
		{in: " 1599040800 ", want: at("2020-09-02T10:00:00Z")},
		{in: "1599040800.25", want: at("2020-09-02T10:00:00.25Z")},
		{in: "-1", want: -1_000_000},
		{in: "0", want: 0},
		{in: "1.5e9", want: 1_500_000_000_000_000},
		{in: "", bad: reasonNotTime},
		{in: "yesterday", bad: reasonNotTime},
		{in: "2020-09-02", bad: reasonNotTime},
		{in: "2020-13-02 10:00:00", bad: reasonNotTime},
		{in: "NaN", bad: reasonNotTime},
		{in: "99999999999999999", bad: reasonTimeRange},
		{in: "1e20", bad: reasonTimeRange},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, reason := parseTimestamp(tc.in)
			if reason != tc.bad || (tc.bad == "" && got != tc.want) {
				t.Errorf("parseTimestamp(%q) = %d, %q; want %d, %q", tc.in, got, reason, tc.want, tc.bad)
			}
		})
	}
}

func TestParseFloat(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		bad  string
	}{
		{in: "260.0", want: 260},
		{in: "-1", want: -1},
		{in: " 3 ", want: 3},
		{in: "1e3", want: 1000},
		{in: "abc", bad: reasonNotNumber},
		{in: "", bad: reasonNotNumber},
		{in: "1,5", bad: reasonNotNumber},
		{in: "Inf", bad: reasonNotFinite},
		{in: "nan", bad: reasonNotFinite},
		{in: "1e400", bad: reasonNotFinite},
	}
	for _, tc := range tests {
		f, reason := parseFloat(tc.in)
		if reason != tc.bad || (tc.bad == "" && f != tc.want) {
			t.Errorf("parseFloat(%q) = %v, %q; want %v, %q", tc.in, f, reason, tc.want, tc.bad)
		}
	}
}

func TestRowErrorMessage(t *testing.T) {
	tests := []struct {
		e    RowError
		want string
	}{
		{
			RowError{File: "queue/2020-09-02.jsonl", Row: 17, Line: 17, Column: "price", Value: "abc", Reason: "not a number"},
			`queue/2020-09-02.jsonl: row 17: column "price": not a number ("abc")`,
		},
		{RowError{File: "a.csv", Row: 3, Line: 4, Reason: "3 fields, want 40"}, `a.csv: row 3 (line 4): 3 fields, want 40`},
		{RowError{File: "a.parquet", Row: 9, Column: "id", Reason: "missing required value"}, `a.parquet: row 9: column "id": missing required value`},
	}
	for _, tc := range tests {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %s, want %s", got, tc.want)
		}
	}
	if got := shorten(strings.Repeat("é", 100)); len(got) > maxValueInError+3 || !strings.HasSuffix(got, "...") {
		t.Errorf("shorten: %q", got)
	}
}

// Options.UnknownMembers: a JSON Lines object with a member no column names
// is a bad row naming the first such member (in the object's order, escapes
// decoded); without the option such members are ignored.
func TestUnknownMembers(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.BinaryTypes.String},
		{Name: "price", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	data := []byte(`{"id":"a","price":1}` + "\n" +
		`{"id":"b","prize":2,"zz":3}` + "\n" +
		`{"id":"c","pr\u0069ze":2}` + "\n" +
		`{"id":"d","price":4}` + "\n")
	for _, reason := range []string{"", "not a column"} {
		var bad []RowError
		opts := Options{Schema: schema, BatchSize: 8, UnknownMembers: reason, OnBadRow: func(e RowError) error {
			bad = append(bad, e)
			return nil
		}}
		info := store.ObjectInfo{Key: "q/a.jsonl", Size: int64(len(data))}
		res := drain(t, mustOpen(t, memBucket{data: data}, []store.ObjectInfo{info}, opts))
		if res.err != nil {
			t.Fatal(res.err)
		}
		rows := len(res.rows)
		if reason == "" {
			if rows != 4 || len(bad) != 0 {
				t.Fatalf("without UnknownMembers: %d rows, bad %v; want 4 rows, none bad", rows, bad)
			}
			continue
		}
		want := []RowError{
			{File: "q/a.jsonl", Row: 2, Line: 2, Column: "prize", Reason: reason},
			{File: "q/a.jsonl", Row: 3, Line: 3, Column: "prize", Reason: reason},
		}
		for i := range bad {
			bad[i].ids, bad[i].Raw = nil, ""
		}
		if rows != 2 || !reflect.DeepEqual(bad, want) {
			t.Fatalf("with UnknownMembers: %d rows, bad %+v; want 2 rows, bad %+v", rows, bad, want)
		}
	}
}
