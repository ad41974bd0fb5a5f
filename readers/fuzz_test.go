package readers

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/parquet-go/parquet-go"

	"github.com/adtech/scorer/readers/store"
)

// Fuzz targets: no input may panic, hang, leak record memory or make Read
// report an end of stream that is not one. Seeds are below and in
// testdata/fuzz; run e.g. go test -fuzz=FuzzCSV ./readers/.

// memBucket serves fixed bytes for any key; only Stat, NewReader,
// NewRangeReader and URI are used by this package.
type memBucket struct {
	store.Bucket
	data []byte
}

func (b memBucket) Stat(_ context.Context, key string) (store.ObjectInfo, error) {
	return store.ObjectInfo{Key: key, Size: int64(len(b.data)), Generation: 1}, nil
}

func (b memBucket) NewReader(context.Context, string, int64) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(b.data)), nil
}

func (b memBucket) NewRangeReader(_ context.Context, _ string, _, off, n int64) (io.ReadCloser, error) {
	size := int64(len(b.data))
	off = min(off, size)
	if n < 0 || n > size-off {
		n = size - off
	}
	return io.NopCloser(bytes.NewReader(b.data[off : off+n])), nil
}

func (b memBucket) URI(key string) string { return "mem://" + key }

// fuzzRead reads data as key twice: dropping bad rows, and failing on the
// first one.
func fuzzRead(t *testing.T, key string, data []byte, schema *arrow.Schema, csv CSVOptions) {
	for _, drop := range []bool{true, false} {
		mem := newMem(t)
		opts := Options{Schema: schema, BatchSize: 3, Mem: mem, CSV: csv, lineLimit: 1 << 12}
		if drop {
			opts.OnBadRow = func(RowError) error { return nil }
		}
		info := store.ObjectInfo{Key: key, Size: int64(len(data))}
		src, err := Open(context.Background(), memBucket{data: data}, []store.ObjectInfo{info}, opts)
		if err != nil {
			t.Fatal(err)
		}
		var rows int64
		for {
			rec, err := src.Read(context.Background())
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, ErrBadInput) {
					t.Fatalf("error %v does not wrap ErrBadInput", err)
				}
				if errors.Is(err, io.EOF) && err != io.EOF { //nolint:errorlint // only io.EOF itself ends the stream
					t.Fatalf("error %v reads as the end of the stream", err)
				}
				break
			}
			if rec.NumRows() == 0 || rec.NumRows() > 3 || SourceFile(rec) != key {
				t.Fatalf("record of %d rows from %q", rec.NumRows(), SourceFile(rec))
			}
			rows += rec.NumRows()
			rec.Release()
		}
		_ = src.Close()
		if st := src.Files()[0]; st.Rows != rows || st.Size != int64(len(data)) {
			t.Fatalf("Files() = %+v after %d rows of %d bytes", st, rows, len(data))
		}
	}
}

func FuzzCSV(f *testing.F) {
	f.Add([]byte("id,cat,price,ts\n1,x,1.5,2020-09-02 10:00:00\n2,,NA,\n"))
	f.Add([]byte("id,cat,price,ts\n1,\"a\nb\",1,\n2,y\n3,\"x\"\"\",1e3,1599040800\n"))
	f.Add(csvBytes(makeRows("", 10), ","))
	f.Add([]byte("\ufeffid,price\r\n\"1,2\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRead(t, "f.csv", data, adSchema, CSVOptions{})
		fuzzRead(t, "f.tsv", data, adSchema, CSVOptions{ColumnNames: []string{"id", "cat", "price", "ts"}})
	})
}

func FuzzJSONL(f *testing.F) {
	f.Add([]byte(`{"id":1,"cat":"x","price":"1.5","ts":1599040800}` + "\n" + `{"id":"2","price":null}` + "\n"))
	f.Add([]byte(`{"id":"a","cat":{"x":[1]},"ts":"2020-09-02T10:00:00+02:00"}` + "\n\n[1]\n{\"id\":\n"))
	f.Add(jsonlBytes(makeRows("", 10)))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRead(t, "f.jsonl", data, adSchema, CSVOptions{})
	})
}

func FuzzParquet(f *testing.F) {
	rows := makeRows("", 20)
	valid := parquetBytes(f, rows, parquet.PageBufferSize(128), parquet.MaxRowsPerRowGroup(7))
	f.Add(valid)
	f.Add(parquetBytes(f, rows[:3], parquet.Compression(&parquet.Snappy)))
	f.Add(writeParquet(f, []pqPriceText{{ID: ptr("a"), Price: ptr("abc")}}))
	f.Add(valid[:len(valid)/2])
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRead(t, "f.parquet", data, adSchema, CSVOptions{})
	})
}
