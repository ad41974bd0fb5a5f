package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/readers/store/storetest"
)

// A counted bucket keeps the contract of the bucket it wraps.
func TestCountedBucketConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Bucket { return store.Counted(store.NewFileBucket(t.TempDir())) })
}

// Every method is counted exactly, failures as calls (and as write
// attempts, not writes), bytes as they pass through readers and writers.
func TestCountedBucketCountsEveryCall(t *testing.T) {
	ctx := context.Background()
	b := store.Counted(store.NewFileBucket(t.TempDir()))
	step := func(name string, want store.OpCounts, do func(t *testing.T)) {
		t.Helper()
		before := b.Counts()
		do(t)
		if got := b.Counts().Sub(before); got != want {
			t.Errorf("%s: counted %+v, want %+v", name, got, want)
		}
	}
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	readN := func(t *testing.T, r io.ReadCloser, err error, buf int) string {
		t.Helper()
		must(t, err)
		defer func() { _ = r.Close() }()
		var got bytes.Buffer
		p := make([]byte, buf)
		for {
			n, err := r.Read(p)
			got.Write(p[:n])
			if errors.Is(err, io.EOF) {
				return got.String()
			}
			must(t, err)
		}
	}

	step("write", store.OpCounts{Write: 1, WriteAttempts: 1, WriteBytes: 5}, func(t *testing.T) {
		must(t, store.WriteAll(ctx, b, "d/hello", []byte("hello"), store.WriteOptions{}))
	})
	step("conditional write that fails at Close", store.OpCounts{WriteAttempts: 1, WriteBytes: 3}, func(t *testing.T) {
		if err := store.WriteAll(ctx, b, "d/hello", []byte("abc"), store.WriteOptions{IfAbsent: true}); !errors.Is(err, store.ErrPrecondition) {
			t.Fatalf("create of an existing object: %v", err)
		}
	})
	step("write refused at NewWriter", store.OpCounts{WriteAttempts: 1}, func(t *testing.T) {
		if _, err := b.NewWriter(ctx, "../out", store.WriteOptions{}); !errors.Is(err, store.ErrInvalidKey) {
			t.Fatalf("writer outside the store: %v", err)
		}
	})
	step("aborted write", store.OpCounts{WriteAttempts: 1, WriteBytes: 7}, func(t *testing.T) {
		w, err := b.NewWriter(ctx, "d/aborted", store.WriteOptions{})
		must(t, err)
		for _, s := range []string{"abc", "", "defg"} {
			if _, err := w.Write([]byte(s)); err != nil {
				t.Fatal(err)
			}
		}
		w.Abort()
	})
	step("writer closed twice", store.OpCounts{Write: 1, WriteAttempts: 1, WriteBytes: 2}, func(t *testing.T) {
		w, err := b.NewWriter(ctx, "e/two", store.WriteOptions{})
		must(t, err)
		_, err = w.Write([]byte("22"))
		must(t, err)
		must(t, w.Close())
		if err := w.Close(); err == nil {
			t.Error("a second Close succeeded")
		}
		if w.Attrs().Size != 2 {
			t.Errorf("Attrs after Close: %+v", w.Attrs())
		}
	})
	step("list", store.OpCounts{List: 3, Listed: 3}, func(t *testing.T) {
		for prefix, n := range map[string]int{"": 2, "d/": 1, "nothing/": 0} {
			objs, err := b.List(ctx, prefix)
			if err != nil || len(objs) != n {
				t.Fatalf("List(%q) = %d objects, %v; want %d", prefix, len(objs), err, n)
			}
		}
	})
	step("stat, found and not", store.OpCounts{Stat: 2}, func(t *testing.T) {
		_, err := b.Stat(ctx, "d/hello")
		must(t, err)
		if _, err := b.Stat(ctx, "d/nope"); !errors.Is(err, store.ErrNotExist) {
			t.Fatalf("Stat of an absent object: %v", err)
		}
	})
	step("whole reads", store.OpCounts{Read: 3, ReadBytes: 5 + 2}, func(t *testing.T) {
		data, err := store.ReadAll(ctx, b, "d/hello")
		if err != nil || string(data) != "hello" {
			t.Fatalf("ReadAll = %q, %v", data, err)
		}
		r, err := b.NewReader(ctx, "e/two", 0)
		if got := readN(t, r, err, 1); got != "22" {
			t.Fatalf("read byte by byte: %q", got)
		}
		if _, err := b.NewReader(ctx, "d/nope", 0); !errors.Is(err, store.ErrNotExist) {
			t.Fatalf("NewReader of an absent object: %v", err)
		}
	})
	ranges := []struct {
		off, n int64
		want   string
	}{
		{1, 3, "ell"},
		{3, -1, "lo"},
		{4, 10, "o"}, // cut at the end
		{5, 2, ""},   // at the end
		{9, -1, ""},  // past it
	}
	for _, rg := range ranges {
		want := store.OpCounts{Read: 1, ReadBytes: int64(len(rg.want))}
		step(fmt.Sprintf("range [%d, +%d)", rg.off, rg.n), want, func(t *testing.T) {
			r, err := b.NewRangeReader(ctx, "d/hello", 0, rg.off, rg.n)
			if got := readN(t, r, err, 2); got != rg.want {
				t.Fatalf("range read %q, want %q", got, rg.want)
			}
		})
	}
	step("range read stopped early, and refused", store.OpCounts{Read: 2, ReadBytes: 1}, func(t *testing.T) {
		r, err := b.NewRangeReader(ctx, "d/hello", 0, 0, -1)
		must(t, err)
		if n, err := r.Read(make([]byte, 1)); n != 1 || err != nil {
			t.Fatalf("Read = %d, %v", n, err)
		}
		must(t, r.Close())
		if _, err := b.NewRangeReader(ctx, "d/hello", 0, -1, 1); err == nil {
			t.Fatal("a negative offset was read")
		}
	})
	step("copy", store.OpCounts{Copy: 2}, func(t *testing.T) {
		must(t, b.Copy(ctx, "d/hello", "d/copy", store.WriteOptions{}))
		if err := b.Copy(ctx, "d/nope", "d/copy2", store.WriteOptions{}); !errors.Is(err, store.ErrNotExist) {
			t.Fatalf("copy of an absent object: %v", err)
		}
	})
	step("delete, present and absent", store.OpCounts{Delete: 2}, func(t *testing.T) {
		must(t, b.Delete(ctx, "d/copy"))
		if err := b.Delete(ctx, "d/copy"); !errors.Is(err, store.ErrNotExist) {
			t.Fatalf("second delete: %v", err)
		}
	})
	step("URI", store.OpCounts{}, func(t *testing.T) {
		if got, want := b.URI("d/hello"), b.Unwrap().URI("d/hello"); got != want {
			t.Errorf("URI = %q, want %q", got, want)
		}
	})

	want := store.OpCounts{
		List: 3, Listed: 3, Stat: 2, Read: 3 + len64(ranges) + 2, ReadBytes: 7 + 3 + 2 + 1 + 1,
		Write: 2, WriteAttempts: 5, WriteBytes: 5 + 3 + 7 + 2, Copy: 2, Delete: 2,
	}
	if got := b.Counts(); got != want {
		t.Errorf("Counts = %+v, want %+v", got, want)
	}
}

