package table

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/writers"
)

// Failpoints: the names passed to Options.Failpoint, in the order a run
// reaches them. Points marked "each" fire once per object.
const (
	PointAfterPartStaged   = "after-part-staged"   // each staged part
	PointAfterStage        = "after-stage"         // all outputs staged, no commit record yet
	PointAfterCommitRecord = "after-commit-record" // the run is committed
	PointAfterPartCopied   = "after-part-copied"   // each part copied to its final name
	PointAfterManifest     = "after-manifest"      // each partition manifest written
	PointAfterStaleDeleted = "after-stale-deleted" // each old file of a REPLACE partition deleted
	PointAfterSuccess      = "after-success"       // each partition _SUCCESS written
	PointBeforeDone        = "before-done"         // every partition published, no done marker yet
	PointAfterDone         = "after-done"          // done marker written, staging not yet deleted
)

// Options configure a Publisher.
type Options struct {
	// RowGroupRows, PartRows and DictionaryMaxBytes: see writers.PartConfig.
	RowGroupRows       int64
	PartRows           int64
	DictionaryMaxBytes int64
	// Now is the clock for committed_at and done_at; default time.Now.
	Now func() time.Time
	// Guard, if set, is called before every change a roll forward makes to
	// the tables (each copy, manifest, delete, marker). An error stops the
	// roll forward there. A lease holder passes a synchronous renewal, so
	// that a process that stalled and lost its lease stops at its next step
	// instead of publishing over a newer run.
	Guard func(ctx context.Context) error
	// Failpoint, if set, is called at each Point*. A non-nil error stops
	// the operation there, as a crash would (nothing is cleaned up), and is
	// returned wrapped. Tests use it to simulate crashes; it may also exit
	// the process.
	Failpoint func(point string) error
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	return Options{
		RowGroupRows:       writers.DefaultRowGroupRows,
		PartRows:           writers.DefaultPartRows,
		DictionaryMaxBytes: writers.DefaultDictionaryMaxBytes,
		Now:                time.Now,
	}
}

// Validate checks the options.
func (o Options) Validate() error {
	if o.RowGroupRows < 0 || o.PartRows < 0 || o.DictionaryMaxBytes < 0 {
		return errors.New("writers options: sizes must not be negative")
	}
	return nil
}

// Publisher publishes runs' outputs into the tables of one bucket and keeps
// the run ledger there. It is safe for concurrent use, but the protocol
// assumes that at most one run commits or recovers at a time per bucket
// (see the package doc).
type Publisher struct {
	bucket store.Bucket
	opts   Options
}

// NewPublisher returns a Publisher over an output bucket.
func NewPublisher(b store.Bucket, opts Options) (*Publisher, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Publisher{bucket: b, opts: opts}, nil
}

func (p *Publisher) now() time.Time { return p.opts.Now().UTC() }

func (p *Publisher) hook(point string) error {
	if p.opts.Failpoint == nil {
		return nil
	}
	if err := p.opts.Failpoint(point); err != nil {
		return fmt.Errorf("failpoint %s: %w", point, err)
	}
	return nil
}

// NewRunID returns a fresh run id that sorts by time:
// "20200902T031500Z-1a2b3c4d".
func NewRunID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// step runs one change of a roll forward after the guard allows it.
func (p *Publisher) step(ctx context.Context, change func() error) error {
	if p.opts.Guard != nil {
		if err := p.opts.Guard(ctx); err != nil {
			return fmt.Errorf("roll forward stopped: %w", err)
		}
	}
	return change()
}
