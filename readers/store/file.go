package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// fileBucket is a Bucket over a local folder. Objects are files; a write goes
// to a temporary file in the root's hidden ".tmp" folder (skipped by List,
// outside every table) and is published by rename, or by link for IfAbsent,
// so a reader never sees half a file. A crash leaves at most a temporary
// file behind, which a later open of the bucket deletes once it is a day old.
// Custom metadata (WriteOptions.Metadata) is not kept.
type fileBucket struct {
	root string
	// mu serialises conditional writes within this process; across processes
	// IfAbsent is atomic (link fails on an existing name) and IfGeneration
	// is checked just before the rename.
	mu sync.Mutex
}

func openFile(_ context.Context, u *url.URL) (Bucket, error) {
	root := u.Path
	if u.User != nil || (u.Host != "" && u.Host != "localhost") {
		return nil, fmt.Errorf("open store %s: file URI names host %q: use file:///abs/path", u.Redacted(), u.Host)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	b := &fileBucket{root: abs}
	b.collectTemp(24 * time.Hour)
	return b, nil
}

// tempDir holds writes in progress, under the root so that rename and link
// stay on one file system.
const tempDir = ".tmp"

// collectTemp deletes temporary files older than age: left by a process
// that died while writing. Younger ones may belong to a live writer.
func (b *fileBucket) collectTemp(age time.Duration) {
	entries, err := os.ReadDir(filepath.Join(b.root, tempDir))
	if err != nil {
		return
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > age {
			_ = os.Remove(filepath.Join(b.root, tempDir, e.Name()))
		}
	}
}

// NewFileBucket returns a Bucket rooted at a local folder; the folder is
// created on the first write.
func NewFileBucket(root string) Bucket {
	b, _ := openFile(context.Background(), &url.URL{Scheme: "file", Path: root})
	return b
}

// path is the file of a key, for messages (URI); resolve is the one to
// open, create or delete.
func (b *fileBucket) path(key string) string { return filepath.Join(b.root, filepath.FromSlash(key)) }

// resolve is the file of a key, refusing a key that is no path inside the
// root (CheckKey) rather than touch a file outside it.
func (b *fileBucket) resolve(op, key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", fmt.Errorf("%s %s: %w", op, b.root, err)
	}
	p := b.path(key)
	if p != b.root && !strings.HasPrefix(p, b.root+string(filepath.Separator)) && b.root != string(filepath.Separator) {
		return "", fmt.Errorf("%s %s: %w: %q resolves to %s", op, b.root, ErrInvalidKey, key, p)
	}
	return p, nil
}

func (b *fileBucket) URI(key string) string { return b.path(key) }

func info(key string, fi fs.FileInfo) ObjectInfo {
	return ObjectInfo{Key: key, Size: fi.Size(), Generation: generation(fi), Updated: fi.ModTime().UTC()}
}

// generation identifies one version of a file: its modification time mixed
// with its inode. Every write makes a new file (a new inode while the old
// version still exists), so consecutive versions differ even within one tick
// of the file system's clock.
func generation(fi fs.FileInfo) int64 {
	g := uint64(fi.ModTime().UnixNano())
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		g ^= uint64(st.Ino) * 0x9E3779B97F4A7C15
	}
	return int64(g>>1) | 1 // positive and non-zero
}

func (b *fileBucket) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := CheckKey(prefix); err != nil {
		return nil, fmt.Errorf("list %s: %w", b.root, err)
	}
	// Walk from the deepest folder the prefix names, then filter by prefix.
	dir := prefix
	if i := strings.LastIndex(dir, "/"); i >= 0 {
		dir = dir[:i]
	} else {
		dir = ""
	}
	top, err := b.resolve("list", dir)
	if err != nil {
		return nil, err
	}
	var out []ObjectInfo
	err = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if p == filepath.Join(b.root, tempDir) {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(b.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) { // deleted while listing
				return nil
			}
			return err
		}
		out = append(out, info(key, fi))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", b.URI(prefix), err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (b *fileBucket) Stat(_ context.Context, key string) (ObjectInfo, error) {
	p, err := b.resolve("stat", key)
	if err != nil {
		return ObjectInfo{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return ObjectInfo{}, b.wrap("stat", key, err)
	}
	if fi.IsDir() {
		return ObjectInfo{}, fmt.Errorf("stat %s: %w", b.URI(key), ErrNotExist)
	}
	return info(key, fi), nil
}