func len64[T any](s []T) int64 { return int64(len(s)) }

func TestOpCountsJSON(t *testing.T) {
	c := store.OpCounts{List: 1, Listed: 2, Stat: 3, Read: 4, ReadBytes: 5, Write: 6, WriteAttempts: 7, WriteBytes: 8, Copy: 9, Delete: 10}
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"list":1,"listed":2,"stat":3,"read":4,"read_bytes":5,"write":6,"write_attempts":7,"write_bytes":8,"copy":9,"delete":10}`
	if string(data) != want {
		t.Errorf("JSON %s, want %s", data, want)
	}
	if d := c.Sub(c); d != (store.OpCounts{}) {
		t.Errorf("c - c = %+v", d)
	}
}

// Concurrent callers are all counted (run with -race).
func TestCountedBucketConcurrent(t *testing.T) {
	ctx := context.Background()
	b := store.Counted(store.NewFileBucket(t.TempDir()))
	const workers, each = 8, 20
	payload := []byte("0123456789")
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprintf("w%d/%d", w, i)
				if err := store.WriteAll(ctx, b, key, payload, store.WriteOptions{}); err != nil {
					errs <- err
					return
				}
				if _, err := store.ReadAll(ctx, b, key); err != nil {
					errs <- err
					return
				}
				r, err := b.NewRangeReader(ctx, key, 0, 2, 3)
				if err != nil {
					errs <- err
					return
				}
				_, err = io.Copy(io.Discard, r)
				_ = r.Close()
				if err != nil {
					errs <- err
					return
				}
				if _, err := b.Stat(ctx, key); err != nil {
					errs <- err
					return
				}
				_ = b.Counts() // snapshots race with the counting, safely
			}
			if _, err := b.List(ctx, fmt.Sprintf("w%d/", w)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := int64(workers * each)
	want := store.OpCounts{
		List: workers, Listed: n, Stat: n, Read: 2 * n, ReadBytes: n * (10 + 3),
		Write: n, WriteAttempts: n, WriteBytes: n * 10,
	}
	if got := b.Counts(); got != want {
		t.Errorf("Counts = %+v, want %+v", got, want)
	}
}

// bytesBucket serves one object from memory; the rest of Bucket is nil.
type bytesBucket struct {
	store.Bucket
	data []byte
}

func (b bytesBucket) NewReader(context.Context, string, int64) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(b.data)), nil
}

// Reading through a counted reader allocates nothing per Read.
func TestCountedReaderAllocatesNothingPerRead(t *testing.T) {
	b := store.Counted(bytesBucket{data: make([]byte, 1<<20)})
	r, err := b.NewReader(context.Background(), "x", 0)
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 64)
	if allocs := testing.AllocsPerRun(1000, func() { _, _ = r.Read(p) }); allocs != 0 {
		t.Errorf("%v allocations per Read", allocs)
	}
	if got := b.Counts().ReadBytes; got != 1001*64 {
		t.Errorf("read bytes %d, want %d", got, 1001*64)
	}
}

// BenchmarkCountedRead is the cost of counting on the read path.
func BenchmarkCountedRead(b *testing.B) {
	data := make([]byte, 32<<10)
	for _, bm := range []struct {
		name string
		b    store.Bucket
	}{{"plain", bytesBucket{data: data}}, {"counted", store.Counted(bytesBucket{data: data})}} {
		b.Run(bm.name, func(b *testing.B) {
			p := make([]byte, 4<<10)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				r, _ := bm.b.NewReader(context.Background(), "x", 0)
				for {
					if _, err := r.Read(p); err != nil {
						break
					}
				}
				_ = r.Close()
			}
		})
	}
}
