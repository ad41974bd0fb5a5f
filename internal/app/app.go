package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/registry"
	"github.com/adtech/scorer/writers/table"
)

// Options are what an App gets from the process that hosts it.
type Options struct {
	// Log receives the application's logs; nil discards them.
	Log *slog.Logger
	// Version is the scorer version, recorded in run records and metrics.
	Version string
	// Progress makes the progress reporter of one run; nil for none.
	Progress func() jobs.Progress
	// Now is the clock (default time.Now): the default partition date of a
	// queue run.
	Now func() time.Time
}

// App is the application for one validated configuration. Its methods are
// safe for concurrent use.
type App struct {
	cfg      Config
	log      *slog.Logger
	version  string
	progress func() jobs.Progress
	now      func() time.Time
	retries  atomic.Int64 // store calls retried
	healed   atomic.Bool  // the output store was healed (healOnOpen)
	// runs is held shared by each scoring run and exclusively by heal, so
	// that the daemon's heal never holds a job's lease when one of its
	// runs starts.
	runs sync.RWMutex
}

// New returns the application for a validated configuration. It makes
// gs:// URIs open with the configuration's options, counting and logging
// every retry; that registration is process-wide (the latest App's wins).
func New(cfg Config, opts Options) *App {
	a := &App{cfg: cfg, log: opts.Log, version: opts.Version, progress: opts.Progress, now: opts.Now}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.version == "" {
		a.version = "dev"
	}
	store.Register("gs", store.GCSOpener(cfg.GCS.Options(func(op string, err error) {
		a.retries.Add(1)
		a.log.Debug("retrying a GCS call", "op", op, "err", err)
	})))
	return a
}

// Retries is the number of store calls retried so far.
func (a *App) Retries() int64 { return a.retries.Load() }

// Opened is what every scoring run opens before it starts: the two stores
// and the model bundles.
type Opened struct {
	Input, Output store.Bucket
	Bundle        *bundle.Bundle   // the champion
	Challengers   []*bundle.Bundle // scored beside it
}

// Open opens the stores and loads the model bundle. It reads only (dry
// runs and validation use it as it is); a run heals the output store first
// (openOutput).
func (a *App) Open(ctx context.Context) (*Opened, error) { return a.open(ctx, nil) }

// open is Open with the output store given (a run's, opened already), or
// opened here when out is nil.
func (a *App) open(ctx context.Context, out store.Bucket) (*Opened, error) {
	o := Opened{Output: out}
	var err error
	if o.Input, err = store.Open(ctx, a.cfg.Input); err != nil {
		return nil, UsageError{fmt.Errorf("input: %w", err)}
	}
	if o.Output == nil {
		if o.Output, err = store.Open(ctx, a.cfg.Output); err != nil {
			return nil, UsageError{fmt.Errorf("output: %w", err)}
		}
	}
	if o.Bundle, err = a.LoadModel(ctx, a.cfg.Model); err != nil {
		return nil, err
	}
	for _, uri := range a.cfg.Challengers {
		bu, err := a.LoadModel(ctx, uri)
		if err != nil {
			return nil, fmt.Errorf("challenger: %w", err)
		}
		// A challenger promoted since the configuration was written is the
		// champion now (models:/x@current): scoring it twice is pointless,
		// and failing every scheduled run over it would be worse.
		same := func(b *bundle.Bundle) bool { return b.Name == bu.Name && b.Version == bu.Version }
		if same(o.Bundle) || slices.ContainsFunc(o.Challengers, same) {
			a.log.Warn("challenger skipped: it is the champion or another challenger", "challenger", uri, "name", bu.Name, "version", bu.Version)
			continue
		}
		o.Challengers = append(o.Challengers, bu)
	}
	return &o, nil
}

// LoadModel loads a model bundle by its URI or by a registry reference
// (models:/<name>@current, read now: every run reads the alias afresh).
func (a *App) LoadModel(ctx context.Context, uri string) (*bundle.Bundle, error) {
	ref, ok, err := registry.ParseRef(uri)
	if err != nil {
		return nil, UsageError{fmt.Errorf("model: %w", err)}
	}
	var bu *bundle.Bundle
	if !ok {
		if bu, err = LoadBundle(ctx, uri); err != nil {
			return nil, err
		}
	} else if bu, err = a.loadRegistered(ctx, uri, ref); err != nil {
		return nil, err
	}
	if len(bu.Reference) == 0 {
		a.log.Info("no reference rows in the model bundle: the skew guard has nothing to check", "model", uri, "name", bu.Name, "version", bu.Version)
	}
	return bu, nil
}

