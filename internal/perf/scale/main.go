// Command scale runs the scale simulations behind docs/scale.md and prints
// their figures as tables, with the machine and the command:
//
//   - sharded backfills: a month of many tiny CSV files (the demo month's
//     rows, a few per file) backfilled in N shards, one after another in
//     this process, the output store on an in-process GCS emulator
//     (fake-gcs-server) and the input a local folder. Per configuration:
//     the plan's bytes, each shard's output-store operations, the last
//     shard's commit (operations and time), the totals in GCS operation
//     classes, and the wall time;
//   - the queue after a long history: the state that C earlier queue runs
//     leave (10 queued files each, all still in the queue folder), with the
//     commit log checkpointed or not, then one queue run of one new file:
//     its operations on both stores and its time. Histories up to
//     -emulator-commits commits run on the emulator too; every length runs
//     on a local output folder, since the emulator's memory backend is
//     quadratic in a bucket's objects (10,000 commits are 20,000 objects).
//
// Run from the repository root (it reads testdata/):
//
//	make scale
//	go run ./internal/perf/scale -files 2000,5000,10000 -shards 64,256 -commits 200,2000,10000
//
// Absolute times depend on the machine, and the emulator is not GCS: the
// operation counts are the claim, and times only within one run.
package main

import (
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"

	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/writers/table"
)

const (
	month     = "2020-09"
	partition = "month=" + month
	bucket    = "analytics"
)

func main() {
	files := flag.String("files", "2000,5000,10000", "sharded backfills: input files in the month (comma-separated)")
	shards := flag.String("shards", "1,64,256", "sharded backfills: shard counts (comma-separated; 1: an unsharded backfill)")
	rows := flag.Int("rows", 4, "sharded backfills: rows per input file (the demo month has 40,000)")
	commits := flag.String("commits", "200,2000,10000", "queue histories: earlier queue runs (comma-separated)")
	emuMax := flag.Int("emulator-commits", 2000, "queue histories up to this length also run on the GCS emulator")
	repo := flag.String("repo", ".", "the repository root (for testdata/)")
	flag.Parse()
	if err := run(*repo, ints(*files), ints(*shards), ints(*commits), *rows, *emuMax); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

func ints(s string) []int {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "scale: %q: want positive integers\n", s)
			os.Exit(2)
		}
		out = append(out, n)
	}
	return out
}

func run(repo string, files, shards, commits []int, rows, emuMax int) error {
	start := time.Now()
	ctx := context.Background()
	fmt.Printf("# scorer scale simulations (docs/scale.md)\n\n")
	cmd := "make scale (go run ./internal/perf/scale)"
	if len(os.Args) > 1 {
		cmd = "go run ./internal/perf/scale " + strings.Join(os.Args[1:], " ")
	}
	fmt.Printf("command: %s\n", cmd)
	fmt.Printf("cpu:     %s, %d logical CPUs, GOMAXPROCS %d, %s %s/%s\n", cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Printf("date:    %s\n\n", start.UTC().Format(time.RFC3339))

	bu, err := bundle.Load(ctx, store.NewFileBucket(filepath.Join(repo, "testdata", "models", "ctr-demo")), "")
	if err != nil {
		return fmt.Errorf("load the demo bundle (run from the repository root, or pass -repo): %w", err)
	}
	tmp, err := os.MkdirTemp("", "scorer-scale-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()

	if len(files) > 0 && len(shards) > 0 {
		if err := shardTables(ctx, repo, tmp, bu, files, shards, rows); err != nil {
			return err
		}
	}
	if len(commits) > 0 {
		if err := historyTable(ctx, repo, tmp, bu, commits, emuMax); err != nil {
			return err
		}
	}
	fmt.Printf("wall time: %s\n", time.Since(start).Round(time.Second))
	return nil
}

// cpuModel is the first CPU's model name, family and model from
// /proc/cpuinfo, or the architecture where there is none.
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH + " (model unknown)"
	}
	fields := map[string]string{}
	for line := range strings.SplitSeq(string(data), "\n") {
		if strings.TrimSpace(line) == "" && len(fields) > 0 {
			break // the first processor's block only
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	name := fields["model name"]
	if name == "" {
		return runtime.GOARCH + " (model unknown)"
	}
	if fields["cpu family"] != "" {
		name += fmt.Sprintf(" (family %s, model %s)", fields["cpu family"], fields["model"])
	}
	return name
}

// emulator is an in-process GCS emulator with one bucket, and a store
// over it (no prefix).
type emulator struct {
	srv    *fakestorage.Server
	ts     *httptest.Server
	client *storage.Client
	b      store.Bucket
}

func newEmulator(ctx context.Context) (*emulator, error) {
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true})
	if err != nil {
		return nil, err
	}
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: bucket})
	ts := httptest.NewServer(srv.HTTPHandler())
	client, err := storage.NewClient(ctx,
		option.WithEndpoint(ts.URL+"/storage/v1/"), option.WithHTTPClient(ts.Client()),
		option.WithoutAuthentication(), storage.WithJSONReads(), storage.WithDisabledClientMetrics())
	if err != nil {
		ts.Close()
		srv.Stop()
		return nil, err
	}
	b, err := store.NewGCSBucket(client, bucket, "", store.DefaultGCSOptions())
	if err != nil {
		_ = client.Close()
		ts.Close()
		srv.Stop()
		return nil, err
	}
	return &emulator{srv: srv, ts: ts, client: client, b: b}, nil
}

