package store

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/adtech/scorer/internal/backoff"
)

func init() { Register("gs", openGCS) }

// GCSOptions configure a gs:// store. Start from DefaultGCSOptions.
type GCSOptions struct {
	// MaxAttempts bounds the attempts of one call, the first included
	// (for a streamed upload: of one chunk; for a read: since the last
	// progress).
	MaxAttempts int
	// InitialBackoff is the pause before the first retry; it doubles with
	// every retry up to MaxBackoff. Pauses are jittered.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// CallTimeout is the deadline of one attempt: one request, one chunk of
	// an upload, or one wait for bytes of a read.
	CallTimeout time.Duration
	// ChunkSize is what a Writer keeps in memory: objects up to this size
	// are sent in one request, larger ones as a resumable upload in chunks
	// of this size (rounded up to a multiple of 256 KiB by the library).
	ChunkSize int
	// ParallelReadThreshold: objects of at least this many bytes are read
	// by ParallelReads concurrent range requests of ParallelReadPartSize
	// bytes, using at most ParallelReads × ParallelReadPartSize bytes of
	// buffers per reader. Zero reads every object as one stream.
	ParallelReadThreshold int64
	ParallelReadPartSize  int64
	ParallelReads         int
	// OnRetry, if set, is called before every retry with the operation
	// ("stat", "list", "read", "write", "copy", "delete") and the error
	// retried. It must be safe for concurrent use.
	OnRetry func(op string, err error)
}

// DefaultGCSOptions are the options gs:// URIs are opened with.
func DefaultGCSOptions() GCSOptions {
	return GCSOptions{
		MaxAttempts:           6,
		InitialBackoff:        200 * time.Millisecond,
		MaxBackoff:            10 * time.Second,
		CallTimeout:           60 * time.Second,
		ChunkSize:             16 << 20,
		ParallelReadThreshold: 64 << 20,
		ParallelReadPartSize:  16 << 20,
		ParallelReads:         4,
	}
}

// Validate reports the first invalid option.
func (o GCSOptions) Validate() error {
	switch {
	case o.MaxAttempts < 1:
		return fmt.Errorf("gcs options: max attempts %d, want at least 1", o.MaxAttempts)
	case o.InitialBackoff <= 0 || o.MaxBackoff < o.InitialBackoff:
		return fmt.Errorf("gcs options: backoff %s up to %s, want 0 < initial <= max", o.InitialBackoff, o.MaxBackoff)
	case o.CallTimeout <= 0:
		return fmt.Errorf("gcs options: call timeout %s, want > 0", o.CallTimeout)
	case o.ChunkSize <= 0:
		return fmt.Errorf("gcs options: chunk size %d, want > 0", o.ChunkSize)
	case o.ParallelReadThreshold < 0:
		return fmt.Errorf("gcs options: parallel read threshold %d, want >= 0 (0: off)", o.ParallelReadThreshold)
	case o.ParallelReadThreshold > 0 && (o.ParallelReadPartSize <= 0 || o.ParallelReads < 1):
		return fmt.Errorf("gcs options: parallel reads of %d parts of %d bytes, want both > 0", o.ParallelReads, o.ParallelReadPartSize)
	}
	return nil
}

// gcsBucket is a Bucket over a GCS bucket and key prefix.
type gcsBucket struct {
	client *storage.Client
	bucket string
	prefix string // "" or ending in "/"
	opts   GCSOptions
	// pause is the wait after the nth failed attempt: InitialBackoff
	// doubled n-1 times, capped at MaxBackoff, with equal jitter (half
	// fixed, half random) so that many clients do not retry in step.
	pause backoff.Policy
}

