package store

import (
	"context"
	"fmt"
	"hash/crc32"
	"sync/atomic"
	"time"

	"cloud.google.com/go/storage"
	gax "github.com/googleapis/gax-go/v2"

	"github.com/adtech/scorer/internal/backoff"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// gcsWriter buffers up to ChunkSize bytes and sends them in one request at
// Close, or, once more are written, streams a resumable upload.
type gcsWriter struct {
	b    *gcsBucket
	key  string
	opts WriteOptions

	crc  uint32 // CRC32C of everything written
	size int64
	buf  []byte // written bytes while the object fits in one chunk

	// put sends a buffered object (small path); start opens the resumable
	// upload (large path); ours and discard check and remove what an upload
	// left. All carry NewWriter's context.
	put     func(data []byte, crc uint32) (*storage.ObjectAttrs, error)
	start   func() *gcsStream
	ours    func() (*storage.ObjectAttrs, bool)
	discard func(generation int64)

	stream *gcsStream
	err    error // the first failure; the writer is dead after it
	done   bool
	attrs  ObjectInfo
}

// gcsStream is a resumable upload in progress.
type gcsStream struct {
	w      *storage.Writer
	cancel context.CancelFunc
	// mayHaveApplied is set when a request of the upload was retried after
	// a failure that does not prove it was not applied.
	mayHaveApplied atomic.Bool
}

func (b *gcsBucket) NewWriter(ctx context.Context, key string, opts WriteOptions) (Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("create %s: %w", b.URI(key), err)
	}
	w := &gcsWriter{b: b, key: key, opts: opts}
	w.put = func(data []byte, crc uint32) (*storage.ObjectAttrs, error) {
		return b.putObject(ctx, key, data, crc, opts)
	}
	w.start = func() *gcsStream { return b.startUpload(ctx, key, opts) }
	w.ours = func() (*storage.ObjectAttrs, bool) { return b.ours(ctx, key, w.size, w.crc, opts.Metadata) }
	w.discard = func(gen int64) {
		_, _ = b.call(ctx, "delete", func(ctx context.Context) error {
			return b.object(key).If(storage.Conditions{GenerationMatch: gen}).Delete(ctx)
		})
	}
	return w, nil
}

func (w *gcsWriter) Write(p []byte) (int, error) {
	switch {
	case w.done:
		return 0, fmt.Errorf("write %s: writer closed", w.b.URI(w.key))
	case w.err != nil:
		return 0, w.err
	}
	w.crc = crc32.Update(w.crc, castagnoli, p)
	w.size += int64(len(p))
	if w.stream == nil {
		if len(w.buf)+len(p) <= w.b.opts.ChunkSize {
			w.buf = append(w.buf, p...)
			return len(p), nil
		}
		w.stream = w.start()
		buf := w.buf
		w.buf = nil
		if _, err := w.stream.w.Write(buf); err != nil {
			w.err = w.b.fail("write", w.key, outcome{}, err)
			return 0, w.err
		}
	}
	n, err := w.stream.w.Write(p)
	if err != nil {
		w.err = w.b.fail("write", w.key, outcome{}, err)
	}
	return n, w.err
}

func (w *gcsWriter) Close() error {
	if w.done {
		return fmt.Errorf("close %s: writer already closed", w.b.URI(w.key))
	}
	if w.err != nil {
		w.Abort()
		return w.err
	}
	w.done = true
	if w.stream == nil {
		a, err := w.put(w.buf, w.crc)
		w.buf = nil
		if err != nil {
			return err
		}
		w.attrs = w.b.info(a)
		return nil
	}
	s := w.stream
	err := s.w.Close()
	defer s.cancel()
	if err != nil {
		if isPrecondition(err) && s.mayHaveApplied.Load() {
			if a, ok := w.ours(); ok {
				w.attrs = w.b.info(a)
				return nil
			}
		}
		return w.b.fail("write", w.key, outcome{}, err)
	}
	a := s.w.Attrs()
	if a.Size != w.size || a.CRC32C != w.crc {
		// GCS verified the checksum the library sent, so this should not
		// happen; do not leave an object that is not what was written.
		err := fmt.Errorf("write %s: stored %d bytes with CRC32C %08x, wrote %d bytes with CRC32C %08x",
			w.b.URI(w.key), a.Size, a.CRC32C, w.size, w.crc)
		w.discard(a.Generation)
		return err
	}
	w.attrs = w.b.info(a)
	return nil
}