func (e *emulator) close() {
	_ = e.client.Close()
	e.ts.Close()
	e.srv.Stop()
}

// paged counts the requests List makes on GCS: one per page of up to 1,000
// objects, at least one per call.
type paged struct {
	store.Bucket
	pages atomic.Int64
}

func (p *paged) List(ctx context.Context, prefix string) ([]store.ObjectInfo, error) {
	objs, err := p.Bucket.List(ctx, prefix)
	p.pages.Add(int64(max(1, (len(objs)+999)/1000)))
	return objs, err
}

// ops is what a store saw: the counted calls and the list pages.
type ops struct {
	store.OpCounts
	Pages int64
}

func (o ops) sub(p ops) ops {
	return ops{OpCounts: o.Sub(p.OpCounts), Pages: o.Pages - p.Pages}
}

// classA and classB are GCS's billing classes (docs/operations.md): list
// pages, inserts and rewrites; metadata and media gets. Deletes are free.
func (o ops) classA() int64 { return o.Pages + o.Write + o.Copy }
func (o ops) classB() int64 { return o.Stat + o.Read }

func maxOps(a, b ops) ops {
	return ops{Pages: max(a.Pages, b.Pages), OpCounts: store.OpCounts{
		List: max(a.List, b.List), Listed: max(a.Listed, b.Listed), Stat: max(a.Stat, b.Stat),
		Read: max(a.Read, b.Read), ReadBytes: max(a.ReadBytes, b.ReadBytes),
		Write: max(a.Write, b.Write), WriteAttempts: max(a.WriteAttempts, b.WriteAttempts), WriteBytes: max(a.WriteBytes, b.WriteBytes),
		Copy: max(a.Copy, b.Copy), Delete: max(a.Delete, b.Delete),
	}}
}

// counting wraps a bucket to count its calls and list pages.
type counting struct {
	p *paged
	c *store.CountedBucket
}

func count(b store.Bucket) counting {
	p := &paged{Bucket: b}
	return counting{p: p, c: store.Counted(p)}
}

func (c counting) now() ops { return ops{OpCounts: c.c.Counts(), Pages: c.p.pages.Load()} }