// NewGCSBucket returns a Bucket over a GCS bucket, with keys relative to
// prefix: the gs:// store. Retry settings made on client are not used; the
// bucket makes its own retries, as described below.
//
// Client. Open("gs://bucket/prefix") builds one cloud.google.com/go/storage
// client per store. When STORAGE_EMULATOR_HOST is set (host:port or a URL,
// e.g. a fake-gcs-server container) the library sends every request there,
// unauthenticated, and reads go through the JSON API, which emulators serve
// (the library's default XML reads need the emulator's public host).
// Otherwise the client authenticates with Application Default Credentials:
// GOOGLE_APPLICATION_CREDENTIALS, gcloud's user credentials, or the metadata
// server of the VM or pod. Tests and wiring that want their own client,
// transport or options call NewGCSBucket.
//
// Retries and deadlines. Every call to GCS is made by attempts, each under
// its own deadline, GCSOptions.CallTimeout, below the caller's context: a
// request that hangs is cut and tried again rather than holding the run
// until the caller's deadline. An attempt that fails with a transient error
// (408, 429, 5xx, a reset or refused connection, a body cut short, its own
// deadline) is retried after an exponential backoff with jitter,
// InitialBackoff doubling up to MaxBackoff, at most MaxAttempts attempts in
// all; each retry is reported to GCSOptions.OnRetry. Permanent errors (400,
// 401, 403, 404 of a bucket, 412) fail at once, with the bucket and key in
// the message. A call thus takes at most about MaxAttempts × (CallTimeout +
// MaxBackoff), less if the caller's context ends first.
//
// Stat, each page of List, Copy, Delete, opening a read and writes of
// objects up to ChunkSize run that loop here, with the library's retries
// off. Writes are retried whether conditional or not: the whole object is
// sent again, and a conditional write is idempotent by its precondition.
// When a retried conditional write or copy fails its precondition (412),
// the earlier attempt may have been applied with its answer lost: the
// object is compared with what was written (size, CRC32C and the caller's
// metadata) and, if it is ours, the write succeeds; otherwise it fails with
// ErrPrecondition. A retried Delete that finds the object gone takes it as
// done.
//
// Writes. A Writer keeps up to ChunkSize bytes in memory. An object that
// fits is sent at Close in one request declaring its CRC32C, computed while
// writing (storage.Writer CRC32C with SendCRC32C), which GCS verifies. A
// larger object becomes a resumable upload in chunks of ChunkSize (the
// library rounds it up to 256 KiB), streamed as it is written: the library
// retries each chunk from its buffer (policy RetryAlways, this bucket's
// backoff, MaxAttempts per chunk), cuts a chunk request that has not
// completed within CallTimeout (ChunkTransferTimeout), and sends the CRC32C
// it computes with the final chunk, which GCS verifies; the stored object's
// size and CRC32C are then checked against the ones computed here. The
// request that opens a resumable session has no deadline of its own (the
// library sets none): the caller's context bounds it. Nothing is visible
// before Close returns nil; Abort cancels the upload's context, which
// abandons the session and leaves no object.
//
// Reads. A reader is pinned to one generation, the caller's or the one its
// first response came from: once that generation is replaced, the read fails
// with ErrNotExist rather than mix two versions. A stream broken mid-way
// (body cut short, connection reset, no bytes for CallTimeout) is reopened
// at the offset reached, up to MaxAttempts failures in a row without
// progress. (The library reopens a broken response once by itself, at the
// same offset and generation, before this package sees a failure; that
// reopen is not reported to OnRetry.) Objects of ParallelReadThreshold bytes
// or more are read as ranges of ParallelReadPartSize, ParallelReads of them
// fetched at once into as many buffers and delivered in order. The whole
// object's CRC32C is checked at the end of every read, resumed or parallel
// (the library checks it only for one unbroken stream).
func NewGCSBucket(client *storage.Client, bucket, prefix string, opts GCSOptions) (Bucket, error) {
	if bucket == "" {
		return nil, errors.New("gcs store: empty bucket name")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if prefix = strings.Trim(prefix, "/"); prefix != "" {
		prefix += "/"
	}
	pause := backoff.Policy{Initial: opts.InitialBackoff, Max: opts.MaxBackoff, Jitter: backoff.Equal}
	return &gcsBucket{client: client, bucket: bucket, prefix: prefix, opts: opts, pause: pause}, nil
}

func openGCS(ctx context.Context, u *url.URL) (Bucket, error) {
	return GCSOpener(DefaultGCSOptions())(ctx, u)
}

// GCSOpener returns an Opener of gs:// URIs with the given options, for
// wiring that configures them:
//
//	store.Register("gs", store.GCSOpener(opts))
//
// Each store opened gets its own client (emulator or Application Default
// Credentials, as NewGCSBucket describes).
func GCSOpener(opts GCSOptions) Opener {
	return func(ctx context.Context, u *url.URL) (Bucket, error) {
		if u.Host == "" {
			return nil, fmt.Errorf("open store %s: no bucket named (want gs://bucket/prefix)", u)
		}
		if err := opts.Validate(); err != nil {
			return nil, fmt.Errorf("open store %s: %w", u, err)
		}
		copts := []option.ClientOption{storage.WithDisabledClientMetrics()}
		if os.Getenv("STORAGE_EMULATOR_HOST") != "" {
			copts = append(copts, storage.WithJSONReads())
		}
		// The client outlives this call: its token refreshes must not be
		// tied to ctx.
		client, err := storage.NewClient(context.WithoutCancel(ctx), copts...)
		if err != nil {
			return nil, fmt.Errorf("open store %s: %w", u, err)
		}
		return NewGCSBucket(client, u.Host, u.Path, opts)
	}
}

func (b *gcsBucket) URI(key string) string { return "gs://" + b.bucket + "/" + b.prefix + key }

// object returns a fresh handle on key with the library's retries off: the
// attempts are made by call.
func (b *gcsBucket) object(key string) *storage.ObjectHandle {
	return b.client.Bucket(b.bucket).Object(b.prefix + key).Retryer(storage.WithPolicy(storage.RetryNever))
}

func (b *gcsBucket) info(a *storage.ObjectAttrs) ObjectInfo {
	md := a.Metadata
	if len(md) == 0 {
		md = nil
	}
	return ObjectInfo{
		Key:        strings.TrimPrefix(a.Name, b.prefix),
		Size:       a.Size,
		Generation: a.Generation,
		Updated:    a.Updated.UTC(),
		CRC32C:     a.CRC32C,
		Metadata:   md,
	}
}

// outcome says how a call went.
type outcome struct {
	attempts int
	// mayHaveApplied: an earlier attempt failed in a way that does not
	// prove it was not applied (anything but a 429 or a refused connection).
	mayHaveApplied bool
}

// call runs fn once per attempt, each under its own deadline, retrying
// transient failures with backoff (see the package comment).
func (b *gcsBucket) call(ctx context.Context, op string, fn func(ctx context.Context) error) (outcome, error) {
	var out outcome
	for {
		out.attempts++
		actx, cancel := context.WithTimeout(ctx, b.opts.CallTimeout)
		err := fn(actx)
		expired := err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded)
		cancel()
		if err == nil {
			return out, nil
		}
		if ctx.Err() != nil {
			return out, err
		}
		if expired {
			err = fmt.Errorf("no answer within %s: %w", b.opts.CallTimeout, err)
		}
		retryable := expired || storage.ShouldRetry(err)
		if !retryable || out.attempts >= b.opts.MaxAttempts {
			return out, err
		}
		if !notApplied(err) {
			out.mayHaveApplied = true
		}
		b.retrying(op, err)
		if err := sleep(ctx, b.pause.Delay(out.attempts)); err != nil {
			return out, err
		}
	}
}

