package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/storage"
)

func (b *gcsBucket) NewReader(ctx context.Context, key string, generation int64) (io.ReadCloser, error) {
	r := b.newRangeReader(ctx, key, generation, 0, -1)
	if err := r.begin(); err != nil {
		_ = r.Close()
		if generation != 0 && isNotFound(err) && !bucketMissing(err) {
			return nil, fmt.Errorf("open %s generation %d: %w (replaced since it was listed)", b.URI(key), generation, ErrNotExist)
		}
		return nil, b.fail("open", key, outcome{attempts: r.failures}, err)
	}
	if r.transcoded {
		return r, nil
	}
	size, want := r.end, r.crc
	check := want != 0 || size == 0 // no CRC32C header: nothing to check
	if t := b.opts.ParallelReadThreshold; t > 0 && size >= t && size > b.opts.ParallelReadPartSize {
		// The first part streams from the response already open; the
		// others are fetched as ranges meanwhile.
		r.end = b.opts.ParallelReadPartSize
		return &crcReader{rc: b.newParallelReader(ctx, key, r, size), uri: b.URI(key), want: want, check: check}, nil
	}
	return &crcReader{rc: r, uri: b.URI(key), want: want, check: check}, nil
}

// NewRangeReader reads part of an object with the resumed, pinned reads of
// NewReader (one request, reopened from the offset reached after a broken
// or stalled stream), without the end-to-end CRC32C check, which GCS gives
// for whole objects only.
func (b *gcsBucket) NewRangeReader(ctx context.Context, key string, generation, offset, length int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, fmt.Errorf("open %s: negative offset %d", b.URI(key), offset)
	}
	replaced := func() error {
		return fmt.Errorf("open %s generation %d: %w (replaced since it was listed)", b.URI(key), generation, ErrNotExist)
	}
	// empty checks that the object (of that generation) exists, for a
	// range that reads nothing: GCS refuses to serve one (416).
	empty := func() (io.ReadCloser, error) {
		if _, res, err := b.attrs(ctx, key, generation); err != nil {
			if generation != 0 && isNotFound(err) && !bucketMissing(err) {
				return nil, replaced()
			}
			return nil, b.fail("open", key, res, err)
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	if length == 0 {
		return empty()
	}
	end := int64(-1)
	if length > 0 {
		end = offset + length
	}
	r := b.newRangeReader(ctx, key, generation, offset, end)
	if err := r.begin(); err != nil {
		_ = r.Close()
		switch {
		case httpCode(err) == http.StatusRequestedRangeNotSatisfiable:
			return empty()
		case generation != 0 && isNotFound(err) && !bucketMissing(err):
			return nil, replaced()
		}
		return nil, b.fail("open", key, outcome{attempts: r.failures}, err)
	}
	if r.transcoded || r.cur.r.Attrs.Decompressed {
		_ = r.Close()
		return nil, fmt.Errorf("open %s: ranged read of an object stored with Content-Encoding gzip (GCS serves it whole, decompressed)", b.URI(key))
	}
	if size := r.cur.r.Attrs.Size; end < 0 || end > size {
		r.end = max(size, offset) // a range past the end is cut there
	}
	return r, nil
}

// crcReader checks the CRC32C of everything read against the object's at
// the end of the stream.
type crcReader struct {
	rc    io.ReadCloser
	uri   string
	want  uint32
	got   uint32
	check bool
}

func (r *crcReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.got = crc32.Update(r.got, castagnoli, p[:n])
	if errors.Is(err, io.EOF) && r.check && r.got != r.want {
		return n, fmt.Errorf("read %s: CRC32C %08x, the object's is %08x: corrupted in transit", r.uri, r.got, r.want)
	}
	return n, err
}

func (r *crcReader) Close() error { return r.rc.Close() }

// rangeReader reads bytes [off, end) of one generation of an object. A broken
// or stalled stream is reopened from the offset reached; MaxAttempts bounds
// the failures in a row without progress.
type rangeReader struct {
	b   *gcsBucket
	key string
	gen int64 // 0 until the first response names it, for an unpinned read
	off int64
	end int64  // -1 until the first response gives the size
	crc uint32 // the object's CRC32C, from the first response (0: unknown)
	// transcoded: GCS decompresses the object as it serves it (stored with
	// Content-Encoding gzip), so offsets and sizes do not match the bytes
	// read. Such a read is passed through, resumed by the library only.
	transcoded bool
	open       func(gen, off, length int64) (*readAttempt, error)
	// live reports the caller's context error, nil while it is live.
	live  func() error
	pause func(d time.Duration) error

	cur      *readAttempt
	failures int
	err      error
}

// readAttempt is one response being read, under a watchdog that cancels it
// when a Read waits longer than CallTimeout.
type readAttempt struct {
	r       *storage.Reader
	cancel  context.CancelFunc
	timer   *time.Timer
	stalled atomic.Bool
}

func (b *gcsBucket) newRangeReader(ctx context.Context, key string, gen, off, end int64) *rangeReader {
	return &rangeReader{
		b: b, key: key, gen: gen, off: off, end: end,
		open: func(gen, off, length int64) (*readAttempt, error) {
			return b.openRange(ctx, key, gen, off, length)
		},
		live:  ctx.Err,
		pause: func(d time.Duration) error { return sleep(ctx, d) },
	}
}

func (b *gcsBucket) openRange(ctx context.Context, key string, gen, off, length int64) (*readAttempt, error) {
	actx, cancel := context.WithCancel(ctx)
	a := &readAttempt{cancel: cancel}
	a.timer = time.AfterFunc(b.opts.CallTimeout, func() { a.stalled.Store(true); cancel() })
	o := b.object(key)
	if gen != 0 {
		o = o.Generation(gen)
	}
	r, err := o.NewRangeReader(actx, off, length)
	a.timer.Stop()
	if err != nil {
		cancel()
		return a, err
	}
	a.r = r
	return a, nil
}

func (a *readAttempt) read(p []byte, timeout time.Duration) (int, error) {
	a.timer.Reset(timeout)
	n, err := a.r.Read(p)
	a.timer.Stop()
	return n, err
}

func (a *readAttempt) close() {
	a.timer.Stop()
	if a.r != nil {
		_ = a.r.Close()
	}
	a.cancel()
}

// begin opens the first response, learning the generation and size.
func (r *rangeReader) begin() error {
	if err := r.reopen(); err != nil {
		r.err = err
		return err
	}
	return nil
}

// reopen opens a response at r.off, retrying transient failures.
func (r *rangeReader) reopen() error {
	for {
		length := int64(-1)
		if r.end >= 0 {
			length = r.end - r.off
		}
		a, err := r.open(r.gen, r.off, length)
		if err == nil {
			if r.gen == 0 {
				r.gen = a.r.Attrs.Generation
			}
			if r.end < 0 {
				r.end = a.r.Attrs.Size
				r.crc = a.r.Attrs.CRC32C
				r.transcoded = a.r.Attrs.Decompressed
			}
			r.cur = a
			return nil
		}
		if err := r.failed(err, a.stalled.Load()); err != nil {
			return err
		}
	}
}

// failed decides after a failure: nil to try again (after a pause), or the
// error to give up with.
func (r *rangeReader) failed(err error, stalled bool) error {
	if cerr := r.live(); cerr != nil {
		return cerr
	}
	if stalled {
		err = fmt.Errorf("no bytes within %s: %w", r.b.opts.CallTimeout, err)
	}
	r.failures++
	retryable := stalled || storage.ShouldRetry(err)
	if !retryable || r.failures >= r.b.opts.MaxAttempts {
		return err
	}
	r.b.retrying("read", err)
	return r.pause(r.b.pause.Delay(r.failures))
}

func (r *rangeReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.transcoded {
		n, err := r.cur.read(p, r.b.opts.CallTimeout)
		if err != nil && !errors.Is(err, io.EOF) {
			r.err = r.b.fail("read", r.key, outcome{attempts: 1}, err)
			return n, r.err
		}
		return n, err
	}
	if r.off >= r.end {
		r.release()
		return 0, io.EOF
	}
	if rest := r.end - r.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	for {
		if r.cur == nil {
			if err := r.reopen(); err != nil {
				r.err = r.b.fail("read", r.key, outcome{attempts: r.failures}, err)
				return 0, r.err
			}
		}
		n, err := r.cur.read(p, r.b.opts.CallTimeout)
		r.off += int64(n)
		if n > 0 {
			r.failures = 0
		}
		if errors.Is(err, io.EOF) && r.off < r.end {
			err = io.ErrUnexpectedEOF // the body ended early without an error
		}
		if r.off >= r.end {
			r.release() // done: drop the rest of an open-ended response
			if n > 0 {
				return n, nil
			}
			return 0, io.EOF
		}
		if err == nil {
			return n, nil
		}
		stalled := r.cur.stalled.Load()
		r.release()
		if err := r.failed(err, stalled); err != nil {
			r.err = r.b.fail("read", r.key, outcome{attempts: r.failures}, err)
			if n > 0 {
				return n, nil // the error comes with the next Read
			}
			return 0, r.err
		}
		if n > 0 {
			return n, nil
		}
	}
}

func (r *rangeReader) release() {
	if r.cur != nil {
		r.cur.close()
		r.cur = nil
	}
}

func (r *rangeReader) Close() error {
	r.release()
	if r.err == nil {
		r.err = errors.New("reader closed")
	}
	return nil
}

// parallelReader delivers an object in order from ranges fetched
// concurrently: the first part from the response already open, the others
// by up to ParallelReads range requests into as many part buffers, which
// return to the pool as the reader consumes them.
type parallelReader struct {
	first *rangeReader
	parts []*readPart
	next  int
	cur   []byte // unread bytes of the part being consumed
	held  []byte // its buffer
	free  chan []byte
	stop  context.CancelFunc
	wg    sync.WaitGroup
	err   error
}

type readPart struct {
	off, n int64
	buf    []byte
	err    error
	done   chan struct{}
}

func (b *gcsBucket) newParallelReader(ctx context.Context, key string, first *rangeReader, size int64) *parallelReader {
	ctx, stop := context.WithCancel(ctx)
	p := &parallelReader{first: first, stop: stop, free: make(chan []byte, b.opts.ParallelReads)}
	for i := 0; i < b.opts.ParallelReads; i++ {
		p.free <- nil // allocated on first use
	}
	part := b.opts.ParallelReadPartSize
	for off := first.end; off < size; off += part {
		p.parts = append(p.parts, &readPart{off: off, n: min(part, size-off), done: make(chan struct{})})
	}
	gen := first.gen
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for i, rp := range p.parts {
			var buf []byte
			select {
			case buf = <-p.free:
			case <-ctx.Done():
				for _, rp := range p.parts[i:] {
					rp.err = ctx.Err()
					close(rp.done)
				}
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer close(rp.done)
				if int64(cap(buf)) < part {
					buf = make([]byte, part)
				}
				rp.buf = buf[:rp.n]
				r := b.newRangeReader(ctx, key, gen, rp.off, rp.off+rp.n)
				_, rp.err = io.ReadFull(r, rp.buf)
				_ = r.Close()
			}()
		}
	}()
	return p
}

func (p *parallelReader) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	if p.first != nil {
		n, err := p.first.Read(b)
		switch {
		case errors.Is(err, io.EOF):
			_ = p.first.Close()
			p.first = nil
			if n > 0 {
				return n, nil
			}
		case err != nil:
			p.err = err
			return n, err
		default:
			return n, nil
		}
	}
	for len(p.cur) == 0 {
		if p.held != nil {
			p.free <- p.held
			p.held = nil
		}
		if p.next == len(p.parts) {
			return 0, io.EOF
		}
		rp := p.parts[p.next]
		p.next++
		<-rp.done
		if rp.err != nil {
			p.err = rp.err
			return 0, p.err
		}
		p.held, p.cur = rp.buf, rp.buf
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	return n, nil
}

// Close stops the fetches in flight and waits for them.
func (p *parallelReader) Close() error {
	p.stop()
	p.wg.Wait()
	if p.first != nil {
		_ = p.first.Close()
	}
	if p.err == nil {
		p.err = errors.New("reader closed")
	}
	return nil
}