func (w *gcsWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.buf = nil
	if w.stream != nil {
		// Cancelling the upload's context abandons the session: GCS
		// creates no object. Close then only waits for the upload to stop.
		w.stream.cancel()
		_ = w.stream.w.Close()
	}
}

func (w *gcsWriter) Attrs() ObjectInfo { return w.attrs }

// putObject writes a whole object in one request per attempt, declaring its
// CRC32C so that GCS verifies it.
func (b *gcsBucket) putObject(ctx context.Context, key string, data []byte, crc uint32, opts WriteOptions) (*storage.ObjectAttrs, error) {
	var attrs *storage.ObjectAttrs
	res, err := b.call(ctx, "write", func(ctx context.Context) error {
		o := b.object(key)
		if c, ok := conditions(opts); ok {
			o = o.If(c)
		}
		w := o.NewWriter(ctx)
		w.ChunkSize = 0 // one request, streamed from data; retried here
		w.SendCRC32C, w.CRC32C = true, crc
		w.ContentType = opts.ContentType
		w.Metadata = opts.Metadata
		if _, err := w.Write(data); err != nil {
			_ = w.Close()
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
		attrs = w.Attrs()
		return nil
	})
	if err != nil {
		if isPrecondition(err) && res.mayHaveApplied {
			if a, ok := b.ours(ctx, key, int64(len(data)), crc, opts.Metadata); ok {
				return a, nil
			}
		}
		return nil, b.fail("write", key, res, err)
	}
	return attrs, nil
}

// startUpload opens a resumable upload whose chunks the library retries with
// this bucket's backoff and attempt count.
func (b *gcsBucket) startUpload(ctx context.Context, key string, opts WriteOptions) *gcsStream {
	ctx, cancel := context.WithCancel(ctx)
	s := &gcsStream{cancel: cancel}
	var failures atomic.Int32 // of the current chunk
	o := b.client.Bucket(b.bucket).Object(b.prefix+key).Retryer(
		// Chunks are sent again from the library's buffer, and the session
		// carries the precondition: retrying is safe, conditional or not.
		storage.WithPolicy(storage.RetryAlways),
		// The library takes a gax.Backoff: the same growth as backoff.Policy,
		// with gax's own jitter (a draw from (0, d]).
		storage.WithBackoff(gax.Backoff{Initial: b.opts.InitialBackoff, Max: b.opts.MaxBackoff, Multiplier: backoff.Multiplier}),
		storage.WithErrorFuncWithContext(func(err error, _ *storage.RetryContext) bool {
			if !storage.ShouldRetry(err) || int(failures.Add(1)) >= b.opts.MaxAttempts {
				return false
			}
			if !notApplied(err) {
				s.mayHaveApplied.Store(true)
			}
			b.retrying("write", err)
			return true
		}),
	)
	if c, ok := conditions(opts); ok {
		o = o.If(c)
	}
	w := o.NewWriter(ctx)
	w.ChunkSize = b.opts.ChunkSize
	w.ChunkTransferTimeout = b.opts.CallTimeout
	w.ChunkRetryDeadline = b.callBound()
	w.ProgressFunc = func(int64) { failures.Store(0) }
	w.ContentType = opts.ContentType
	w.Metadata = opts.Metadata
	// Automatic checksumming stays on: the library sends the CRC32C of the
	// whole object with the final chunk and GCS verifies it.
	s.w = w
	return s
}

// callBound is the longest a call of MaxAttempts attempts may take.
func (b *gcsBucket) callBound() time.Duration {
	return time.Duration(b.opts.MaxAttempts) * (b.opts.CallTimeout + b.opts.MaxBackoff)
}
