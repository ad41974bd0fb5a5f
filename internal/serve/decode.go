package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
)

// ErrBody marks a request body that is not a JSON array or JSON Lines of
// objects, or is over a limit: the whole request is refused (400 or 413).
var ErrBody = errors.New("bad request body")

// decodeItems splits a body into its items: a JSON array of objects, or
// JSON Lines (one object per line, blank lines skipped). Each item is
// compacted to one line, as the queue files hold it. At most max items.
func decodeItems(body []byte, max int) ([][]byte, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: empty body: want a JSON array of requests or JSON Lines", ErrBody)
	}
	var raws []json.RawMessage
	if trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, fmt.Errorf("%w: not a JSON array: %w", ErrBody, err)
		}
	} else {
		sc := bufio.NewScanner(bytes.NewReader(trimmed))
		sc.Buffer(make([]byte, 0, 64<<10), len(trimmed)+1)
		for line := 1; sc.Scan(); line++ {
			text := bytes.TrimSpace(sc.Bytes())
			if len(text) == 0 {
				continue
			}
			if !json.Valid(text) {
				return nil, fmt.Errorf("%w: line %d is not JSON", ErrBody, line)
			}
			raws = append(raws, json.RawMessage(bytes.Clone(text)))
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBody, err)
		}
	}
	if len(raws) == 0 {
		return nil, fmt.Errorf("%w: no requests", ErrBody)
	}
	if len(raws) > max {
		return nil, fmt.Errorf("%w: %d requests, at most %d a call", ErrBody, len(raws), max)
	}
	items := make([][]byte, len(raws))
	for i, r := range raws {
		var buf bytes.Buffer
		if err := json.Compact(&buf, r); err != nil {
			return nil, fmt.Errorf("%w: item %d: %w", ErrBody, i, err)
		}
		items[i] = buf.Bytes()
	}
	return items, nil
}

// itemError is why one item of a request was refused.
type itemError struct {
	Column string `json:"column,omitempty"`
	Value  string `json:"value,omitempty"`
	Reason string `json:"reason"`
}

// readItems reads the items as `scorer run` will read them from a queue
// file: through the readers' JSON Lines decoder, with the queue's schema,
// id column and id ranges. It returns the records of the good items (in
// order; the caller releases them) and, by item index, why each bad one
// was refused. Unknown members of an object are refused too: a typo in a
// column name would otherwise read as a missing value.
func (s *Server) readItems(ctx context.Context, items [][]byte) ([]arrow.RecordBatch, map[int]itemError, error) {
	bad := map[int]itemError{}
	var data bytes.Buffer
	for _, it := range items {
		data.Write(it)
		data.WriteByte('\n')
	}
	const key = "request.jsonl"
	b := bytesBucket{key: key, data: data.Bytes()}
	src, err := readers.Open(ctx, b, []store.ObjectInfo{{Key: key, Size: int64(data.Len()), Generation: 1}}, readers.Options{
		Schema: s.schema, IDColumns: []string{s.idColumn}, Ranges: s.ranges, Concurrency: 1, BatchSize: len(items),
		UnknownMembers: "not a column of the model's feature spec (nor " + s.idColumn + ")",
		OnBadRow: func(e readers.RowError) error {
			bad[int(e.Row)-1] = itemError{Column: e.Column, Value: e.Value, Reason: e.Reason}
			return nil
		},
	})
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = src.Close() }()
	var recs []arrow.RecordBatch
	for {
		rec, err := src.Read(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			for _, r := range recs {
				r.Release()
			}
			return nil, nil, err
		}
		recs = append(recs, rec)
	}
	return recs, bad, nil
}

// bytesBucket is one object in memory, read-only: what readers.Open needs
// to read a request body as it reads a queue file.
type bytesBucket struct {
	key  string
	data []byte
}

var errReadOnly = errors.New("a request body is read-only")

func (b bytesBucket) info() store.ObjectInfo {
	return store.ObjectInfo{Key: b.key, Size: int64(len(b.data)), Generation: 1, Updated: time.Unix(0, 0)}
}

func (b bytesBucket) List(_ context.Context, prefix string) ([]store.ObjectInfo, error) {
	if strings.HasPrefix(b.key, prefix) {
		return []store.ObjectInfo{b.info()}, nil
	}
	return nil, nil
}

func (b bytesBucket) Stat(_ context.Context, key string) (store.ObjectInfo, error) {
	if key != b.key {
		return store.ObjectInfo{}, fmt.Errorf("%s: %w", key, store.ErrNotExist)
	}
	return b.info(), nil
}

func (b bytesBucket) NewReader(ctx context.Context, key string, _ int64) (io.ReadCloser, error) {
	return b.NewRangeReader(ctx, key, 0, 0, -1)
}

func (b bytesBucket) NewRangeReader(_ context.Context, key string, _, offset, length int64) (io.ReadCloser, error) {
	if key != b.key {
		return nil, fmt.Errorf("%s: %w", key, store.ErrNotExist)
	}
	if offset < 0 {
		return nil, fmt.Errorf("%s: negative offset %d", key, offset)
	}
	data := b.data[min(offset, int64(len(b.data))):]
	if length >= 0 {
		data = data[:min(length, int64(len(data)))]
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func (bytesBucket) NewWriter(context.Context, string, store.WriteOptions) (store.Writer, error) {
	return nil, errReadOnly
}

func (bytesBucket) Copy(context.Context, string, string, store.WriteOptions) error {
	return errReadOnly
}
func (bytesBucket) Delete(context.Context, string) error { return errReadOnly }
func (b bytesBucket) URI(key string) string              { return "request body" }
