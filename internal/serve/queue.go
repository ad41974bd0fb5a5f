package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/adtech/scorer/readers/store"
)

// queue appends accepted requests to queue files durably, in batches: a
// batch is written as one JSON Lines object of the input store (a file
// fsynced and renamed into place locally, a completed upload on GCS)
// before any of its requests is acknowledged. Every request id is queued
// once: ids already in a queue file, or in a batch being written, are
// duplicates.
type queue struct {
	b        store.Bucket
	dir      string
	instance string
	maxItems int
	maxWait  time.Duration
	now      func() time.Time

	mu      sync.Mutex
	ids     map[string]bool   // in a written queue file
	pending map[string]*batch // in the batch being filled or written
	cur     *batch            // being filled; nil when none
	seq     int
	closed  bool
	wake    chan struct{} // a batch is full
	wg      sync.WaitGroup
	stop    chan struct{}
}

// batch is requests written together.
type batch struct {
	lines  [][]byte
	ids    []string
	opened time.Time
	done   chan struct{} // closed once written (or failed: err)
	err    error
}

// errClosed refuses requests once the server is shutting down.
var errClosed = errors.New("the server is shutting down")

func newQueue(b store.Bucket, dir, instance string, maxItems int, maxWait time.Duration, now func() time.Time) *queue {
	q := &queue{
		b: b, dir: dir, instance: instance, maxItems: maxItems, maxWait: maxWait, now: now,
		ids: map[string]bool{}, pending: map[string]*batch{}, wake: make(chan struct{}, 1), stop: make(chan struct{}),
	}
	return q
}

// load reads the ids of the requests already in the queue folder (files
// that a queue run has not consumed and gc has not archived), so that a
// retried POST after a restart is still a duplicate.
func (q *queue) load(ctx context.Context, idColumn string) (int, error) {
	objs, err := q.b.List(ctx, q.dir+"/")
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", q.b.URI(q.dir+"/"), err)
	}
	for _, o := range objs {
		if !strings.HasSuffix(o.Key, ".jsonl") {
			continue
		}
		data, err := store.ReadAll(ctx, q.b, o.Key)
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", q.b.URI(o.Key), err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		for sc.Scan() {
			var row map[string]json.RawMessage
			if json.Unmarshal(sc.Bytes(), &row) != nil {
				continue // the queue run will reject it; it has no id to match
			}
			var id string
			if json.Unmarshal(row[idColumn], &id) == nil && id != "" {
				q.ids[id] = true
			} else if n := row[idColumn]; len(n) > 0 && n[0] != '"' && string(n) != "null" {
				q.ids[string(n)] = true // a number: the readers keep its text
			}
		}
	}
	return len(q.ids), nil
}

// start runs the writer until close.
func (q *queue) start() {
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		timer := time.NewTimer(q.maxWait)
		defer timer.Stop()
		for {
			select {
			case <-q.stop:
				q.flush()
				return
			case <-q.wake:
			case <-timer.C:
			}
			q.flush()
			timer.Reset(q.maxWait)
		}
	}()
}

// status of one id appended.
const (
	statusQueued    = "queued"
	statusDuplicate = "duplicate"
)

// add queues the lines with their ids and waits until they are written:
// the status of each (queued, or duplicate: already in a queue file or
// in this call), or an error if their batch could not be written (nothing
// of it is acknowledged) or the context ended first.
func (q *queue) add(ctx context.Context, lines [][]byte, ids []string) ([]string, error) {
	status := make([]string, len(ids))
	var waits []*batch
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil, errClosed
	}
	seen := map[string]bool{}
	full := false
	for i, id := range ids {
		switch {
		case q.ids[id] || seen[id]:
			status[i] = statusDuplicate
			continue
		case q.pending[id] != nil:
			// Being written for another call: a duplicate once it is.
			status[i] = statusDuplicate
			waits = append(waits, q.pending[id])
			continue
		}
		seen[id] = true
		if q.cur == nil {
			q.cur = &batch{opened: q.now(), done: make(chan struct{})}
		}
		q.cur.lines = append(q.cur.lines, lines[i])
		q.cur.ids = append(q.cur.ids, id)
		q.pending[id] = q.cur
		status[i] = statusQueued
		if !slices.Contains(waits, q.cur) {
			waits = append(waits, q.cur)
		}
		full = full || len(q.cur.lines) >= q.maxItems
	}
	q.mu.Unlock()
	if full {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	for _, b := range waits {
		select {
		case <-b.done:
			if b.err != nil {
				return nil, b.err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return status, nil
}

// flush writes the batch being filled, if any.
func (q *queue) flush() {
	q.mu.Lock()
	b := q.cur
	q.cur = nil
	if b != nil {
		q.seq++
	}
	seq := q.seq
	q.mu.Unlock()
	if b == nil {
		return
	}
	var data bytes.Buffer
	for _, l := range b.lines {
		data.Write(l)
		data.WriteByte('\n')
	}
	key := path.Join(q.dir, fmt.Sprintf("serve-%s-%s-%06d.jsonl", q.now().UTC().Format("20060102T150405.000000Z"), q.instance, seq))
	// Not the request's context: a client that went away does not undo a
	// batch others wait for. The store's own timeouts and retries bound it.
	err := store.WriteAll(context.Background(), q.b, key, data.Bytes(), store.WriteOptions{IfAbsent: true, ContentType: "application/x-ndjson"})
	q.mu.Lock()
	for _, id := range b.ids {
		delete(q.pending, id)
		if err == nil {
			q.ids[id] = true
		}
	}
	q.mu.Unlock()
	if err != nil {
		b.err = fmt.Errorf("write %s: %w", q.b.URI(key), err)
	}
	close(b.done)
}

// close writes what is being filled and stops the writer: every request
// added before is written (or failed) when it returns; later ones are
// refused.
func (q *queue) close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	q.mu.Unlock()
	close(q.stop)
	q.wg.Wait()
}
