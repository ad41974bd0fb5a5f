package readers

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"golang.org/x/sync/errgroup"

	"github.com/adtech/scorer/readers/store"
)

var errClosed = errors.New("readers: source closed")

// Reader is the Source that Open returns. Besides Source it gives per-file
// accounting (Files) and progress (BytesRead).
type Reader struct {
	cfg    *config
	bucket store.Bucket
	tasks  []task

	// out carries records from the decoding goroutines to Read. It is
	// unbuffered, so no record ever waits in it unowned, and a slow caller
	// slows decoding: at most one record per decoding goroutine is pending.
	out    chan arrow.RecordBatch
	done   chan struct{} // closed when every goroutine has returned
	cancel context.CancelFunc

	bytesRead atomic.Int64
	badMu     sync.Mutex // serialises Options.OnBadRow

	mu    sync.Mutex
	stats []FileStat
	err   error // why the goroutines stopped; set before out is closed

	// Read side, owned by the caller's goroutine.
	readErr error
	closed  bool
}

var _ Source = (*Reader)(nil)

// task is one file to read.
type task struct {
	info   store.ObjectInfo
	format format
	uri    string
}

// fileState is what one decoding goroutine knows about its file.
type fileState struct {
	task task
	stat FileStat
}

func start(ctx context.Context, b store.Bucket, tasks []task, cfg *config) *Reader {
	ctx, cancel := context.WithCancel(ctx)
	r := &Reader{
		cfg:    cfg,
		bucket: b,
		tasks:  tasks,
		out:    make(chan arrow.RecordBatch),
		done:   make(chan struct{}),
		cancel: cancel,
		stats:  make([]FileStat, len(tasks)),
	}
	for i, t := range tasks {
		r.stats[i] = FileStat{Key: t.info.Key, Generation: t.info.Generation}
	}
	go r.run(ctx)
	return r
}

// run decodes every file, at most Concurrency at once; the first error
// cancels the others.
func (r *Reader) run(ctx context.Context) {
	defer close(r.done)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.Concurrency)
	all := true
	for i := range r.tasks {
		if gctx.Err() != nil {
			all = false
			break
		}
		g.Go(func() error { return r.readFile(gctx, i) })
	}
	err := g.Wait()
	if err == nil && !all {
		err = ctx.Err() // cancelled before some file started
	}
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
	close(r.out)
}

// Schema returns the target schema. Records carry the same fields, with
// MetadataFileKey added to the schema metadata.
func (r *Reader) Schema() *arrow.Schema { return r.cfg.Schema }

// Read returns the next record, from any of the files; see Source. Read
// returns io.EOF once every file has been read, the first error of any file
// otherwise. Canceling ctx only ends this call's wait.
func (r *Reader) Read(ctx context.Context) (arrow.RecordBatch, error) {
	if r.closed {
		return nil, errClosed
	}
	if r.readErr != nil {
		return nil, r.readErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case rec, ok := <-r.out:
		if ok {
			return rec, nil
		}
		r.mu.Lock()
		r.readErr = r.err
		r.mu.Unlock()
		if r.readErr == nil {
			r.readErr = io.EOF
		}
		return nil, r.readErr
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close stops decoding and waits for the background goroutines to return. It may be called at any time, also before Read
// has returned io.EOF, and more than once.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.cancel()
	<-r.done
	return nil
}

// Files returns the accounting of every file, in the order given to Open.
// It is complete once Read has returned io.EOF; before that, files not yet
// finished show zeros. Safe for concurrent use.
func (r *Reader) Files() []FileStat {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]FileStat(nil), r.stats...)
}

// BytesRead returns the number of raw stored bytes read so far, over all
// files. It is safe to call from any goroutine at any time (e.g. for a
// progress bar): it is one atomic load.
func (r *Reader) BytesRead() int64 { return r.bytesRead.Load() }

