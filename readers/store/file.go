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
// file behind, which the next open of the bucket deletes, by any process:
// its writer's lock is gone with it (see tempSuffix).
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

// Temporary files are named <base>.<random><tempSuffix>. Each is held under
// a shared flock by the process writing it, from its creation until it is
// published or discarded; the kernel drops the locks of a process that
// dies, SIGKILL included. So a temporary file whose lock can be taken
// belongs to nobody: its writer is gone. Creation and collection are
// serialised by the folder lock (.tmp/.lock): shared while a writer creates
// and locks its file, exclusive while the store collects, so that no file is
// collected between its creation and its lock. This works across processes
// and containers that share the folder (flock is the kernel's, on the file).
const tempSuffix = ".w"

// collectTemp deletes the temporary files of writers that are gone: those
// named with tempSuffix whose lock can be taken at once, and, for other
// names (left by an earlier version, which held no lock), those older than
// age. A live writer's file is never touched. Best effort: an error leaves
// the files for the next open.
func (b *fileBucket) collectTemp(age time.Duration) {
	dir := filepath.Join(b.root, tempDir)
	if _, err := os.Stat(dir); err != nil {
		return
	}
	unlock, err := b.lockTemp(syscall.LOCK_EX)
	if err != nil {
		return
	}
	defer unlock()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(dir, name)
		switch {
		case name == lockName || e.IsDir():
		case strings.HasSuffix(name, tempSuffix):
			if unowned(p) {
				_ = os.Remove(p)
			}
		default:
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > age {
				_ = os.Remove(p)
			}
		}
	}
}

// unowned reports whether nobody holds a lock on the file at p.
func unowned(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer func() { _ = f.Close() }() // read only; closing drops our lock
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}

// holdTemp takes the writer's shared lock on a temporary file.
func holdTemp(f *os.File) error {
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return nil
}

// tempName is a fresh temporary file name for key.
func (b *fileBucket) tempName(key string) string {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	return filepath.Join(b.root, tempDir, filepath.Base(key)+"."+hex.EncodeToString(rnd[:])+tempSuffix)
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

// tempFor creates a temporary file for key, locked as its writer's (see
// tempSuffix) until it is closed.
func (b *fileBucket) tempFor(key string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Join(b.root, tempDir), 0o755); err != nil {
		return nil, b.wrap("create", key, err)
	}
	unlock, err := b.lockTemp(syscall.LOCK_SH)
	if err != nil {
		return nil, b.wrap("lock", key, err)
	}
	defer unlock()
	f, err := os.OpenFile(b.tempName(key), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, b.wrap("create", key, err)
	}
	if err := holdTemp(f); err != nil {
		_ = os.Remove(f.Name())
		_ = f.Close() // discarded
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
	_ = os.Remove(w.tmp.Name()) // before the close drops the lock
	_ = w.tmp.Close()           // discarded: its close error does not matter
}

func (w *fileWriter) Close() error {
	if w.done {
		return fmt.Errorf("close %s: writer already closed", w.b.URI(w.key))
	}
	if err := w.tmp.Sync(); err != nil {
		w.Abort()
		return w.b.wrap("sync", w.key, err)
	}
	w.done = true
	// The file stays open, and so locked as ours, until it is published:
	// opening the store in another process must not collect it meanwhile.
	// The published file is this inode (rename and link keep it), so its
	// generation is known before it is published.
	fi, err := w.tmp.Stat()
	if err != nil {
		_ = os.Remove(w.tmp.Name())
		_ = w.tmp.Close() // discarded
		return w.b.wrap("stat", w.key, err)
	}
	w.attrs = info(w.key, fi)
	err = w.b.publish(w.tmp.Name(), w.key, w.opts)
	_ = os.Remove(w.tmp.Name()) // after a link, or a failed rename
	// Synced above: a close error cannot lose data any more, and the
	// object is published (or the error says why not).
	_ = w.tmp.Close()
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

// lockName is the folder lock of the store, in tempDir.
const lockName = ".lock"

// lockFolder takes an exclusive flock on <root>/.tmp/.lock.
func (b *fileBucket) lockFolder() (func(), error) { return b.lockTemp(syscall.LOCK_EX) }

// lockTemp takes a flock (LOCK_SH or LOCK_EX) on <root>/.tmp/.lock: held
// exclusively for a compare-and-swap and while collecting temporary files,
// shared while a writer creates and locks its temporary file.
func (b *fileBucket) lockTemp(how int) (func(), error) {
	f, err := os.OpenFile(filepath.Join(b.root, tempDir, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
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
	stale := func() error {
		return fmt.Errorf("copy %s generation %d: %w (replaced since it was listed)", b.URI(src), opts.SourceGeneration, ErrNotExist)
	}
	if opts.SourceGeneration != 0 {
		if fi, err := os.Stat(from); err == nil && generation(fi) != opts.SourceGeneration {
			return stale()
		}
	}
	held, linked, err := b.linkTemp(src, dst)
	if err != nil {
		return err
	}
	if !linked {
		// Another file system: copy the bytes into a temporary file.
		if held, err = b.tempFor(dst); err != nil {
			return err
		}
		if err := copyInto(from, held); err != nil {
			_ = os.Remove(held.Name())
			_ = held.Close() // discarded
			return b.wrap("copy", src, err)
		}
	}
	tmp := held.Name()
	defer func() {
		_ = os.Remove(tmp) // after a link, or a failed rename
		_ = held.Close()   // read-only or synced: drops our lock
	}()
	if linked && opts.SourceGeneration != 0 {
		// The link shares the source's inode: check again that it is of
		// the pinned generation, now that no rename can swap it.
		if fi, err := held.Stat(); err != nil || generation(fi) != opts.SourceGeneration {
			return stale()
		}
	}
	return b.publish(tmp, dst, opts)
}

// linkTemp links src to a fresh temporary name for dst and returns that
// file open and locked as ours (see tempSuffix); linked is false, with no
// error, if src is on another file system.
func (b *fileBucket) linkTemp(src, dst string) (held *os.File, linked bool, err error) {
	if err := os.MkdirAll(filepath.Join(b.root, tempDir), 0o755); err != nil {
		return nil, false, b.wrap("create", dst, err)
	}
	unlock, err := b.lockTemp(syscall.LOCK_SH)
	if err != nil {
		return nil, false, b.wrap("lock", dst, err)
	}
	defer unlock()
	tmp := b.tempName(dst)
	if err := os.Link(b.path(src), tmp); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, fmt.Errorf("copy %s: %w", b.URI(src), ErrNotExist)
		}
		return nil, false, nil
	}
	f, err := os.Open(tmp)
	if err == nil {
		err = holdTemp(f)
		if err != nil {
			_ = f.Close() // discarded
		}
	}
	if err != nil {
		_ = os.Remove(tmp)
		return nil, false, b.wrap("copy", src, err)
	}
	return f, true, nil
}

// copyInto copies the file at src into dst and syncs it.
func copyInto(src string, dst *os.File) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }() // read-only
	if _, err := io.Copy(dst, in); err != nil {
		return err
	}
	return dst.Sync()
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
