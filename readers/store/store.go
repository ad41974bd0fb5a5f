// Package store is the storage seam: a small object-store interface that the
// readers, the writers and the run ledger use, with one implementation per URI
// scheme. A local folder (a plain path or file://) is the first; gs:// is the
// second. Keys are slash-separated paths relative to the store's root.
//
// The contract is the one object stores give (and GCS in particular): objects
// are written whole or not at all, writes may be conditional, there is no
// rename. Everything above this package is written against that contract, so a
// publish protocol that is safe here is safe on GCS.
//
// Counted wraps any Bucket to count its operations by kind (OpCounts): the
// units an object store bills (on GCS, Class A and Class B operations; see
// OpCounts and docs/operations.md). A scoring run records its counts.
//
// It is public (and lives under readers/, which owns *where* bytes come from)
// because the exported signatures of readers, writers, scoring and scheduler
// name its Bucket: a caller outside this module must be able to name what
// those functions take. The top-level folders are fixed by the product's
// design, so the seam sits under readers/ rather than beside it.
package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"
	"time"
)

// Sentinel errors. Implementations wrap them with the key, so callers test
// with errors.Is.
var (
	// ErrNotExist: the object does not exist.
	ErrNotExist = errors.New("object does not exist")
	// ErrAccess: the bucket does not exist or the credentials may not use
	// it. Retrying will not help; the configuration must change.
	ErrAccess = errors.New("bucket missing or access denied")
	// ErrPrecondition: a conditional write found the object in another state
	// (it exists for IfAbsent, or has another generation for IfGeneration).
	ErrPrecondition = errors.New("precondition failed")
	// ErrInvalidKey: the key is no path inside the store (see CheckKey).
	ErrInvalidKey = errors.New("key is not a path inside the store")
)

// CheckKey reports whether key (or a key prefix) names a path inside a
// store: slash-separated and relative to the store's root, with no "." or
// ".." element (which a local folder would resolve outside the root or to
// another key) and no NUL byte. The error wraps ErrInvalidKey and says why.
// Configuration settings that become keys are checked with it; the local
// file store checks every key again before touching a file.
func CheckKey(key string) error {
	why := ""
	switch {
	case strings.IndexByte(key, 0) >= 0:
		why = "holds a NUL byte"
	case strings.HasPrefix(key, "/"):
		why = "is absolute; keys are relative to the store's root"
	default:
		for _, el := range strings.Split(key, "/") {
			if el == "." || el == ".." {
				why = fmt.Sprintf("has a %q element", el)
				break
			}
		}
	}
	if why != "" {
		return fmt.Errorf("%w: %q %s", ErrInvalidKey, key, why)
	}
	return nil
}

// CheckURI checks a store URI as Open reads it, without opening anything:
// not empty, no NUL byte, parseable, and a file URI names no host other
// than localhost (file:///abs/path or file://localhost/abs/path;
// file://evil.host/x is not the relative folder evil.host/x). Whether the
// scheme is registered is left to Open.
func CheckURI(uri string) error {
	if uri == "" {
		return errors.New("empty URI")
	}
	if strings.IndexByte(uri, 0) >= 0 {
		return fmt.Errorf("URI %q holds a NUL byte", uri)
	}
	if !strings.Contains(uri, "://") {
		return nil // a local path
	}
	u, err := url.Parse(uri)
	if err != nil {
		return fmt.Errorf("URI %q: %w", uri, err)
	}
	if u.Scheme == "file" && (u.User != nil || (u.Host != "" && u.Host != "localhost")) {
		return fmt.Errorf("URI %q names host %q: a file URI is file:///abs/path (or file://localhost/abs/path); a relative folder is a plain path", uri, u.Host)
	}
	return nil
}

// ObjectInfo describes one object.
type ObjectInfo struct {
	Key  string // path relative to the store root, slash-separated
	Size int64
	// Generation changes every time the object is written. Local files use
	// their modification time in nanoseconds.
	Generation int64
	Updated    time.Time
	// CRC32C is the Castagnoli CRC-32 of the object's bytes where the store
	// keeps one (GCS); 0 where it does not (the local file store).
	CRC32C uint32
	// Metadata is the object's custom metadata, where the store keeps it
	// (GCS); nil on the local file store, which does not keep it.
	Metadata map[string]string
}

// WriteOptions make a write conditional. The zero value overwrites.
type WriteOptions struct {
	// IfAbsent: fail with ErrPrecondition if the object exists.
	IfAbsent bool
	// IfGeneration, when non-zero: fail with ErrPrecondition unless the
	// object exists with this generation.
	IfGeneration int64
	// ContentType is recorded where the store keeps it.
	ContentType string
	// Metadata is custom metadata recorded with the object where the store
	// keeps it (GCS; the local file store ignores it). Besides telling
	// people who wrote an object, it lets a store recognise its own write:
	// a conditional write that was applied but whose answer was lost is
	// retried and fails its condition, and the store then compares the
	// object with what it wrote (size, CRC32C and this metadata, e.g. a run
	// id) before calling it a conflict.
	Metadata map[string]string
	// SourceGeneration, for Copy only and when non-zero, copies that
	// generation of the source and fails with ErrNotExist if the source
	// has been replaced since.
	SourceGeneration int64
}

