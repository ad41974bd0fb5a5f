// Package storetest is the conformance suite every store.Bucket
// implementation runs: the guarantees the readers, writers and the publish
// protocol rely on.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/adtech/scorer/readers/store"
)

// Option tells the suite what a store keeps beyond the common contract.
type Option func(*config)

type config struct {
	metadata bool
}

// KeepsMetadata says the store keeps WriteOptions.Metadata and returns it in
// ObjectInfo (from Stat and List); the suite then checks the round trip.
func KeepsMetadata() Option { return func(c *config) { c.metadata = true } }

// Run runs the suite against fresh, empty buckets made by newBucket.
func Run(t *testing.T, newBucket func(t *testing.T) store.Bucket, opts ...Option) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	ctx := context.Background()
	read := func(t *testing.T, b store.Bucket, key string, gen int64) ([]byte, error) {
		t.Helper()
		r, err := b.NewReader(ctx, key, gen)
		if err != nil {
			return nil, err
		}
		defer func() { _ = r.Close() }()
		return io.ReadAll(r)
	}

	t.Run("write read stat list", func(t *testing.T) {
		b := newBucket(t)
		for _, k := range []string{"t/p=1/b.parquet", "t/p=1/a.parquet", "t/p=2/c", "u/d", "tx"} {
			if err := store.WriteAll(ctx, b, k, []byte(k), store.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := read(t, b, "t/p=1/a.parquet", 0)
		if err != nil || string(got) != "t/p=1/a.parquet" {
			t.Fatalf("read = %q, %v", got, err)
		}
		objs, err := b.List(ctx, "t/")
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, o := range objs {
			keys = append(keys, o.Key)
			if o.Size != int64(len(o.Key)) || o.Generation == 0 {
				t.Errorf("%s: size %d generation %d", o.Key, o.Size, o.Generation)
			}
		}
		if want := []string{"t/p=1/a.parquet", "t/p=1/b.parquet", "t/p=2/c"}; !slices.Equal(keys, want) {
			t.Fatalf("List(t/) = %v, want %v (sorted, recursive, prefix only)", keys, want)
		}
		if objs, _ := b.List(ctx, "nothing/"); len(objs) != 0 {
			t.Fatalf("List of an absent prefix = %v", objs)
		}
		if _, err := b.Stat(ctx, "t/p=1"); !errors.Is(err, store.ErrNotExist) {
			t.Fatalf("Stat of a folder: %v, want ErrNotExist", err)
		}
	})

	t.Run("not exist", func(t *testing.T) {
		b := newBucket(t)
		if _, err := b.Stat(ctx, "x"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Stat: %v", err)
		}
		if _, err := b.NewReader(ctx, "x", 0); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("NewReader: %v", err)
		}
		if err := b.Delete(ctx, "x"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Delete: %v", err)
		}
		if err := b.Copy(ctx, "x", "y", store.WriteOptions{}); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Copy: %v", err)
		}
	})

	t.Run("conditional writes", func(t *testing.T) {
		b := newBucket(t)
		if err := store.WriteAll(ctx, b, "k", []byte("one"), store.WriteOptions{IfAbsent: true}); err != nil {
			t.Fatal(err)
		}
		err := store.WriteAll(ctx, b, "k", []byte("two"), store.WriteOptions{IfAbsent: true})
		if !errors.Is(err, store.ErrPrecondition) {
			t.Fatalf("second IfAbsent write: %v, want ErrPrecondition", err)
		}
		info, err := b.Stat(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		if err := store.WriteAll(ctx, b, "k", []byte("three"), store.WriteOptions{IfGeneration: info.Generation + 1}); !errors.Is(err, store.ErrPrecondition) {
			t.Fatalf("write with a wrong generation: %v, want ErrPrecondition", err)
		}
		if got, _ := read(t, b, "k", 0); string(got) != "one" {
			t.Fatalf("after failed conditional writes the object is %q, want one", got)
		}
		if err := store.WriteAll(ctx, b, "k", []byte("four"), store.WriteOptions{IfGeneration: info.Generation}); err != nil {
			t.Fatalf("write with the right generation: %v", err)
		}
		if got, _ := read(t, b, "k", 0); string(got) != "four" {
			t.Fatalf("object is %q, want four", got)
		}
		if _, err := b.NewReader(ctx, "k", info.Generation); !errors.Is(err, store.ErrNotExist) {
			t.Fatalf("read pinned to a replaced generation: %v, want ErrNotExist", err)
		}
	})

	t.Run("generations", func(t *testing.T) {
		b := newBucket(t)
		seen := map[int64]bool{}
		var last store.ObjectInfo
		for i := range 20 {
			opts := store.WriteOptions{IfAbsent: i == 0, IfGeneration: last.Generation}
			info, err := store.Put(ctx, b, "g", []byte{byte(i)}, opts)
			if err != nil {
				t.Fatalf("write %d conditional on the previous generation: %v", i, err)
			}
			st, err := b.Stat(ctx, "g")
			if err != nil {
				t.Fatal(err)
			}
			if info.Generation != st.Generation || info.Generation == 0 {
				t.Fatalf("write %d: Put says generation %d, Stat %d", i, info.Generation, st.Generation)
			}
			if seen[info.Generation] {
				t.Fatalf("write %d reused generation %d: back-to-back writes must differ", i, info.Generation)
			}
			seen[info.Generation] = true
			last = info
		}
	})

	t.Run("abort leaves nothing", func(t *testing.T) {
		b := newBucket(t)
		w, err := b.NewWriter(ctx, "a/b", store.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(bytes.Repeat([]byte("x"), 1<<16)); err != nil {
			t.Fatal(err)
		}
		if objs, _ := b.List(ctx, ""); len(objs) != 0 {
			t.Fatalf("an unfinished write is listed: %v", objs)
		}
		w.Abort()
		if objs, _ := b.List(ctx, ""); len(objs) != 0 {
			t.Fatalf("an aborted write is listed: %v", objs)
		}
	})

	t.Run("copy and delete", func(t *testing.T) {
		b := newBucket(t)
		if err := store.WriteAll(ctx, b, "src", []byte("data"), store.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := b.Copy(ctx, "src", "dir/dst", store.WriteOptions{IfAbsent: true}); err != nil {
			t.Fatal(err)
		}
		if err := b.Copy(ctx, "src", "dir/dst", store.WriteOptions{IfAbsent: true}); !errors.Is(err, store.ErrPrecondition) {
			t.Fatalf("second IfAbsent copy: %v", err)
		}
		if err := b.Delete(ctx, "src"); err != nil {
			t.Fatal(err)
		}
		if got, err := read(t, b, "dir/dst", 0); err != nil || string(got) != "data" {
			t.Fatalf("copy after deleting the source = %q, %v", got, err)
		}
	})

	t.Run("conditional write on an absent object", func(t *testing.T) {
		b := newBucket(t)
		err := store.WriteAll(ctx, b, "k", []byte("x"), store.WriteOptions{IfGeneration: 12345})
		if !errors.Is(err, store.ErrPrecondition) {
			t.Fatalf("IfGeneration write of an absent object: %v, want ErrPrecondition", err)
		}
		if _, err := b.Stat(ctx, "k"); !errors.Is(err, store.ErrNotExist) {
			t.Fatalf("the failed write left an object: %v", err)
		}
	})

	t.Run("empty and large objects", func(t *testing.T) {
		b := newBucket(t)
		rng := rand.New(rand.NewPCG(1, 2))
		large := make([]byte, 3<<20+12345)
		for i := range large {
			large[i] = byte(rng.Uint32())
		}
		for _, tc := range []struct {
			key  string
			data []byte
		}{{"empty", nil}, {"large", large}} {
			w, err := b.NewWriter(ctx, tc.key, store.WriteOptions{IfAbsent: true})
			if err != nil {
				t.Fatal(err)
			}
			// Uneven writes, as an encoder makes them.
			for rest := tc.data; len(rest) > 0; {
				n := min(len(rest), 1+rng.IntN(200<<10))
				if _, err := w.Write(rest[:n]); err != nil {
					w.Abort()
					t.Fatalf("write %s: %v", tc.key, err)
				}
				rest = rest[n:]
			}
			if err := w.Close(); err != nil {
				t.Fatalf("close %s: %v", tc.key, err)
			}
			info, err := b.Stat(ctx, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if info.Size != int64(len(tc.data)) {
				t.Errorf("%s: size %d, want %d", tc.key, info.Size, len(tc.data))
			}
			got, err := read(t, b, tc.key, info.Generation)
			if err != nil {
				t.Fatalf("read %s: %v", tc.key, err)
			}
			if !bytes.Equal(got, tc.data) {
				t.Fatalf("%s: read back %d bytes that differ from the %d written", tc.key, len(got), len(tc.data))
			}
		}
	})

	t.Run("ranged reads", func(t *testing.T) {
		b := newBucket(t)
		data := []byte("0123456789abcdefghij")
		size := int64(len(data))
		info, err := store.Put(ctx, b, "r", data, store.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if info.CRC32C != 0 {
			if want := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)); info.CRC32C != want {
				t.Errorf("Put says CRC32C %08x, want %08x (or 0: not kept)", info.CRC32C, want)
			}
		}
		for _, tc := range []struct {
			name        string
			gen         int64
			off, length int64
			want        string
		}{
			{"start", 0, 0, 4, "0123"},
			{"middle", info.Generation, 7, 5, "789ab"},
			{"end", info.Generation, size - 3, 3, "hij"},
			{"to the end", info.Generation, 16, -1, "ghij"},
			{"whole", 0, 0, -1, string(data)},
			{"length past the end", info.Generation, size - 2, 100, "ij"},
			{"from the end", info.Generation, size, -1, ""},
			{"past the end", 0, size + 5, 10, ""},
			{"empty", info.Generation, 3, 0, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r, err := b.NewRangeReader(ctx, "r", tc.gen, tc.off, tc.length)
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = r.Close() }()
				got, err := io.ReadAll(r)
				if err != nil || string(got) != tc.want {
					t.Fatalf("NewRangeReader(%d, %d) read %q, %v; want %q", tc.off, tc.length, got, err, tc.want)
				}
			})
		}
		if _, err := b.NewRangeReader(ctx, "r", 0, -1, 2); err == nil {
			t.Error("negative offset: no error")
		}
		if _, err := b.NewRangeReader(ctx, "absent", 0, 0, 2); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("range of an absent object: %v, want ErrNotExist", err)
		}

		// A range pinned to a generation fails once the object is
		// replaced; one opened before still reads the old bytes.
		open, err := b.NewRangeReader(ctx, "r", info.Generation, 10, 5)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.WriteAll(ctx, b, "r", []byte("ABCDEFGHIJKLMNOPQRST"), store.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, length := range []int64{4, 0} {
			if _, err := b.NewRangeReader(ctx, "r", info.Generation, 2, length); !errors.Is(err, store.ErrNotExist) {
				t.Errorf("range (length %d) pinned to a replaced generation: %v, want ErrNotExist", length, err)
			}
		}
		got, err := io.ReadAll(open)
		_ = open.Close()
		if err == nil && string(got) != "abcde" {
			t.Errorf("range opened before the object was replaced read %q: mixes versions", got)
		}
		r, err := b.NewRangeReader(ctx, "r", 0, 2, 4)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = r.Close() }()
		if got, err := io.ReadAll(r); err != nil || string(got) != "CDEF" {
			t.Errorf("unpinned range after the replace read %q, %v; want CDEF", got, err)
		}
	})

	t.Run("copy pinned to a source generation", func(t *testing.T) {
		b := newBucket(t)
		if err := store.WriteAll(ctx, b, "src", []byte("old"), store.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		old, err := b.Stat(ctx, "src")
		if err != nil {
			t.Fatal(err)
		}
		if err := store.WriteAll(ctx, b, "src", []byte("new"), store.WriteOptions{IfGeneration: old.Generation}); err != nil {
			t.Fatal(err)
		}
		cur, err := b.Stat(ctx, "src")
		if err != nil {
			t.Fatal(err)
		}
		err = b.Copy(ctx, "src", "dst", store.WriteOptions{SourceGeneration: old.Generation})
		if !errors.Is(err, store.ErrNotExist) {
			t.Fatalf("copy of a replaced source generation: %v, want ErrNotExist", err)
		}
		if err := b.Copy(ctx, "src", "dst", store.WriteOptions{SourceGeneration: cur.Generation, IfAbsent: true}); err != nil {
			t.Fatalf("copy of the current source generation: %v", err)
		}
		if got, err := read(t, b, "dst", 0); err != nil || string(got) != "new" {
			t.Fatalf("dst = %q, %v; want new", got, err)
		}
	})

	t.Run("metadata", func(t *testing.T) {
		if !cfg.metadata {
			t.Skip("the store does not keep custom metadata")
		}
		b := newBucket(t)
		md := map[string]string{"run_id": "20260101T000000Z-abc", "rows": "42"}
		if err := store.WriteAll(ctx, b, "m/k", []byte("x"), store.WriteOptions{IfAbsent: true, Metadata: md}); err != nil {
			t.Fatal(err)
		}
		info, err := b.Stat(ctx, "m/k")
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(info.Metadata, md) {
			t.Errorf("Stat metadata = %v, want %v", info.Metadata, md)
		}
		objs, err := b.List(ctx, "m/")
		if err != nil || len(objs) != 1 {
			t.Fatalf("List = %v, %v", objs, err)
		}
		if !maps.Equal(objs[0].Metadata, md) {
			t.Errorf("List metadata = %v, want %v", objs[0].Metadata, md)
		}
	})
}