// loadRegistered loads a bundle from the registry, checked as LoadBundle
// checks one.
func (a *App) loadRegistered(ctx context.Context, uri string, ref registry.Ref) (*bundle.Bundle, error) {
	reg, err := a.openRegistry(ctx)
	if err != nil {
		return nil, err
	}
	bu, err := reg.Load(ctx, ref)
	if errors.Is(err, registry.ErrNotFound) || errors.Is(err, bundle.ErrInvalid) {
		return nil, fmt.Errorf("%w: %w", jobs.ErrConfig, err)
	}
	if err != nil {
		return nil, err
	}
	if err := checkLoaded(uri, bu); err != nil {
		return nil, err
	}
	a.log.Info("model from the registry", "ref", ref.String(), "name", bu.Name, "version", bu.Version)
	return bu, nil
}

// checkLoaded checks what Load does not: that an imported graph compiles
// (checkGraph), and the skew guard (scoring.CheckReference): the bundle's
// reference rows, recomputed from their raw values by the feature pipeline
// and the compiled model, must give the features and scores recorded when
// the bundle was made. A difference is a configuration error (exit code
// 2) naming the bundle, the row and the feature or the score, found before
// a run takes its lease or reads any input.
func checkLoaded(uri string, bu *bundle.Bundle) error {
	if err := checkGraph(uri, bu); err != nil {
		return err
	}
	if _, err := scoring.CheckReference(bu); err != nil {
		return fmt.Errorf("%w: load model bundle %s: %w", jobs.ErrConfig, uri, err)
	}
	return nil
}

// checkGraph compiles an imported model's graph once, so that a graph
// scorer cannot run (a model.yaml edited by hand, a bundle of a newer
// scorer) is a configuration error when the bundle is loaded, before a run
// takes its lease or reads anything. The built-in architectures need no
// such check: Load validated every tensor they compile from.
func checkGraph(uri string, bu *bundle.Bundle) error {
	if bu.Arch.Kind != bundle.GraphKind {
		return nil
	}
	m, err := scoring.NewModel(bu, 1)
	if err != nil {
		return fmt.Errorf("%w: load model bundle %s: %w", jobs.ErrConfig, uri, err)
	}
	return m.Close()
}

// openRegistry opens the model registry of the configuration.
func (a *App) openRegistry(ctx context.Context) (*registry.Registry, error) {
	if a.cfg.Registry == "" {
		return nil, UsageError{errors.New("registry: not set (the URI of the model registry)")}
	}
	b, err := store.Open(ctx, a.cfg.Registry)
	if err != nil {
		return nil, UsageError{fmt.Errorf("registry: %w", err)}
	}
	return registry.New(b), nil
}