// demoRows are the demo month's CSV header and data lines.
func demoRows(repo string) (string, []string, error) {
	paths, err := filepath.Glob(filepath.Join(repo, "testdata", "store", "dumps", month, "*.csv.gz"))
	if err != nil {
		return "", nil, err
	}
	if len(paths) == 0 {
		return "", nil, fmt.Errorf("no demo dumps under %s (run from the repository root, or pass -repo)", repo)
	}
	slices.Sort(paths)
	var header string
	var lines []string
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return "", nil, err
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			_ = f.Close()
			return "", nil, err
		}
		data, err := io.ReadAll(zr)
		_ = f.Close()
		if err != nil {
			return "", nil, err
		}
		all := strings.Split(strings.TrimSpace(string(data)), "\n")
		header, lines = all[0], append(lines, all[1:]...)
	}
	return header, lines, nil
}

// shardResult is one sharded backfill.
type shardResult struct {
	files, rows, shards int
	planBytes           int
	first, mid, last    ops           // shard 0; the most of each counter over shards 1..N-2; shard N-1
	midAt               int           // the shard whose Listed is the most (the last but one)
	midTook             time.Duration // the median time of shards 1..N-2
	total, input        ops           // every shard, on the output and the input store
	lastTook, wall      time.Duration
	parts               int
}

func shardTables(ctx context.Context, repo, tmp string, bu *bundle.Bundle, files, shards []int, rows int) error {
	header, lines, err := demoRows(repo)
	if err != nil {
		return err
	}
	var results []shardResult
	for _, nf := range files {
		if nf*rows > len(lines) {
			return fmt.Errorf("%d files of %d rows: the demo month has %d rows", nf, rows, len(lines))
		}
		in := filepath.Join(tmp, fmt.Sprintf("in-%d", nf))
		dir := filepath.Join(in, "dumps", month)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for f := range nf {
			data := header + "\n" + strings.Join(lines[f*rows:(f+1)*rows], "\n") + "\n"
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("part-%05d.csv", f)), []byte(data), 0o644); err != nil {
				return err
			}
		}
		for _, n := range shards {
			r, err := shardedBackfill(ctx, in, bu, nf, rows, n)
			if err != nil {
				return fmt.Errorf("%d files in %d shards: %w", nf, n, err)
			}
			results = append(results, r)
			fmt.Fprintf(os.Stderr, "scale: %d files in %d shards: %s\n", nf, n, r.wall.Round(time.Millisecond))
		}
	}

	fmt.Printf("## Sharded backfill: a month of tiny files (%d rows each), shards run one after another\n\n", rows)
	fmt.Printf("Output store: GCS emulator; input: local folder. Operations are calls (store.Counted); pages are list requests of up to 1,000 objects.\n\n")
	fmt.Printf("| files | shards | plan bytes | plan bytes/file | shard 0 (plans): list/listed/stat/read/write | shards 1..N-2, most of each: list/listed/stat/read/read bytes/write/copy/delete | per shard Class A / B | shard time (median) |\n")
	fmt.Printf("|---:|---:|---:|---:|---|---|---|---:|\n")
	for _, r := range results {
		if r.shards == 1 {
			continue
		}
		fmt.Printf("| %d | %d | %d | %.0f | %d/%d/%d/%d/%d | %d/%d (shard %d)/%d/%d/%s/%d/%d/%d | %d / %d | %s |\n",
			r.files, r.shards, r.planBytes, float64(r.planBytes)/float64(r.files),
			r.first.List, r.first.Listed, r.first.Stat, r.first.Read, r.first.Write,
			r.mid.List, r.mid.Listed, r.midAt, r.mid.Stat, r.mid.Read, bytesText(r.mid.ReadBytes), r.mid.Write, r.mid.Copy, r.mid.Delete,
			r.mid.classA(), r.mid.classB(), r.midTook.Round(time.Millisecond))
	}
	fmt.Printf("\nThe last shard commits the month (shards 1: one unsharded backfill, which also plans nothing).\n\n")
	fmt.Printf("| files | shards | last shard (commits): list (pages)/listed/stat/read/write/copy/delete | last shard Class A / B | last shard bytes read / written | last shard time | parts published | all shards: Class A / B / deletes | input: pages/reads | wall time |\n")
	fmt.Printf("|---:|---:|---|---|---|---:|---:|---|---|---:|\n")
	for _, r := range results {
		fmt.Printf("| %d | %d | %d (%d)/%d/%d/%d/%d/%d/%d | %d / %d | %s / %s | %s | %d | %d / %d / %d | %d/%d | %s |\n",
			r.files, r.shards,
			r.last.List, r.last.Pages, r.last.Listed, r.last.Stat, r.last.Read, r.last.Write, r.last.Copy, r.last.Delete,
			r.last.classA(), r.last.classB(), bytesText(r.last.ReadBytes), bytesText(r.last.WriteBytes), r.lastTook.Round(time.Millisecond), r.parts,
			r.total.classA(), r.total.classB(), r.total.Delete, r.input.Pages, r.input.Read, r.wall.Round(time.Millisecond))
	}
	fmt.Println()
	return nil
}