// Writer writes one object. Nothing is visible under the key until Close
// returns nil; Abort discards what was written. Exactly one of Close or Abort
// must be called. After Close returned nil, Attrs describes the object
// written (its generation in particular: the one a later IfGeneration write
// must name).
type Writer interface {
	io.Writer
	Close() error
	Abort()
	Attrs() ObjectInfo
}

// Bucket is a store rooted at a URI. Implementations are safe for concurrent
// use by several goroutines.
type Bucket interface {
	// List returns every object whose key starts with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// Stat returns one object's info, or an error wrapping ErrNotExist.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// NewReader opens an object for reading. If generation is non-zero the
	// read is pinned to it and fails with ErrNotExist once the object has
	// been replaced.
	NewReader(ctx context.Context, key string, generation int64) (io.ReadCloser, error)
	// NewRangeReader opens bytes [offset, offset+length) of an object for
	// reading; a negative length reads to the end. A range that runs past
	// the end is cut there, and one that starts at or after the end reads
	// nothing (io.EOF at once). A negative offset is an error. If
	// generation is non-zero the read is pinned to it: it fails with
	// ErrNotExist once the object has been replaced, never mixing bytes of
	// two versions. Unlike NewReader it checks no end-to-end checksum (GCS
	// has none for part of an object): a caller that needs the object's
	// CRC32C takes it from ObjectInfo or reads the object whole.
	NewRangeReader(ctx context.Context, key string, generation, offset, length int64) (io.ReadCloser, error)
	// NewWriter starts writing an object; see Writer.
	NewWriter(ctx context.Context, key string, opts WriteOptions) (Writer, error)
	// Copy copies src to dst inside the bucket, with dst's write conditions.
	Copy(ctx context.Context, src, dst string, opts WriteOptions) error
	// Delete removes an object. Deleting an absent object returns an error
	// wrapping ErrNotExist.
	Delete(ctx context.Context, key string) error
	// URI names a key for people: logs, errors, manifests.
	URI(key string) string
}

// Opener opens a bucket for a URI of its scheme.
type Opener func(ctx context.Context, u *url.URL) (Bucket, error)

var openers = map[string]Opener{
	"file": openFile,
}

// Register adds an Opener for a URI scheme. It is called from init functions.
func Register(scheme string, o Opener) { openers[scheme] = o }

// Open returns the bucket for a URI: a local path, file:///path or a
// registered scheme such as gs://bucket/prefix.
func Open(ctx context.Context, uri string) (Bucket, error) {
	if err := CheckURI(uri); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	scheme, _, ok := strings.Cut(uri, "://")
	if !ok {
		return openFile(ctx, &url.URL{Scheme: "file", Path: uri})
	}
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("open store %q: %w", uri, err)
	}
	o, ok := openers[scheme]
	if !ok {
		return nil, fmt.Errorf("open store %q: unsupported scheme %q", uri, scheme)
	}
	return o(ctx, u)
}

// Join joins key elements with slashes, like path.Join, without a leading
// slash.
func Join(elem ...string) string {
	return strings.TrimPrefix(path.Join(elem...), "/")
}

// ReadAll reads a whole object.
func ReadAll(ctx context.Context, b Bucket, key string) ([]byte, error) {
	r, err := b.NewReader(ctx, key, 0)
	if err != nil {
		return nil, err
	}
	defer func() { _ = r.Close() }() // everything was read (and, on GCS, checked) or failed
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", b.URI(key), err)
	}
	return data, nil
}

// WriteAll writes a whole object with the given conditions.
func WriteAll(ctx context.Context, b Bucket, key string, data []byte, opts WriteOptions) error {
	_, err := Put(ctx, b, key, data, opts)
	return err
}

// CreateOrSame writes an object only if it is absent; an existing object
// with exactly these bytes (a retried or repeated write of the same record)
// is success, anything else an error wrapping ErrPrecondition.
func CreateOrSame(ctx context.Context, b Bucket, key string, data []byte) error {
	err := WriteAll(ctx, b, key, data, WriteOptions{IfAbsent: true, ContentType: "application/json"})
	if !errors.Is(err, ErrPrecondition) {
		return err
	}
	have, rerr := ReadAll(ctx, b, key)
	if rerr != nil {
		return rerr
	}
	if !bytes.Equal(have, data) {
		return fmt.Errorf("create %s: %w (exists with other content)", b.URI(key), ErrPrecondition)
	}
	return nil
}

// Put writes a whole object with the given conditions and returns what was
// written, generation included.
func Put(ctx context.Context, b Bucket, key string, data []byte, opts WriteOptions) (ObjectInfo, error) {
	w, err := b.NewWriter(ctx, key, opts)
	if err != nil {
		return ObjectInfo{}, err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		return ObjectInfo{}, fmt.Errorf("write %s: %w", b.URI(key), err)
	}
	if err := w.Close(); err != nil {
		return ObjectInfo{}, err
	}
	return w.Attrs(), nil
}