func (b *fileBucket) wrap(op, key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s %s: %w", op, b.URI(key), ErrNotExist)
	}
	return fmt.Errorf("%s %s: %w", op, b.URI(key), err)
}

func (b *fileBucket) NewReader(_ context.Context, key string, gen int64) (io.ReadCloser, error) {
	p, err := b.resolve("open", key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, b.wrap("open", key, err)
	}
	if gen != 0 {
		fi, err := f.Stat()
		if err != nil {
			_ = f.Close()
			return nil, b.wrap("open", key, err)
		}
		if generation(fi) != gen {
			_ = f.Close()
			return nil, fmt.Errorf("open %s generation %d: %w (replaced since it was listed)", b.URI(key), gen, ErrNotExist)
		}
	}
	return f, nil
}

// NewRangeReader reads a section of the open file: once opened, the file is
// that generation's inode whatever renames follow, so a pinned read cannot
// mix versions.
func (b *fileBucket) NewRangeReader(ctx context.Context, key string, gen, offset, length int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, fmt.Errorf("open %s: negative offset %d", b.URI(key), offset)
	}
	rc, err := b.NewReader(ctx, key, gen)
	if err != nil {
		return nil, err
	}
	f := rc.(*os.File)
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, b.wrap("open", key, err)
	}
	offset = min(offset, fi.Size())
	if length < 0 || length > fi.Size()-offset {
		length = fi.Size() - offset
	}
	return sectionReader{io.NewSectionReader(f, offset, length), f}, nil
}

// sectionReader reads a section of a file and closes the file.
type sectionReader struct {
	*io.SectionReader
	io.Closer
}

type fileWriter struct {
	b     *fileBucket
	key   string
	tmp   *os.File
	opts  WriteOptions
	done  bool
	attrs ObjectInfo
}

func (b *fileBucket) tempFor(key string) (*os.File, error) {
	dir := filepath.Join(b.root, tempDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, b.wrap("create", key, err)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(dir, filepath.Base(key)+"."+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, b.wrap("create", key, err)
	}
	return f, nil
}

func (b *fileBucket) NewWriter(_ context.Context, key string, opts WriteOptions) (Writer, error) {
	if _, err := b.resolve("create", key); err != nil {
		return nil, err
	}
	f, err := b.tempFor(key)
	if err != nil {
		return nil, err
	}
	return &fileWriter{b: b, key: key, tmp: f, opts: opts}, nil
}

func (w *fileWriter) Write(p []byte) (int, error) { return w.tmp.Write(p) }

func (w *fileWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	_ = w.tmp.Close() // discarded: its close error does not matter
	_ = os.Remove(w.tmp.Name())
}

func (w *fileWriter) Close() error {
	if w.done {
		return fmt.Errorf("close %s: writer already closed", w.b.URI(w.key))
	}
	if err := w.tmp.Sync(); err != nil {
		w.Abort()
		return w.b.wrap("sync", w.key, err)
	}
	if err := w.tmp.Close(); err != nil {
		w.Abort()
		return w.b.wrap("close", w.key, err)
	}
	w.done = true
	// The published file is this inode (rename and link keep it), so its
	// generation is known before it is published.
	fi, err := os.Stat(w.tmp.Name())
	if err != nil {
		_ = os.Remove(w.tmp.Name())
		return w.b.wrap("stat", w.key, err)
	}
	w.attrs = info(w.key, fi)
	err = w.b.publish(w.tmp.Name(), w.key, w.opts)
	_ = os.Remove(w.tmp.Name()) // after a link, or a failed rename
	return err
}

func (w *fileWriter) Attrs() ObjectInfo { return w.attrs }

// publish moves a finished temporary file to key under the write conditions.
func (b *fileBucket) publish(tmp, key string, opts WriteOptions) error {
	final, err := b.resolve("create", key)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	// Delete prunes folders it empties, possibly another process's between
	// our MkdirAll and rename: make the folder again and retry then.
	for attempt := 0; ; attempt++ {
		err := b.publishOnce(tmp, key, final, opts)
		if err == nil || !errors.Is(err, ErrNotExist) || attempt == 3 {
			return err
		}
	}
}

func (b *fileBucket) publishOnce(tmp, key, final string, opts WriteOptions) error {
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return b.wrap("create", key, err)
	}
	if opts.IfGeneration != 0 {
		// Check and rename under an exclusive lock shared by every process
		// using this folder, so that compare-and-swap is atomic.
		unlock, err := b.lockFolder()
		if err != nil {
			return b.wrap("lock", key, err)
		}
		defer unlock()
	}
	if opts.IfAbsent {
		if err := os.Link(tmp, final); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("create %s: %w (object exists)", b.URI(key), ErrPrecondition)
			}
			return b.wrap("create", key, err)
		}
		return syncDir(filepath.Dir(final))
	}
	if opts.IfGeneration != 0 {
		fi, err := os.Stat(final)
		if err != nil || generation(fi) != opts.IfGeneration {
			return fmt.Errorf("replace %s if generation %d: %w", b.URI(key), opts.IfGeneration, ErrPrecondition)
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		return b.wrap("rename", key, err)
	}
	return syncDir(filepath.Dir(final))
}

