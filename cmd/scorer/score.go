package main

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/internal/runlog"
	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/writers/table"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
)

// opened is what every scoring command opens before it starts: the two
// stores and the model bundle.
type opened struct {
	input, output store.Bucket
	bundle        *bundle.Bundle
}

func open(ctx context.Context, cfg Config) (*opened, error) {
	var o opened
	var err error
	if o.input, err = store.Open(ctx, cfg.Input); err != nil {
		return nil, usageError{fmt.Errorf("input: %w", err)}
	}
	if o.output, err = store.Open(ctx, cfg.Output); err != nil {
		return nil, usageError{fmt.Errorf("output: %w", err)}
	}
	if o.bundle, err = loadBundle(ctx, cfg.Model); err != nil {
		return nil, err
	}
	return &o, nil
}

// useGCSConfig makes gs:// URIs open with the configured options, counting
// and logging every retry. It is called once per command, when the
// configuration is parsed, before anything opens a store.
func useGCSConfig(cfg Config, env *environment) {
	store.Register("gs", store.GCSOpener(cfg.GCS.options(func(op string, err error) {
		env.retries.Add(1)
		env.log.Debug("retrying a GCS call", "op", op, "err", err)
	})))
}

// loadBundle loads a model bundle from its URI. A bundle that cannot be
// read or does not validate is a configuration error.
func loadBundle(ctx context.Context, uri string) (*bundle.Bundle, error) {
	b, err := store.Open(ctx, uri)
	if err != nil {
		return nil, usageError{fmt.Errorf("model: %w", err)}
	}
	bu, err := bundle.Load(ctx, b, "")
	if err != nil {
		return nil, fmt.Errorf("%w: load model bundle %s: %w", jobs.ErrConfig, uri, err)
	}
	return bu, nil
}

func csvOptions(c CSVConfig) readers.CSVOptions {
	var delim rune
	if d := []rune(unescapeDelim(c.Delimiter)); len(d) == 1 {
		delim = d[0]
	}
	return readers.CSVOptions{Delimiter: delim, Header: c.Header, ColumnNames: c.Columns}
}

// scoreJob fills the parts of a ScoreJob that come from the configuration.
func scoreJob(cfg Config, o *opened, env *environment) jobs.ScoreJob {
	limit, _ := jobs.ParseBadRowLimit(cfg.MaxBadRows) // validated with the config
	return jobs.ScoreJob{
		Input: o.input, Output: o.output, Bundle: o.bundle,
		Workers: cfg.Workers, BatchSize: cfg.BatchSize, ReadConcurrency: cfg.ReadConcurrency,
		CSV: csvOptions(cfg.CSV), BadRows: limit,
		RowGroupRows: int64(cfg.Parquet.RowGroupRows), PartRows: int64(cfg.Parquet.PartRows),
		LeaseTTL: cfg.LeaseTTL, Progress: newProgress(cfg, env), Log: env.log,
	}
}

func runBackfill(ctx context.Context, env *environment, args []string) error {
	f := newFlags("backfill", "--month YYYY-MM [flags]", `
Score one month of ad dumps (<input>/<backfill.dir>/YYYY-MM/) and replace the
month's partition of the backfill table (<output>/<backfill.table>/month=YYYY-MM/)
as a whole. The previous partition stays as it was unless the run succeeds.`, env.stderr)
	month := f.fs.String("month", "", "month to score, YYYY-MM (required)")
	shardFlag := f.fs.String("shard", "", "score shard i of N (\"i/N\", 0-based) of the month; default from\n$JOB_COMPLETION_INDEX and $SCORER_SHARD_COUNT (Kubernetes Indexed Job)\nor $CLOUD_RUN_TASK_INDEX and $CLOUD_RUN_TASK_COUNT (Cloud Run Jobs)")
	plan := f.fs.String("shard-plan", "", "name of the sharded backfill this shard belongs to (default $SCORER_SHARD_PLAN),\ne.g. the Kubernetes Job's name: a shard retried after the month was published then does nothing")
	abandon := f.fs.Bool("abandon-shards", false, "delete the month's sharded backfill in progress (plan, shard records, staged parts) and exit")
	f.storeFlags().runFlags().logFlags()
	cfg, err := f.parse(args, env)
	if err != nil {
		return err
	}
	if *month == "" {
		return usageError{fmt.Errorf("--month is required")}
	}
	if _, _, err := jobs.ParseMonth(*month); err != nil {
		return usageError{err}
	}
	shard, err := shardFromEnv(*shardFlag, env.getenv)
	if err != nil {
		return usageError{err}
	}
	shardPlan := *plan
	if shardPlan == "" {
		shardPlan, _ = env.getenv("SCORER_SHARD_PLAN")
	}
	if shardPlan != "" {
		if err := jobs.ValidShardPlan(shardPlan); err != nil {
			return usageError{err}
		}
	}
	if *abandon {
		o, err := open(ctx, cfg)
		if err != nil {
			return err
		}
		if err := jobs.AbandonShards(ctx, backfillJob(cfg, o, env, *month, shard)); err != nil {
			return fmt.Errorf("abandon shards of %s: %w", *month, err)
		}
		fmt.Fprintf(env.stdout, "sharded backfill of %s abandoned (if there was one)\n", *month)
		return nil
	}
	rec := &runlog.Record{Job: jobs.BackfillJob(*month), Kind: kindBackfill, Trigger: runlog.Manual}
	if shard != nil {
		rec.Shard = fmt.Sprintf("%d/%d", shard.Index, shard.Count)
	}
	sum, err := recordedScore(ctx, env, cfg, rec, func(o *opened) jobs.ScoreJob {
		j := backfillJob(cfg, o, env, *month, shard)
		j.ShardPlan = shardPlan
		return j
	})
	if err != nil {
		return fmt.Errorf("backfill %s: %w", *month, err)
	}
	printSummary(env.stdout, cfg, sum, env.retries.Load())
	return nil
}

