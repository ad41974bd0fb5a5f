// Package storetest is the conformance suite every store.Bucket
// implementation runs: the guarantees the readers, writers and the publish
// protocol rely on.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/adtech/scorer/internal/store"
)

// Run runs the suite against fresh, empty buckets made by newBucket.
func Run(t *testing.T, newBucket func(t *testing.T) store.Bucket) {
	ctx := context.Background()
	read := func(t *testing.T, b store.Bucket, key string, gen int64) ([]byte, error) {
		t.Helper()
		r, err := b.NewReader(ctx, key, gen)
		if err != nil {
			return nil, err
		}
		defer r.Close()
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
}