// lockFolder takes an exclusive flock on <root>/.tmp/.lock.
func (b *fileBucket) lockFolder() (func(), error) {
	f, err := os.OpenFile(filepath.Join(b.root, tempDir, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); _ = f.Close() }, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }()
	_ = d.Sync() // best effort: not every file system supports it
	return nil
}

func (b *fileBucket) Copy(_ context.Context, src, dst string, opts WriteOptions) error {
	// A hard link is a copy that costs nothing: objects are never modified
	// in place, only replaced by rename.
	from, err := b.resolve("copy", src)
	if err != nil {
		return err
	}
	if _, err := b.resolve("copy", dst); err != nil {
		return err
	}
	f, err := b.tempFor(dst)
	if err != nil {
		return err
	}
	tmp := f.Name()
	_ = f.Close() // only its name is wanted
	_ = os.Remove(tmp)
	stale := func() error {
		return fmt.Errorf("copy %s generation %d: %w (replaced since it was listed)", b.URI(src), opts.SourceGeneration, ErrNotExist)
	}
	if opts.SourceGeneration != 0 {
		if fi, err := os.Stat(from); err == nil && generation(fi) != opts.SourceGeneration {
			return stale()
		}
	}
	if err := os.Link(from, tmp); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("copy %s: %w", b.URI(src), ErrNotExist)
		}
		if err := copyFile(from, tmp); err != nil {
			_ = os.Remove(tmp)
			return b.wrap("copy", src, err)
		}
	} else if opts.SourceGeneration != 0 {
		// The link shares the source's inode: check again that it is of
		// the pinned generation, now that no rename can swap it.
		if fi, err := os.Stat(tmp); err != nil || generation(fi) != opts.SourceGeneration {
			_ = os.Remove(tmp)
			return stale()
		}
	}
	err = b.publish(tmp, dst, opts)
	_ = os.Remove(tmp)
	return err
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }() // read-only
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close() // the copy error is the one to report
		return err
	}
	return out.Close()
}

func (b *fileBucket) Delete(_ context.Context, key string) error {
	p, err := b.resolve("delete", key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return b.wrap("delete", key, err)
	}
	// Remove folders left empty, up to the root, so that a replaced
	// partition leaves no empty folder behind. Errors mean "not empty".
	dir := filepath.Dir(p)
	for dir != b.root && strings.HasPrefix(dir, b.root) {
		if os.Remove(dir) != nil {
			break
		}
		dir = filepath.Dir(dir)
	}
	return nil
}
