package store

import (
	"context"
	"io"
	"sync/atomic"
)

// OpCounts counts the operations made on a bucket, by kind: a snapshot of a
// CountedBucket. It is what a cost model needs, since object stores bill
// per operation (on GCS, see docs/operations.md): List, Write (insert) and
// Copy are Class A operations; Stat (metadata) and Read (get) are Class B;
// Delete is free.
//
// Calls are counted, not HTTP requests, whether they succeed or fail: a
// List call is one request per page of up to 1000 objects (Listed bounds
// the pages), a read of a large object may be several ranged requests, and
// retries are requests the count does not show (GCSOptions.OnRetry counts
// them). GCS does not bill most failed requests (4xx, 5xx), so a count of
// calls is an upper bound there, failures included.
type OpCounts struct {
	// List is the calls of List; Listed the objects they returned.
	List   int64 `json:"list"`
	Listed int64 `json:"listed"`
	// Stat is the calls of Stat.
	Stat int64 `json:"stat"`
	// Read is the calls of NewReader and NewRangeReader, opened or not;
	// ReadBytes the bytes read through the readers they returned.
	Read      int64 `json:"read"`
	ReadBytes int64 `json:"read_bytes"`
	// Write is the objects written: writers whose Close returned nil.
	// WriteAttempts is the calls of NewWriter, whatever became of them
	// (failed to start, aborted, failed at Close, or written).
	// WriteBytes is the bytes the writers accepted, the aborted and
	// failed ones included: bytes sent, or buffered to be sent.
	Write         int64 `json:"write"`
	WriteAttempts int64 `json:"write_attempts"`
	WriteBytes    int64 `json:"write_bytes"`
	// Copy and Delete are the calls of Copy and Delete.
	Copy   int64 `json:"copy"`
	Delete int64 `json:"delete"`
}

// Sub returns c - o, field by field: the operations made between two
// snapshots o and c of one CountedBucket.
func (c OpCounts) Sub(o OpCounts) OpCounts {
	return OpCounts{
		List: c.List - o.List, Listed: c.Listed - o.Listed, Stat: c.Stat - o.Stat,
		Read: c.Read - o.Read, ReadBytes: c.ReadBytes - o.ReadBytes,
		Write: c.Write - o.Write, WriteAttempts: c.WriteAttempts - o.WriteAttempts, WriteBytes: c.WriteBytes - o.WriteBytes,
		Copy: c.Copy - o.Copy, Delete: c.Delete - o.Delete,
	}
}

// CountedBucket is a Bucket that forwards every call to another and counts
// the operations (Counts). It is safe for concurrent use, as the bucket it
// wraps is; the counters are atomic, and the readers and writers it returns
// count as they are used, without allocating per call of Read or Write.
type CountedBucket struct {
	b Bucket
	n counters
}

// counters are the live counts, one atomic per field of OpCounts.
type counters struct {
	list, listed, stat, read, readBytes atomic.Int64
	write, writeAttempts, writeBytes    atomic.Int64
	copy, delete                        atomic.Int64
}

// Counted returns a bucket that forwards every call to b and counts them,
// from zero.
func Counted(b Bucket) *CountedBucket { return &CountedBucket{b: b} }

// Counts returns the counts so far. Each field is read atomically; calls
// in flight meanwhile may show in some fields and not yet in others.
func (c *CountedBucket) Counts() OpCounts {
	n := &c.n
	return OpCounts{
		List: n.list.Load(), Listed: n.listed.Load(), Stat: n.stat.Load(),
		Read: n.read.Load(), ReadBytes: n.readBytes.Load(),
		Write: n.write.Load(), WriteAttempts: n.writeAttempts.Load(), WriteBytes: n.writeBytes.Load(),
		Copy: n.copy.Load(), Delete: n.delete.Load(),
	}
}

// Unwrap returns the bucket counted.
func (c *CountedBucket) Unwrap() Bucket { return c.b }

// List counts a call and the objects returned.
func (c *CountedBucket) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	c.n.list.Add(1)
	objs, err := c.b.List(ctx, prefix)
	c.n.listed.Add(int64(len(objs)))
	return objs, err
}

// Stat counts a call.
func (c *CountedBucket) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	c.n.stat.Add(1)
	return c.b.Stat(ctx, key)
}

// NewReader counts a read, and the bytes read through the reader.
func (c *CountedBucket) NewReader(ctx context.Context, key string, generation int64) (io.ReadCloser, error) {
	c.n.read.Add(1)
	r, err := c.b.NewReader(ctx, key, generation)
	if err != nil {
		return nil, err
	}
	return &countedReader{r: r, n: &c.n.readBytes}, nil
}

// NewRangeReader counts a read, and the bytes read through the reader.
func (c *CountedBucket) NewRangeReader(ctx context.Context, key string, generation, offset, length int64) (io.ReadCloser, error) {
	c.n.read.Add(1)
	r, err := c.b.NewRangeReader(ctx, key, generation, offset, length)
	if err != nil {
		return nil, err
	}
	return &countedReader{r: r, n: &c.n.readBytes}, nil
}

// NewWriter counts an attempt; the writer counts the bytes it accepts and
// the object written when Close succeeds.
func (c *CountedBucket) NewWriter(ctx context.Context, key string, opts WriteOptions) (Writer, error) {
	c.n.writeAttempts.Add(1)
	w, err := c.b.NewWriter(ctx, key, opts)
	if err != nil {
		return nil, err
	}
	return &countedWriter{w: w, n: &c.n}, nil
}

// Copy counts a call.
func (c *CountedBucket) Copy(ctx context.Context, src, dst string, opts WriteOptions) error {
	c.n.copy.Add(1)
	return c.b.Copy(ctx, src, dst, opts)
}

// Delete counts a call.
func (c *CountedBucket) Delete(ctx context.Context, key string) error {
	c.n.delete.Add(1)
	return c.b.Delete(ctx, key)
}

// URI is the counted bucket's; it is no operation.
func (c *CountedBucket) URI(key string) string { return c.b.URI(key) }

// countedReader adds the bytes read to n.
type countedReader struct {
	r io.ReadCloser
	n *atomic.Int64
}

func (r *countedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.n.Add(int64(n))
	}
	return n, err
}

func (r *countedReader) Close() error { return r.r.Close() }

// countedWriter counts the bytes accepted and, at a successful Close, the
// object written.
type countedWriter struct {
	w       Writer
	n       *counters
	written bool // Close succeeded (a second Close counts nothing)
}

func (w *countedWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if n > 0 {
		w.n.writeBytes.Add(int64(n))
	}
	return n, err
}

func (w *countedWriter) Close() error {
	err := w.w.Close()
	if err == nil && !w.written {
		w.written = true
		w.n.write.Add(1)
	}
	return err
}

func (w *countedWriter) Abort()            { w.w.Abort() }
func (w *countedWriter) Attrs() ObjectInfo { return w.w.Attrs() }

var _ Bucket = (*CountedBucket)(nil)
