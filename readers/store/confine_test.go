package store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adtech/scorer/readers/store"
)

// A file URI names no host: file://evil.host/tmp/x is refused rather than
// read as the relative folder evil.host/tmp/x. localhost is the one host
// RFC 8089 allows.
func TestOpenRefusesFileURIWithHost(t *testing.T) {
	ctx := context.Background()
	t.Chdir(t.TempDir())
	for _, uri := range []string{"file://evil.host/tmp/x", "file://tmp/x", "file://user@host/x"} {
		_, err := store.Open(ctx, uri)
		if err == nil || !strings.Contains(err.Error(), "host") {
			t.Errorf("Open(%q): %v, want an error about its host", uri, err)
		}
		if err := store.CheckURI(uri); err == nil {
			t.Errorf("CheckURI(%q) = nil", uri)
		}
	}
	if entries, _ := os.ReadDir("."); len(entries) != 0 {
		t.Errorf("refused URIs left %v in the working folder", entries)
	}
	dir := t.TempDir()
	for _, uri := range []string{"file://" + dir, "file://localhost" + dir, dir, "relative/dir", "gs://bucket/prefix"} {
		if err := store.CheckURI(uri); err != nil {
			t.Errorf("CheckURI(%q): %v", uri, err)
		}
	}
	for _, uri := range []string{"", "out\x00put", "file:///tmp/a\x00b"} {
		if err := store.CheckURI(uri); err == nil {
			t.Errorf("CheckURI(%q) = nil", uri)
		}
	}
	b, err := store.Open(ctx, "file://localhost"+dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.URI("k"); got != filepath.Join(dir, "k") {
		t.Errorf("file://localhost%s: URI(k) = %q", dir, got)
	}
}

// Keys are resolved inside the store's folder: every operation refuses a
// key that climbs out of it, is absolute or holds a NUL, with an error
// wrapping ErrInvalidKey, and touches nothing.
func TestFileBucketConfinesKeys(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	secret := filepath.Join(parent, "secret")
	if err := os.WriteFile(secret, []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := store.NewFileBucket(root)
	if err := store.WriteAll(ctx, b, "good", []byte("g"), store.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"../secret", "a/../../secret", "..", "/etc/passwd", "a/./b", "a\x00b"} {
		t.Run(strings.ReplaceAll(key, "\x00", "NUL"), func(t *testing.T) {
			check := func(op string, err error) {
				t.Helper()
				if !errors.Is(err, store.ErrInvalidKey) {
					t.Errorf("%s(%q): %v, want ErrInvalidKey", op, key, err)
				}
			}
			_, err := b.Stat(ctx, key)
			check("Stat", err)
			_, err = b.NewReader(ctx, key, 0)
			check("NewReader", err)
			_, err = b.NewRangeReader(ctx, key, 0, 0, -1)
			check("NewRangeReader", err)
			_, err = b.NewWriter(ctx, key, store.WriteOptions{})
			check("NewWriter", err)
			check("Copy from", b.Copy(ctx, key, "copy", store.WriteOptions{}))
			check("Copy to", b.Copy(ctx, "good", key, store.WriteOptions{}))
			check("Delete", b.Delete(ctx, key))
			_, err = b.List(ctx, key+"/")
			check("List", err)
			if err := store.CheckKey(key); !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("CheckKey(%q): %v", key, err)
			}
		})
	}
	if data, err := os.ReadFile(secret); err != nil || !bytes.Equal(data, []byte("s")) {
		t.Errorf("the file outside the store: %q, %v", data, err)
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 2 {
		t.Errorf("the store's parent folder holds %d entries, want root and secret", len(entries))
	}
	// Ordinary keys and prefixes still work.
	for _, key := range []string{"good", "a/b.c", "_scorer/x.json", "dumps/2020-09/f..csv"} {
		if err := store.CheckKey(key); err != nil {
			t.Errorf("CheckKey(%q): %v", key, err)
		}
	}
	if objs, err := b.List(ctx, ""); err != nil || len(objs) != 1 {
		t.Errorf("List: %v, %v", objs, err)
	}
	r, err := b.NewReader(ctx, "good", 0)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(r)
	_ = r.Close()
	if string(data) != "g" {
		t.Errorf("good = %q", data)
	}
}