// backfillJob is the job that backfills a month.
func backfillJob(cfg Config, o *opened, env *environment, month string, shard *jobs.Shard) jobs.ScoreJob {
	j := scoreJob(cfg, o, env)
	j.Job, j.Dir = jobs.BackfillJob(month), path.Join(cfg.Backfill.Dir, month)
	j.Table, j.Partition, j.Mode = cfg.Backfill.Table, "month="+month, table.Replace
	j.IDColumns, j.RequireRows, j.Shard = cfg.Backfill.IDColumns, true, shard
	return j
}

// queueJob is the job that scores the queue into a day's partition.
func queueJob(cfg Config, o *opened, env *environment, day string) jobs.ScoreJob {
	j := scoreJob(cfg, o, env)
	j.Job, j.Dir = jobs.JobQueue, cfg.Queue.Dir
	j.Table, j.Partition, j.Mode = cfg.Queue.Table, "date="+day, table.Append
	j.IDColumns, j.SkipConsumed = cfg.Queue.IDColumns, true
	return j
}

// shardFromEnv returns the shard of a sharded backfill from the flag, or
// from the variables Kubernetes Indexed Jobs and Cloud Run Jobs set; nil
// when the run is not sharded.
func shardFromEnv(flag string, getenv func(string) (string, bool)) (*jobs.Shard, error) {
	spec := flag
	if spec == "" {
		for _, pair := range [][2]string{{"JOB_COMPLETION_INDEX", "SCORER_SHARD_COUNT"}, {"CLOUD_RUN_TASK_INDEX", "CLOUD_RUN_TASK_COUNT"}} {
			i, okI := getenv(pair[0])
			n, okN := getenv(pair[1])
			if okI && okN {
				spec = i + "/" + n
				break
			}
			if okI && pair[0] == "JOB_COMPLETION_INDEX" {
				return nil, fmt.Errorf("JOB_COMPLETION_INDEX is set but SCORER_SHARD_COUNT is not: set it to the Job's completions")
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

func runQueue(ctx context.Context, env *environment, args []string) error {
	f := newFlags("run", "[flags]", `
Score every queued request file (<input>/<queue.dir>/) that no earlier run
scored, exactly once, appending the scores to today's partition of the queue
table (<output>/<queue.table>/date=YYYY-MM-DD/). With nothing queued it exits 0
and writes nothing.`, env.stderr)
	date := f.fs.String("date", "", "partition date, YYYY-MM-DD (default: today, UTC)")
	f.storeFlags().runFlags().logFlags()
	cfg, err := f.parse(args, env)
	if err != nil {
		return err
	}
	day := time.Now().UTC().Format(time.DateOnly)
	if *date != "" {
		if _, err := jobs.ParseDate(*date); err != nil {
			return usageError{err}
		}
		day = *date
	}
	rec := &runlog.Record{Job: jobs.JobQueue, Kind: kindQueue, Trigger: runlog.Manual}
	sum, err := recordedScore(ctx, env, cfg, rec, func(o *opened) jobs.ScoreJob {
		return queueJob(cfg, o, env, day)
	})
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	printSummary(env.stdout, cfg, sum, env.retries.Load())
	return nil
}

// printSummary prints the one-screen end-of-run summary.
func printSummary(w io.Writer, cfg Config, s *jobs.Summary, retries int64) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "  %s\t%v\n", k, v) }
	fmt.Fprintf(tw, "scorer %s: run %s\n", s.Job, s.RunID)
	if s.NothingToDo {
		row("result", "nothing to score (every queued file was already scored)")
		tw.Flush()
		return
	}
	row("model", s.ModelName+" "+s.ModelVersion)
	row("input files", fmt.Sprintf("%d (%s)", len(s.InputFiles), humanBytes(s.InputBytes)))
	row("rows in", s.RowsRead+s.RowsRejected)
	row("rows scored", s.RowsRead)
	row("rows rejected", s.RowsRejected)
	secs := s.Duration.Seconds()
	if secs > 0 {
		row("throughput", fmt.Sprintf("%.0f rows/s (%s)", float64(s.RowsRead)/secs, s.Duration.Round(time.Millisecond)))
	}
	row("table", fmt.Sprintf("%s/%s/%s", strings.TrimSuffix(cfg.Output, "/"), s.Table, s.Partition))
	row("files written", len(s.OutputFiles))
	row("store retries", retries)
	if len(s.Recovered) > 0 {
		row("recovered", strings.Join(s.Recovered, ", "))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nQuery it with DuckDB:\n  SELECT * FROM read_parquet('%s/%s/*/*.parquet', hive_partitioning = true) LIMIT 10;\n",
		strings.TrimSuffix(cfg.Output, "/"), s.Table)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
