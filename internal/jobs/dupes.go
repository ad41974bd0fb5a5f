package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/writers/table"
)

// Duplicates is what a run does with a row whose ids were seen before: in
// an earlier row of the run, or published in one of the job's
// SeenPartitions.
type Duplicates string

// The duplicate policies. The zero value is DupKeepAll.
const (
	// DupKeepAll scores every row, duplicates included.
	DupKeepAll Duplicates = "keep_all"
	// DupReject scores the first row of an id and sends the others to the
	// rejects table with ReasonDuplicate.
	DupReject Duplicates = "reject"
	// DupKeepFirst scores the first row of an id and drops the others,
	// counting them.
	DupKeepFirst Duplicates = "keep_first"
)

// ParseDuplicates reads a duplicates policy; "" is DupKeepAll.
func ParseDuplicates(s string) (Duplicates, error) {
	switch d := Duplicates(s); d {
	case "", DupKeepAll:
		return DupKeepAll, nil
	case DupReject, DupKeepFirst:
		return d, nil
	}
	return "", fmt.Errorf("%q: want reject, keep_first or keep_all", s)
}

// ReasonDuplicate is the rejects table's reason for a duplicate row.
const ReasonDuplicate = "duplicate request id"

// dedupe is the set of ids a run has seen: those published in the window
// before the run, then those of the run's own admitted rows. The reader
// serialises calls to admit.
type dedupe struct {
	seen map[string]struct{}
	n    atomic.Int64 // duplicates found
}

func idKey(ids []string) string { return strings.Join(ids, "\x00") }

func (d *dedupe) admit(ids []string) string {
	k := idKey(ids)
	if _, ok := d.seen[k]; ok {
		return ReasonDuplicate
	}
	d.seen[k] = struct{}{}
	return ""
}

// loadSeen reads the ids published in the job's SeenPartitions: exactly the
// files their manifests list. Only committed runs are in a manifest (and
// recovery has rolled every committed run forward before the inputs are
// picked), so a run that died before its commit marks nothing as seen.
func (j *ScoreJob) loadSeen(ctx context.Context, pub *table.Publisher) (*dedupe, error) {
	d := &dedupe{seen: map[string]struct{}{}}
	var files []store.ObjectInfo
	for _, p := range j.SeenPartitions {
		m, err := pub.Manifest(ctx, j.Table, p)
		if errors.Is(err, store.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read the ids already scored: %w", err)
		}
		for _, f := range m.Files {
			info, err := j.Output.Stat(ctx, table.PartitionPrefix(j.Table, p)+f.Name)
			if err != nil {
				return nil, fmt.Errorf("read the ids already scored: %w", err)
			}
			files = append(files, info)
		}
	}
	if len(files) == 0 {
		return d, nil
	}
	fields := make([]arrow.Field, len(j.IDColumns))
	for i, id := range j.IDColumns {
		fields[i] = arrow.Field{Name: id, Type: arrow.BinaryTypes.String}
	}
	src, err := readers.Open(ctx, j.Output, files, readers.Options{Schema: arrow.NewSchema(fields, nil), BatchSize: 1 << 16, Concurrency: j.ReadConcurrency})
	if err != nil {
		return nil, fmt.Errorf("read the ids already scored: %w", err)
	}
	defer func() { _ = src.Close() }()
	ids := make([]string, len(fields))
	for {
		rec, err := src.Read(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read the ids already scored: %w", err)
		}
		cols := make([]*array.String, len(fields))
		for i := range cols {
			cols[i], _ = rec.Column(i).(*array.String)
		}
		for r := range int(rec.NumRows()) {
			for i, c := range cols {
				ids[i] = c.Value(r)
			}
			d.seen[idKey(ids)] = struct{}{}
		}
		rec.Release()
	}
	j.Log.Debug("ids already scored", "partitions", j.SeenPartitions, "ids", len(d.seen))
	return d, nil
}
