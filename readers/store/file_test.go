package store_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// TestTempFilesOfGoneWritersAreCollected: a process killed while writing
// leaves its temporary file; the next open of the store deletes it at once,
// while the file of a writer still at work in another process (here: this
// one) is left alone.
func TestTempFilesOfGoneWritersAreCollected(t *testing.T) {
	ctx := context.Background()
	if dir := os.Getenv("SCORER_TEMP_WRITER_DIR"); dir != "" {
		// The child: start a write, say so, and wait to be killed.
		w, err := store.NewFileBucket(dir).NewWriter(ctx, "t/part-child.parquet", store.WriteOptions{})
		if err == nil {
			_, err = w.Write([]byte("half a part"))
		}
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Println("writing")
		_, _ = io.Copy(io.Discard, os.Stdin) // until killed
		return
	}
	dir := t.TempDir()
	tmp := filepath.Join(dir, ".tmp")

	// A live writer in this process.
	live, err := store.NewFileBucket(dir).NewWriter(ctx, "t/part-live.parquet", store.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := live.Write([]byte("in progress")); err != nil {
		t.Fatal(err)
	}

	// A writer in another process, killed mid-write.
	cmd := exec.Command(os.Args[0], "-test.run=^TestTempFilesOfGoneWritersAreCollected$")
	cmd.Env = append(os.Environ(), "SCORER_TEMP_WRITER_DIR="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stdin.Close() }()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "writing\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child: %q, %v", line, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // killed: the error says so
	if got := tempFiles(t, tmp); len(got) != 2 {
		t.Fatalf("before reopening: temporary files %v, want the live one and the killed one", got)
	}

	// Opening the store (any run starts so) collects the killed writer's file.
	b := store.NewFileBucket(dir)
	got := tempFiles(t, tmp)
	if len(got) != 1 || !strings.HasPrefix(got[0], "part-live.parquet.") {
		t.Fatalf("after reopening: temporary files %v, want only the live writer's", got)
	}
	if err := live.Close(); err != nil {
		t.Fatalf("the live writer could not finish: %v", err)
	}
	if _, err := b.Stat(ctx, "t/part-live.parquet"); err != nil {
		t.Fatal(err)
	}
	if got := tempFiles(t, tmp); len(got) != 0 {
		t.Errorf("temporary files left after the write: %v", got)
	}
}

// tempFiles lists the temporary files under .tmp (not its lock).
func tempFiles(t *testing.T, tmp string) []string {
	t.Helper()
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.Name() != ".lock" {
			names = append(names, e.Name())
		}
	}
	return names
}