// openOutput opens the output store for a command that uses it (a run,
// history) and heals it the first time (healOnOpen).
func (a *App) openOutput(ctx context.Context) (store.Bucket, error) {
	out, err := a.openCountedOutput(ctx)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// openCountedOutput is openOutput counting the store's operations from the
// start, the heal's included: a run records them.
func (a *App) openCountedOutput(ctx context.Context) (*store.CountedBucket, error) {
	b, err := store.Open(ctx, a.cfg.Output)
	if err != nil {
		return nil, UsageError{fmt.Errorf("output: %w", err)}
	}
	out := store.Counted(b)
	a.healOnOpen(ctx, out)
	return out, nil
}

// LoadBundle loads a model bundle from its URI and checks it (checkLoaded:
// its graph compiles, its reference rows reproduce). A bundle that cannot
// be read, does not validate or fails the skew guard is a configuration
// error.
func LoadBundle(ctx context.Context, uri string) (*bundle.Bundle, error) {
	b, err := store.Open(ctx, uri)
	if err != nil {
		return nil, UsageError{fmt.Errorf("model: %w", err)}
	}
	bu, err := bundle.Load(ctx, b, "")
	if err != nil {
		return nil, fmt.Errorf("%w: load model bundle %s: %w", jobs.ErrConfig, uri, err)
	}
	if err := checkLoaded(uri, bu); err != nil {
		return nil, err
	}
	return bu, nil
}

// scoreJob fills the parts of a ScoreJob that come from the configuration.
func (a *App) scoreJob(o *Opened) jobs.ScoreJob {
	cfg := a.cfg
	limit, _ := jobs.ParseBadRowLimit(cfg.MaxBadRows) // validated with the config
	j := jobs.ScoreJob{
		Input: o.Input, Output: o.Output, Bundle: o.Bundle, Challengers: o.Challengers,
		Workers: cfg.Workers, BatchSize: cfg.BatchSize, ReadConcurrency: cfg.ReadConcurrency,
		CSV: cfg.CSV.CSVOptions(), BadRows: limit, RawMaxBytes: cfg.Rejects.RawMaxBytes, MaxAbsLogit: cfg.MaxAbsLogit,
		Drift: cfg.Drift, Images: cfg.Images.Options(),
		RowGroupRows: int64(cfg.Parquet.RowGroupRows), PartRows: int64(cfg.Parquet.PartRows),
		LeaseTTL: cfg.LeaseTTL, Log: a.log,
	}
	if a.progress != nil {
		j.Progress = a.progress()
	}
	return j
}

// backfillJob is the job that backfills a month.
func (a *App) backfillJob(o *Opened, month string, shard *jobs.Shard) jobs.ScoreJob {
	j := a.scoreJob(o)
	j.Job, j.Dir = jobs.BackfillJob(month), path.Join(a.cfg.Backfill.Dir, month)
	j.Table, j.Partition, j.Mode = a.cfg.Backfill.Table, "month="+month, table.Replace
	j.IDColumns, j.LabelColumns, j.RequireRows, j.Shard = a.cfg.Backfill.IDColumns, a.cfg.Backfill.LabelColumns, true, shard
	return j
}

// queueJob is the job that scores the queue into a day's partition.
func (a *App) queueJob(o *Opened, day string) jobs.ScoreJob {
	j := a.scoreJob(o)
	j.Job, j.Dir = jobs.JobQueue, a.cfg.Queue.Dir
	j.Table, j.Partition, j.Mode = a.cfg.Queue.Table, "date="+day, table.Append
	j.IDColumns, j.LabelColumns, j.SkipConsumed = a.cfg.Queue.IDColumns, a.cfg.Queue.LabelColumns, true
	j.Duplicates, _ = jobs.ParseDuplicates(a.cfg.Queue.Duplicates) // validated with the config
	if d, err := time.Parse(time.DateOnly, day); err == nil {
		for i := range a.cfg.Queue.DuplicatesWindowDays {
			j.SeenPartitions = append(j.SeenPartitions, "date="+d.AddDate(0, 0, -i).Format(time.DateOnly))
		}
	}
	return j
}

// ShardFromEnv returns the shard of a sharded backfill from spec ("i/N"),
// or when spec is empty from the variables Kubernetes Indexed Jobs
// (JOB_COMPLETION_INDEX, SCORER_SHARD_COUNT) and Cloud Run Jobs
// (CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_COUNT) set; nil when the run is not
// sharded.
func ShardFromEnv(spec string, getenv func(string) (string, bool)) (*jobs.Shard, error) {
	if spec == "" {
		for _, pair := range [][2]string{{"JOB_COMPLETION_INDEX", "SCORER_SHARD_COUNT"}, {"CLOUD_RUN_TASK_INDEX", "CLOUD_RUN_TASK_COUNT"}} {
			i, okI := getenv(pair[0])
			n, okN := getenv(pair[1])
			if okI && okN {
				spec = i + "/" + n
				break
			}
			if okI && pair[0] == "JOB_COMPLETION_INDEX" {
				return nil, UsageError{fmt.Errorf("JOB_COMPLETION_INDEX is set but SCORER_SHARD_COUNT is not: set it to the Job's completions")}
			}
		}
	}
	if spec == "" {
		return nil, nil
	}
	sh, err := jobs.ParseShard(spec)
	if err != nil {
		return nil, err
	}
	if sh.Count == 1 {
		return nil, nil
	}
	return &sh, nil
}