// emit hands a record to Read, or releases it when ctx is done.
func (r *Reader) emit(ctx context.Context, rec arrow.RecordBatch) error {
	select {
	case r.out <- rec:
		return nil
	case <-ctx.Done():
		rec.Release()
		return ctx.Err()
	}
}

// onBadRow applies Options.OnBadRow; calls are serialised.
func (r *Reader) onBadRow(e RowError) error {
	if r.cfg.OnBadRow == nil {
		return e
	}
	r.badMu.Lock()
	defer r.badMu.Unlock()
	return r.cfg.OnBadRow(e)
}

// missing records that the file lacks an Optional column.
func (fs *fileState) missing(name string) {
	if !slices.Contains(fs.stat.Missing, name) {
		fs.stat.Missing = append(fs.stat.Missing, name)
	}
}

// readFile streams one file from the store through its decoder.
func (r *Reader) readFile(ctx context.Context, i int) (err error) {
	fs := &fileState{task: r.tasks[i], stat: r.stats[i]}
	if fs.task.format.kind == kindParquet {
		b := newBatcher(r, fs)
		defer func() {
			r.mu.Lock()
			r.stats[i] = fs.stat
			r.mu.Unlock()
		}()
		return r.readParquet(ctx, fs, b)
	}
	uri := fs.task.uri
	rc, err := r.bucket.NewReader(ctx, fs.task.info.Key, fs.task.info.Generation)
	if err != nil {
		return fmt.Errorf("read %s: %w", uri, err)
	}
	raw := &rawReader{r: rc, total: &r.bytesRead}
	b := newBatcher(r, fs)
	defer func() {
		_ = rc.Close()
		fs.stat.Size, fs.stat.CRC32C = raw.n, raw.crc
		r.mu.Lock()
		r.stats[i] = fs.stat
		r.mu.Unlock()
	}()

	err = r.readText(ctx, fs, raw, b)
	if err == nil {
		// The CRC covers the whole object, whatever the decoder needed.
		_, err = io.Copy(io.Discard, raw)
	}
	if err == nil && fs.task.info.Size > 0 && raw.n != fs.task.info.Size {
		err = fmt.Errorf("object has %d bytes, %d read: %w", fs.task.info.Size, raw.n, io.ErrUnexpectedEOF)
	}
	return classify(uri, raw.err, err)
}

// classify turns a decoder's error into what Read returns: store I/O
// errors as such (storeErr, the first error of the store's reader:
// retryable, never ErrBadInput), a fatal bad row or OnBadRow's error
// unchanged, and everything else named after the file.
func classify(uri string, storeErr, err error) error {
	if err == nil {
		return nil
	}
	var stop stopError
	switch {
	case storeErr != nil:
		return fmt.Errorf("read %s: %w", uri, storeErr)
	case errors.As(err, &stop):
		return stop.err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	err = fmt.Errorf("read %s: %w", uri, err)
	if errors.Is(err, io.EOF) {
		// A decoder's io.EOF deep in the chain (parquet-go: "reading
		// magic header: EOF") must not read as the end of the stream.
		err = noEOF{err}
	}
	return err
}

// noEOF keeps an error's message but drops its chain, except ErrBadInput.
type noEOF struct{ err error }

func (e noEOF) Error() string { return e.err.Error() }

func (e noEOF) Unwrap() error {
	if errors.Is(e.err, ErrBadInput) {
		return ErrBadInput
	}
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// rawReader counts and checksums the stored bytes as they stream by, and
// remembers the first error of the store's reader so that it is never
// mistaken for bad input when it surfaces through a decoder.
type rawReader struct {
	r     io.Reader
	total *atomic.Int64
	n     int64
	crc   uint32
	err   error
}

func (r *rawReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.crc = crc32.Update(r.crc, castagnoli, p[:n])
		r.n += int64(n)
		r.total.Add(int64(n))
	}
	if err != nil && !errors.Is(err, io.EOF) && r.err == nil {
		r.err = err
	}
	return n, err
}

// badInput returns an error wrapping ErrBadInput; classify adds the file.
func badInput(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadInput}, args...)...)
}
