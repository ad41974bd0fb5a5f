package readers

import (
	"context"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"sync/atomic"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/readers/store/storetest"
)

// countingBucket counts whole-object and ranged reads.
type countingBucket struct {
	store.Bucket
	whole, ranged atomic.Int64
}

func (b *countingBucket) NewReader(ctx context.Context, key string, gen int64) (io.ReadCloser, error) {
	b.whole.Add(1)
	return b.Bucket.NewReader(ctx, key, gen)
}

func (b *countingBucket) NewRangeReader(ctx context.Context, key string, gen, off, n int64) (io.ReadCloser, error) {
	b.ranged.Add(1)
	return b.Bucket.NewRangeReader(ctx, key, gen, off, n)
}

// Parquet objects are read in ranges, with no temporary file; on a store
// without CRC32C (local files) the object is read once more, whole, for
// its checksum.
func TestParquetRangedReadsNoTempFile(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	rows := makeRows("", 5000)
	data := parquetBytes(t, rows, parquet.PageBufferSize(1<<10), parquet.MaxRowsPerRowGroup(1000))
	f := newFixture(t)
	info := f.put("t/a.parquet", data)
	b := &countingBucket{Bucket: f.b}
	src := mustOpen(t, b, []store.ObjectInfo{info}, Options{Schema: adSchema, BatchSize: 333, Mem: newMem(t)})
	res := drain(t, src)
	if res.err != nil {
		t.Fatal(res.err)
	}
	diffRows(t, sortRows(res.rows), sortRows(rows))
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("%d files left in TMPDIR, e.g. %s: want none", len(entries), entries[0].Name())
	}
	if b.ranged.Load() == 0 || b.whole.Load() != 1 {
		t.Errorf("%d ranged and %d whole reads, want ranges and one whole read (the checksum)", b.ranged.Load(), b.whole.Load())
	}
	want := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
	if st := src.Files()[0]; st.CRC32C != want || st.Size != int64(len(data)) {
		t.Errorf("Files() = %+v, want size %d, CRC32C %08x", st, len(data), want)
	}
	if got := src.BytesRead(); got != int64(len(data)) {
		t.Errorf("BytesRead() = %d, want %d", got, len(data))
	}
}

// A Parquet object replaced after it was listed fails with
// store.ErrNotExist, not as bad input and not with bytes of both versions.
func TestParquetReplacedSinceListed(t *testing.T) {
	f := newFixture(t)
	old := f.put("a.parquet", parquetBytes(t, makeRows("old-", 100)))
	if err := store.WriteAll(context.Background(), f.b, "a.parquet", parquetBytes(t, makeRows("new-", 120)), store.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	src := mustOpen(t, f.b, []store.ObjectInfo{old}, Options{Schema: adSchema, Mem: newMem(t)})
	res := drain(t, src)
	if !errors.Is(res.err, store.ErrNotExist) || errors.Is(res.err, ErrBadInput) {
		t.Fatalf("error %v, want store.ErrNotExist and not ErrBadInput", res.err)
	}
}

// On GCS the object's CRC32C comes with the listing: the Parquet object is
// read in ranges only, and its accounting is that of a whole read.
func TestParquetOnGCS(t *testing.T) {
	gcs, _ := storetest.FakeGCS(t, "b", "in/")
	ctx := context.Background()
	rows := makeRows("", 3000)
	data := parquetBytes(t, rows, parquet.MaxRowsPerRowGroup(700))
	if err := store.WriteAll(ctx, gcs, "a.parquet", data, store.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	files, err := gcs.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	want := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
	if len(files) != 1 || files[0].CRC32C != want {
		t.Fatalf("List = %+v, want one object with CRC32C %08x", files, want)
	}
	b := &countingBucket{Bucket: gcs}
	src := mustOpen(t, b, files, Options{Schema: adSchema, BatchSize: 500, Mem: newMem(t)})
	res := drain(t, src)
	if res.err != nil {
		t.Fatal(res.err)
	}
	diffRows(t, sortRows(res.rows), sortRows(rows))
	if b.whole.Load() != 0 {
		t.Errorf("%d whole reads, want none: the CRC32C is the store's", b.whole.Load())
	}
	st := src.Files()[0]
	if st.CRC32C != want || st.Size != int64(len(data)) || st.Generation != files[0].Generation || st.Rows != int64(len(rows)) {
		t.Errorf("Files() = %+v, want size %d, CRC32C %08x, generation %d", st, len(data), want, files[0].Generation)
	}
	if got := src.BytesRead(); got != int64(len(data)) {
		t.Errorf("BytesRead() = %d, want %d", got, len(data))
	}
}