func bytesText(n int64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	case n >= 10<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func shardedBackfill(ctx context.Context, in string, bu *bundle.Bundle, files, rows, n int) (shardResult, error) {
	r := shardResult{files: files, rows: rows, shards: n}
	emu, err := newEmulator(ctx)
	if err != nil {
		return r, err
	}
	defer emu.close()
	out, input := count(emu.b), count(store.NewFileBucket(in))
	job := jobs.BackfillJob(month)
	start := time.Now()
	var took []time.Duration
	for i := range n {
		before := out.now()
		t0 := time.Now()
		j := jobs.ScoreJob{
			Job: job, Input: input.c, Output: out.c, Bundle: bu,
			Dir: "dumps/" + month, Table: "ad_scores", Partition: partition, Mode: table.Replace,
			IDColumns: []string{"ad_id"}, LabelColumns: []string{"clicked"}, RequireRows: true,
			BatchSize: 4096, ReadConcurrency: 2, CSV: readers.CSVOptions{Header: true}, LeaseTTL: time.Minute,
		}
		if n > 1 {
			j.Shard = &jobs.Shard{Index: i, Count: n}
		}
		if _, err := jobs.Score(ctx, j); err != nil {
			return r, fmt.Errorf("shard %d: %w", i, err)
		}
		o := out.now().sub(before)
		switch {
		case n == 1:
			r.last, r.lastTook = o, time.Since(t0)
		case i == 0:
			r.first = o
			plan, err := state.Read(ctx, emu.b, state.ShardPlanKey(job))
			if err != nil {
				return r, fmt.Errorf("the plan: %w", err)
			}
			r.planBytes = len(plan)
		case i == n-1:
			r.last, r.lastTook = o, time.Since(t0)
		default:
			if o.Listed >= r.mid.Listed {
				r.midAt = i
			}
			r.mid = maxOps(r.mid, o)
			took = append(took, time.Since(t0))
		}
	}
	if len(took) > 0 {
		slices.Sort(took)
		r.midTook = took[len(took)/2]
	}
	r.wall = time.Since(start)
	r.total, r.input = out.now(), input.now()

	// Every row published, once.
	pub, err := table.NewPublisher(emu.b, table.DefaultOptions())
	if err != nil {
		return r, err
	}
	m, err := pub.Manifest(ctx, "ad_scores", partition)
	if err != nil {
		return r, err
	}
	if m.TotalRows != int64(files*rows) {
		return r, fmt.Errorf("published %d rows, want %d", m.TotalRows, files*rows)
	}
	objs, err := emu.b.List(ctx, "")
	if err != nil {
		return r, err
	}
	for _, o := range objs {
		if !strings.HasPrefix(o.Key, state.Dir+"/") && strings.HasSuffix(o.Key, ".parquet") {
			r.parts++
		}
	}
	return r, nil
}

// historyResult is one queue run after a simulated history.
type historyResult struct {
	store        string
	commits      int
	checkpointed bool
	out, in      ops
	seed, took   time.Duration
}

func historyTable(ctx context.Context, repo, tmp string, bu *bundle.Bundle, commits []int, emuMax int) error {
	src, err := os.ReadFile(filepath.Join(repo, "testdata", "store", "queue", "requests-2020-09-02T00.jsonl"))
	if err != nil {
		return err
	}
	newFile := []byte(strings.Join(strings.SplitAfter(string(src), "\n")[:20], ""))
	var results []historyResult
	k := 0
	for _, c := range commits {
		for _, where := range []string{"emulator", "local"} {
			if where == "emulator" && c > emuMax {
				continue
			}
			for _, cp := range []bool{true, false} {
				if where == "emulator" && !cp {
					continue // the test measures that one on the emulator (500 commits)
				}
				k++
				r, err := queueAfter(ctx, filepath.Join(tmp, fmt.Sprintf("history-%d", k)), bu, newFile, where, c, cp)
				if err != nil {
					return fmt.Errorf("queue run after %d commits (%s, checkpointed %v): %w", c, where, cp, err)
				}
				results = append(results, r)
				fmt.Fprintf(os.Stderr, "scale: queue run after %d commits (%s, checkpointed %v): %s\n", c, where, cp, r.took.Round(time.Millisecond))
			}
		}
	}
	fmt.Printf("## One queue run (1 new file of 20 requests) after C earlier queue runs of 10 files each (still in the queue folder)\n\n")
	fmt.Printf("Checkpointed: the commit log as checkpoints leave it (all but the last 50 commits covered and archived).\n\n")
	fmt.Printf("| output store | commits | checkpointed | output: list (pages)/listed/stat/read/read bytes/write/copy/delete | output Class A / B | input: listed (pages) | run time | seeding |\n")
	fmt.Printf("|---|---:|---|---|---|---|---:|---:|\n")
	for _, r := range results {
		o := r.out
		fmt.Printf("| %s | %d | %v | %d (%d)/%d/%d/%d/%s/%d/%d/%d | %d / %d | %d (%d) | %s | %s |\n",
			r.store, r.commits, r.checkpointed,
			o.List, o.Pages, o.Listed, o.Stat, o.Read, bytesText(o.ReadBytes), o.Write, o.Copy, o.Delete,
			o.classA(), o.classB(), r.in.Listed, r.in.Pages, r.took.Round(time.Millisecond), r.seed.Round(time.Millisecond))
	}
	fmt.Println()
	return nil
}

// queueAfter seeds the history of commits queue runs, then runs the queue
// once on one new file.
func queueAfter(ctx context.Context, dir string, bu *bundle.Bundle, newFile []byte, where string, commits int, checkpointed bool) (historyResult, error) {
	r := historyResult{store: where, commits: commits, checkpointed: checkpointed}
	defer func() { _ = os.RemoveAll(dir) }()
	in, outDir := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	var outB store.Bucket
	var put func(key string, data []byte) error
	switch where {
	case "emulator":
		emu, err := newEmulator(ctx)
		if err != nil {
			return r, err
		}
		defer emu.close()
		outB = emu.b
		put = func(key string, data []byte) error {
			// Through the emulator's own API: thousands of objects in a moment.
			emu.srv.CreateObject(fakestorage.Object{
				ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: key, ContentType: "application/json"},
				Content:     data,
			})
			return nil
		}
	default:
		outB = store.NewFileBucket(outDir)
		put = func(key string, data []byte) error {
			p := filepath.Join(outDir, filepath.FromSlash(key))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			return os.WriteFile(p, data, 0o644)
		}
	}
	t0 := time.Now()
	if err := seedHistory(ctx, in, outB, put, commits, 10, 50, checkpointed); err != nil {
		return r, err
	}
	if err := os.WriteFile(filepath.Join(in, "queue", "new.jsonl"), newFile, 0o644); err != nil {
		return r, err
	}
	r.seed = time.Since(t0)

	out, input := count(outB), count(store.NewFileBucket(in))
	t0 = time.Now()
	sum, err := jobs.Score(ctx, jobs.ScoreJob{
		Job: jobs.JobQueue, Input: input.c, Output: out.c, Bundle: bu,
		Dir: "queue", Table: "request_scores", Partition: "date=2020-09-02", Mode: table.Append,
		IDColumns: []string{"request_id"}, SkipConsumed: true, CheckpointEvery: 1000,
		BatchSize: 4096, ReadConcurrency: 2, LeaseTTL: time.Minute,
	})
	r.took = time.Since(t0)
	if err != nil {
		return r, err
	}
	if len(sum.InputFiles) != 1 || sum.RowsRead != 20 {
		return r, fmt.Errorf("the run read %v (%d rows), want only the new file", sum.InputFiles, sum.RowsRead)
	}
	r.out, r.in = out.now(), input.now()
	return r, nil
}

