package store_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/readers/store/storetest"
)

func TestFileBucket(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Bucket { return store.NewFileBucket(t.TempDir()) })
}

func TestOpenURIs(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	for _, uri := range []string{dir, "file://" + dir} {
		b, err := store.Open(ctx, uri)
		if err != nil {
			t.Fatalf("Open(%q): %v", uri, err)
		}
		if got := b.URI("a/b"); got != filepath.Join(dir, "a", "b") {
			t.Errorf("Open(%q).URI(a/b) = %q", uri, got)
		}
	}
	if _, err := store.Open(ctx, "s3://bucket/x"); err == nil {
		t.Error("Open(s3://...) succeeded; want an unsupported-scheme error")
	}
}

func TestStaleTempFilesAreCollected(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, ".tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	old, fresh := filepath.Join(tmp, "old"), filepath.Join(tmp, "fresh")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(old, long, long); err != nil {
		t.Fatal(err)
	}
	b := store.NewFileBucket(dir)
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("a 2-day-old temporary file survived opening the bucket")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a fresh temporary file (maybe a live writer's) was deleted")
	}
	if objs, _ := b.List(context.Background(), ""); len(objs) != 0 {
		t.Errorf("List shows temporary files: %v", objs)
	}
}