func (b *gcsBucket) retrying(op string, err error) {
	if b.opts.OnRetry != nil {
		b.opts.OnRetry(op, err)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// notApplied reports errors that prove the request was not carried out.
func notApplied(err error) bool {
	var e *googleapi.Error
	if errors.As(err, &e) && e.Code == http.StatusTooManyRequests {
		return true
	}
	return strings.Contains(err.Error(), "connection refused")
}

func httpCode(err error) int {
	var e *googleapi.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func isPrecondition(err error) bool { return httpCode(err) == http.StatusPreconditionFailed }

func isNotFound(err error) bool {
	return errors.Is(err, storage.ErrObjectNotExist) || httpCode(err) == http.StatusNotFound
}

// bucketMissing recognises GCS's "the bucket does not exist" among 404s, so
// that a misnamed bucket is not taken for an absent object.
func bucketMissing(err error) bool {
	if errors.Is(err, storage.ErrBucketNotExist) {
		return true
	}
	var e *googleapi.Error
	if !errors.As(err, &e) || e.Code != http.StatusNotFound {
		return false
	}
	text := strings.ToLower(e.Message + " " + e.Body)
	for _, it := range e.Errors {
		text += " " + strings.ToLower(it.Message)
	}
	return strings.Contains(text, "bucket does not exist") || strings.Contains(text, "nosuchbucket")
}

// fail wraps err as "op gs://bucket/key: ...", mapping GCS's answers to the
// store's sentinels.
func (b *gcsBucket) fail(op, key string, out outcome, err error) error {
	uri := b.URI(key)
	switch code := httpCode(err); {
	case bucketMissing(err), op == "write" && isNotFound(err): // a write needs no object: its 404 is the bucket's
		return fmt.Errorf("%s %s: bucket %q does not exist: %w: %w", op, uri, b.bucket, ErrAccess, err)
	case isNotFound(err):
		return fmt.Errorf("%s %s: %w", op, uri, ErrNotExist)
	case code == http.StatusPreconditionFailed:
		return fmt.Errorf("%s %s: %w", op, uri, ErrPrecondition)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fmt.Errorf("%s %s: permission denied on bucket %q (check the credentials' roles): %w: %w", op, uri, b.bucket, ErrAccess, err)
	}
	if out.attempts > 1 {
		return fmt.Errorf("%s %s: %w (after %d attempts)", op, uri, err, out.attempts)
	}
	return fmt.Errorf("%s %s: %w", op, uri, err)
}

// listPageSize is GCS's largest page (a variable for tests).
var listPageSize = 1000

func (b *gcsBucket) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	q := &storage.Query{Prefix: b.prefix + prefix, Projection: storage.ProjectionNoACL}
	if err := q.SetAttrSelection([]string{"Name", "Size", "Generation", "Updated", "CRC32C", "Metadata"}); err != nil {
		return nil, fmt.Errorf("list %s: %w", b.URI(prefix), err)
	}
	bkt := b.client.Bucket(b.bucket).Retryer(storage.WithPolicy(storage.RetryNever))
	var (
		out   []ObjectInfo
		token string
	)
	for {
		var (
			page []*storage.ObjectAttrs
			next string
		)
		res, err := b.call(ctx, "list", func(ctx context.Context) error {
			page = page[:0]
			var err error
			next, err = iterator.NewPager(bkt.Objects(ctx, q), listPageSize, token).NextPage(&page)
			return err
		})
		if err != nil {
			if isNotFound(err) { // only the bucket can be missing
				return nil, fmt.Errorf("list %s: bucket %q does not exist: %w: %w", b.URI(prefix), b.bucket, ErrAccess, err)
			}
			return nil, b.fail("list", prefix, res, err)
		}
		for _, a := range page {
			// Skip "folder" placeholders (names ending in /) that consoles create.
			if a.Name == "" || strings.HasSuffix(a.Name, "/") {
				continue
			}
			out = append(out, b.info(a))
		}
		if next == "" {
			break
		}
		token = next
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (b *gcsBucket) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	a, res, err := b.attrs(ctx, key, 0)
	if err != nil {
		return ObjectInfo{}, b.fail("stat", key, res, err)
	}
	return b.info(a), nil
}

func (b *gcsBucket) attrs(ctx context.Context, key string, gen int64) (*storage.ObjectAttrs, outcome, error) {
	var a *storage.ObjectAttrs
	res, err := b.call(ctx, "stat", func(ctx context.Context) error {
		o := b.object(key)
		if gen != 0 {
			o = o.Generation(gen)
		}
		var err error
		a, err = o.Attrs(ctx)
		return err
	})
	return a, res, err
}

// conditions translates the write conditions; ok is false when there are
// none (the library refuses empty Conditions).
func conditions(opts WriteOptions) (storage.Conditions, bool) {
	switch {
	case opts.IfAbsent:
		return storage.Conditions{DoesNotExist: true}, true
	case opts.IfGeneration != 0:
		return storage.Conditions{GenerationMatch: opts.IfGeneration}, true
	}
	return storage.Conditions{}, false
}

// ours reports whether the object under key is the one we meant to write:
// same size and CRC32C, and the metadata we gave. It is asked after a
// retried conditional write failed its precondition.
func (b *gcsBucket) ours(ctx context.Context, key string, size int64, crc uint32, md map[string]string) (*storage.ObjectAttrs, bool) {
	a, _, err := b.attrs(ctx, key, 0)
	if err != nil || a.Size != size || a.CRC32C != crc {
		return nil, false
	}
	for k, v := range md {
		if a.Metadata[k] != v {
			return nil, false
		}
	}
	return a, true
}

func (b *gcsBucket) Copy(ctx context.Context, src, dst string, opts WriteOptions) error {
	res, err := b.call(ctx, "copy", func(ctx context.Context) error {
		s := b.object(src)
		if opts.SourceGeneration != 0 {
			s = s.Generation(opts.SourceGeneration)
		}
		d := b.object(dst)
		if c, ok := conditions(opts); ok {
			d = d.If(c)
		}
		cp := d.CopierFrom(s)
		cp.ContentType = opts.ContentType
		cp.Metadata = opts.Metadata
		_, err := cp.Run(ctx)
		return err
	})
	if err == nil {
		return nil
	}
	switch {
	case isPrecondition(err) && res.mayHaveApplied:
		// Our earlier attempt may have made the copy: compare with the source.
		if sa, _, serr := b.attrs(ctx, src, opts.SourceGeneration); serr == nil {
			if _, ok := b.ours(ctx, dst, sa.Size, sa.CRC32C, opts.Metadata); ok {
				return nil
			}
		}
		return b.fail("copy to", dst, res, err)
	case isPrecondition(err):
		return b.fail("copy to", dst, res, err)
	case isNotFound(err) && !bucketMissing(err) && opts.SourceGeneration != 0:
		return fmt.Errorf("copy %s generation %d: %w (replaced since it was listed)", b.URI(src), opts.SourceGeneration, ErrNotExist)
	}
	return b.fail("copy", src, res, err)
}

func (b *gcsBucket) Delete(ctx context.Context, key string) error {
	res, err := b.call(ctx, "delete", func(ctx context.Context) error { return b.object(key).Delete(ctx) })
	if err != nil {
		if isNotFound(err) && !bucketMissing(err) && res.mayHaveApplied {
			return nil // an earlier attempt deleted it
		}
		return b.fail("delete", key, res, err)
	}
	return nil
}