// seedHistory writes, straight into the stores, what commits queue runs
// leave (as internal/jobs' TestHistoryBoundsQueueRunOps does): filesPer
// queued files each, still in the queue folder, every run done; with
// checkpointed, all but the recent newest commits covered by a checkpoint
// and archived.
func seedHistory(ctx context.Context, in string, out store.Bucket, put func(string, []byte) error, commits, filesPer, recent int, checkpointed bool) error {
	if err := os.MkdirAll(filepath.Join(in, "queue"), 0o755); err != nil {
		return err
	}
	for c := range commits {
		for f := range filesPer {
			if err := os.WriteFile(filepath.Join(in, "queue", fmt.Sprintf("old-%06d-%02d.jsonl", c, f)), nil, 0o644); err != nil {
				return err
			}
		}
	}
	objs, err := store.NewFileBucket(in).List(ctx, "queue/")
	if err != nil {
		return err
	}
	gens := map[string]int64{}
	for _, o := range objs {
		gens[o.Key] = o.Generation
	}
	records := make([]table.CommitRecord, commits)
	for c := range commits {
		rec := table.CommitRecord{
			FormatVersion: table.FormatVersion, RunID: fmt.Sprintf("20200101T000000Z-%08d", c), Job: jobs.JobQueue,
			Model: table.Model{Name: "ctr-demo", Version: "old"}, CommittedAt: time.Now().UTC(),
		}
		for f := range filesPer {
			key := fmt.Sprintf("queue/old-%06d-%02d.jsonl", c, f)
			rec.Inputs = append(rec.Inputs, table.InputFile{Key: key, Generation: gens[key]})
		}
		records[c] = rec
	}
	archived := 0
	if checkpointed {
		archived = max(commits-recent, 0)
	}
	write := func(recs []table.CommitRecord, archive bool) error {
		for _, rec := range recs {
			data, err := state.Encode(rec)
			if err != nil {
				return err
			}
			commitKey, doneKey := state.CommitKey(rec.RunID), state.DoneKey(rec.RunID)
			if archive {
				commitKey, doneKey = state.ArchivedKey(commitKey), state.ArchivedKey(doneKey)
			}
			if err := errors.Join(put(commitKey, data), put(doneKey, []byte(`{"run_id":"`+rec.RunID+`"}`))); err != nil {
				return err
			}
		}
		return nil
	}
	if err := write(records[:archived], true); err != nil {
		return err
	}
	if archived > 0 {
		cp := table.CheckpointRecord{
			FormatVersion: table.FormatVersion, Seq: 1, Commits: int64(archived),
			Through:   table.CommitPosition{StoredAt: time.Now().UTC(), RunID: records[archived-1].RunID},
			Ledger:    map[string]map[string]table.InputFile{jobs.JobQueue: {}},
			CreatedAt: time.Now().UTC(),
		}
		for _, rec := range records[:archived] {
			for _, in := range rec.Inputs {
				cp.Ledger[jobs.JobQueue][in.Key] = in
			}
		}
		data, err := state.EncodeCompact(cp)
		if err != nil {
			return err
		}
		if _, err := state.Put(ctx, out, state.CheckpointKey(1), data); err != nil {
			return err
		}
		time.Sleep(10 * time.Millisecond) // store times after Through, whatever their resolution
	}
	return write(records[archived:], false)
}
