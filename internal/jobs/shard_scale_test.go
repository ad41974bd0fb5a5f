package jobs

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/writers/table"
)

// keyOp is one call made to a bucket: its kind ("list", "stat", "read",
// "write", "copy", "delete") and the key (the prefix of a list, the
// destination of a copy).
type keyOp struct{ op, key string }

// keyRecorder is a bucket that records the key of every call it forwards,
// so that a test can say which objects a run touched, not only how many
// calls it made (store.Counted). A write is recorded when it is started.
type keyRecorder struct {
	b   store.Bucket
	mu  sync.Mutex
	ops []keyOp
}

func (r *keyRecorder) add(op, key string) {
	r.mu.Lock()
	r.ops = append(r.ops, keyOp{op, key})
	r.mu.Unlock()
}

// take returns the calls recorded since the last take.
func (r *keyRecorder) take() []keyOp {
	r.mu.Lock()
	defer r.mu.Unlock()
	ops := r.ops
	r.ops = nil
	return ops
}

func (r *keyRecorder) List(ctx context.Context, prefix string) ([]store.ObjectInfo, error) {
	r.add("list", prefix)
	return r.b.List(ctx, prefix)
}

func (r *keyRecorder) Stat(ctx context.Context, key string) (store.ObjectInfo, error) {
	r.add("stat", key)
	return r.b.Stat(ctx, key)
}

func (r *keyRecorder) NewReader(ctx context.Context, key string, gen int64) (io.ReadCloser, error) {
	r.add("read", key)
	return r.b.NewReader(ctx, key, gen)
}

func (r *keyRecorder) NewRangeReader(ctx context.Context, key string, gen, off, n int64) (io.ReadCloser, error) {
	r.add("read", key)
	return r.b.NewRangeReader(ctx, key, gen, off, n)
}

func (r *keyRecorder) NewWriter(ctx context.Context, key string, opts store.WriteOptions) (store.Writer, error) {
	r.add("write", key)
	return r.b.NewWriter(ctx, key, opts)
}

func (r *keyRecorder) Copy(ctx context.Context, src, dst string, opts store.WriteOptions) error {
	r.add("copy", dst)
	return r.b.Copy(ctx, src, dst, opts)
}

func (r *keyRecorder) Delete(ctx context.Context, key string) error {
	r.add("delete", key)
	return r.b.Delete(ctx, key)
}

func (r *keyRecorder) URI(key string) string { return r.b.URI(key) }

// count is the number of calls of kind op whose key satisfies match.
func count(ops []keyOp, op string, match func(string) bool) int64 {
	var n int64
	for _, o := range ops {
		if o.op == op && match(o.key) {
			n++
		}
	}
	return n
}

func isLease(key string) bool { return strings.HasPrefix(key, state.LeasesPrefix) }

// demoLines are the data lines of the demo month's dumps (CSV, after their
// header) and the header.
func demoLines(t *testing.T) (header string, lines []string) {
	t.Helper()
	paths, err := filepath.Glob(demoCSV)
	if err != nil || len(paths) == 0 {
		t.Fatalf("demo dumps %s: %v", demoCSV, err)
	}
	slices.Sort(paths)
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(zr)
		_ = f.Close()
		if err != nil {
			t.Fatal(err)
		}
		all := strings.Split(strings.TrimSpace(string(data)), "\n")
		header = all[0]
		lines = append(lines, all[1:]...)
	}
	return header, lines
}

// tinyMonth writes files CSV dumps of rows demo rows each (the demo
// month's rows, in order: every ad_id once) under dir/dumps/2020-09/, named
// so that key order is file order, and returns their keys and ad_ids.
func tinyMonth(t *testing.T, dir string, files, rows int) (keys []string, ids map[string]bool) {
	t.Helper()
	header, lines := demoLines(t)
	if files*rows > len(lines) {
		t.Fatalf("%d files of %d rows: the demo month has only %d rows", files, rows, len(lines))
	}
	if err := os.MkdirAll(filepath.Join(dir, "dumps", demoMonth), 0o755); err != nil {
		t.Fatal(err)
	}
	ids = map[string]bool{}
	for f := range files {
		key := fmt.Sprintf("dumps/%s/part-%05d.csv", demoMonth, f)
		chunk := lines[f*rows : (f+1)*rows]
		for _, l := range chunk {
			id, _, _ := strings.Cut(l, ",")
			if ids[id] {
				t.Fatalf("ad_id %s twice in the demo month", id)
			}
			ids[id] = true
		}
		data := header + "\n" + strings.Join(chunk, "\n") + "\n"
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(key)), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	return keys, ids
}

// shardRun is what one shard of a simulated backfill did.
type shardRun struct {
	ops     store.OpCounts // on the output store (store.Counted)
	out, in []keyOp        // the calls, by key, on the output and input stores
	took    time.Duration
}

// shardedMonth is a sharded backfill, simulated: the shards one after
// another in one process, on one output store.
type shardedMonth struct {
	shards    []shardRun
	planBytes int
	planID    string
	planKeys  []string // the plan's files
	published int      // Parquet objects published (every table), after the last
	out       store.Bucket
}

// backfillInShards backfills the month of the input store at in into a
// fresh output store on the GCS emulator, in n shards run in order, and
// records each shard's operations.
func backfillInShards(t *testing.T, in string, n int) *shardedMonth {
	t.Helper()
	ctx := context.Background()
	bu := loadDemoBundle(t)
	gcs, _ := gcsBucket(t)
	outRec := &keyRecorder{b: gcs}
	counted := store.Counted(outRec)
	inRec := &keyRecorder{b: store.NewFileBucket(in)}
	m := &shardedMonth{out: gcs}
	job := BackfillJob(demoMonth)
	for i := range n {
		before := counted.Counts()
		start := time.Now()
		_, err := Score(ctx, ScoreJob{
			Job: job, Input: inRec, Output: counted, Bundle: bu,
			Dir: "dumps/" + demoMonth, Table: demoTable, Partition: demoPartition, Mode: table.Replace,
			IDColumns: []string{"ad_id"}, LabelColumns: []string{"clicked"}, RequireRows: true,
			BatchSize: 4096, ReadConcurrency: 2, CSV: readers.CSVOptions{Header: true}, LeaseTTL: time.Minute,
			Shard: &Shard{Index: i, Count: n},
		})
		if err != nil {
			t.Fatalf("shard %d/%d: %v", i, n, err)
		}
		m.shards = append(m.shards, shardRun{
			ops: counted.Counts().Sub(before), out: outRec.take(), in: inRec.take(), took: time.Since(start),
		})
		if i == 0 {
			plan, err := state.Read(ctx, gcs, state.ShardPlanKey(job))
			if err != nil {
				t.Fatalf("the plan after shard 0: %v", err)
			}
			m.planBytes = len(plan)
			var p struct {
				ID    string `json:"id"`
				Files []struct {
					Key string
				} `json:"files"`
			}
			if err := state.Decode(plan, &p); err != nil {
				t.Fatal(err)
			}
			m.planID = p.ID
			for _, f := range p.Files {
				m.planKeys = append(m.planKeys, f.Key)
			}
		}
	}
	objs, err := gcs.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if !strings.HasPrefix(o.Key, state.Dir+"/") && strings.HasSuffix(o.Key, ".parquet") {
			m.published++
		}
	}
	return m
}

// minusLease is a shard's output operations less those on lease objects
// (acquire, release, and renewals, which depend on time: at most one a
// second) and less the bytes, which the comparisons leave out.
func minusLease(s shardRun) store.OpCounts {
	o := s.ops
	o.List -= count(s.out, "list", isLease)
	o.Stat -= count(s.out, "stat", isLease)
	o.Read -= count(s.out, "read", isLease)
	leaseWrites := count(s.out, "write", isLease)
	o.Write -= leaseWrites
	o.WriteAttempts -= leaseWrites
	o.Copy -= count(s.out, "copy", isLease)
	o.Delete -= count(s.out, "delete", isLease)
	o.ReadBytes, o.WriteBytes = 0, 0
	return o
}

// TestShardedBackfillAtScale backfills a month of many tiny files in 64
// shards (and the same month in 16, to compare), on the GCS emulator for
// the output store, and checks what sharding costs as it grows: every row
// published once; each shard's output operations the same whatever its
// index and the shard count, except the list of shard records (one more
// object per shard before it) and the last shard's commit, which reads
// every shard record (exactly N) plus a constant; the plan's bytes per
// input file; each shard reading its own input files and no other.
//
// The output store is the emulator so that the counts are those of the
// GCS bucket's code; the input is a local folder: 1,000 input objects
// through the emulator's memory backend (quadratic in a bucket's objects)
// would cost minutes, and which input objects a shard reads is the same
// calls on either store. make scale runs larger sizes (internal/perf/scale).
func TestShardedBackfillAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("80 shard runs on the GCS emulator")
	}
	files, rows, shards := 1000, 5, 64
	if raceEnabled {
		// The same checks, smaller: the race detector slows each run
		// about tenfold and adds nothing to a count.
		files, shards = 200, 32
	}
	small := shards / 4
	in := t.TempDir()
	keys, ids := tinyMonth(t, in, files, rows)
	total := int64(files * rows)

	big := backfillInShards(t, in, shards)
	checkShardedRows(t, big.out, in, total, ids)
	other := backfillInShards(t, in, small)
	checkShardedRows(t, other.out, in, total, ids)

	// The plan: every input file of the month, in key order, a fixed
	// number of bytes each.
	perFile := float64(big.planBytes) / float64(files)
	t.Logf("plan: %d bytes for %d input files: %.0f bytes per file (keys of %d bytes)", big.planBytes, files, perFile, len(keys[0]))
	if limit := float64(len(keys[0]) + 200); perFile > limit {
		t.Errorf("the plan takes %.0f bytes per input file, want at most %.0f (the key and 200 bytes)", perFile, limit)
	}
	if !slices.Equal(big.planKeys, keys) {
		t.Errorf("the plan lists %d files %v, want the month's %d in key order %v", len(big.planKeys), clip(big.planKeys), len(keys), clip(keys))
	}

	for _, m := range []*shardedMonth{big, other} {
		n := len(m.shards)
		// Inputs: shard i reads exactly the files at positions i, i+n, ...
		// of the month in key order, once each; only shard 0 lists the
		// input (to plan).
		for i, s := range m.shards {
			var want []string
			for k := i; k < files; k += n {
				want = append(want, keys[k])
			}
			var got []string
			for _, o := range s.in {
				if o.op == "read" {
					got = append(got, o.key)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%d shards: shard %d read %d input objects %v, want its own %d: %v", n, i, len(got), clip(got), len(want), clip(want))
			}
			lists := count(s.in, "list", func(string) bool { return true })
			if wantLists := map[bool]int64{true: 1, false: 0}[i == 0]; lists != wantLists {
				t.Errorf("%d shards: shard %d listed the input %d times, want %d", n, i, lists, wantLists)
			}
			// Lease objects: acquire and release, plus renewals at most
			// once a second (lease.MinRenew).
			leaseOps := int64(0)
			for _, o := range s.out {
				if isLease(o.key) {
					leaseOps++
				}
			}
			if limit := 8 + 2*int64(s.took/time.Second); i < n-1 && leaseOps > limit {
				t.Errorf("%d shards: shard %d made %d calls on lease objects in %s, want at most %d", n, i, leaseOps, s.took, limit)
			}
		}
	}

	// Every shard but the first (which plans) and the last (which
	// commits) makes the same calls, whatever its index and the shard
	// count, except the listing of the shard records: one object more
	// for every shard recorded before it.
	ref := minusLease(big.shards[1])
	ref.Listed -= 2
	for _, m := range []*shardedMonth{big, other} {
		n := len(m.shards)
		for i := 1; i < n-1; i++ {
			got := minusLease(m.shards[i])
			got.Listed -= int64(i + 1) // the records of shards 0..i
			if got != ref {
				t.Errorf("%d shards: shard %d made %+v (records listed subtracted), shard 1 of %d %+v: want the same", n, i, got, shards, ref)
			}
		}
	}

	// The first shard plans (lists the input, writes the plan), then does
	// what the others do: the same calls whatever the shard count.
	if a, b := minusLease(big.shards[0]), minusLease(other.shards[0]); a != b {
		t.Errorf("shard 0 of %d made %+v, shard 0 of %d %+v: want the same", shards, a, small, b)
	}

	// The last shard commits. Against what the store shows (N shard
	// records; P Parquet parts published, each staged first, and one
	// staging marker), it reads every shard record once and copies every
	// part once; it deletes the records, the parts and the marker; it
	// lists the records twice (to find them, to delete them), the staging
	// twice (recovery, deletion) and the partitions once; all else it does
	// (the other reads, stats, lists, writes and deletes) is the same
	// whatever N.
	type last struct {
		n, parts, recordReads, otherReads, copies, deletes, listed int64
		rest                                                       store.OpCounts
	}
	measureLast := func(m *shardedMonth) last {
		s := m.shards[len(m.shards)-1]
		isRecord := func(k string) bool {
			return strings.HasPrefix(k, state.ShardRecordsPrefix(BackfillJob(demoMonth), m.planID))
		}
		l := last{n: int64(len(m.shards)), parts: int64(m.published)}
		l.recordReads = count(s.out, "read", isRecord)
		l.rest = minusLease(s)
		l.otherReads = l.rest.Read - l.recordReads
		l.copies = l.rest.Copy
		l.deletes = l.rest.Delete - l.n - (l.parts + 1)
		l.listed = l.rest.Listed - 2*l.n - 2*(l.parts+1) - l.parts
		l.rest.Read, l.rest.Copy, l.rest.Delete, l.rest.Listed = 0, 0, 0, 0
		t.Logf("%3d shards: last shard (commit) in %s: %+v; %d shard records read, %d parts published",
			len(m.shards), s.took.Round(time.Millisecond), s.ops, l.recordReads, m.published)
		return l
	}
	lb, lo := measureLast(big), measureLast(other)
	for _, l := range []last{lb, lo} {
		if l.recordReads != l.n {
			t.Errorf("%d shards: the last shard read %d shard records, want every one once (%d)", l.n, l.recordReads, l.n)
		}
		if l.copies != l.parts {
			t.Errorf("%d shards: the last shard copied %d objects, want the %d published parts once each", l.n, l.copies, l.parts)
		}
		if l.parts < l.n {
			t.Errorf("%d shards: %d parts published, want at least one per shard", l.n, l.parts)
		}
	}
	if lb.otherReads != lo.otherReads || lb.rest != lo.rest {
		t.Errorf("the last shard's reads besides shard records, or its other calls (lists, stats, writes), grow with the shard count: %d shards %d reads %+v, %d shards %d reads %+v",
			lb.n, lb.otherReads, lb.rest, lo.n, lo.otherReads, lo.rest)
	}
	if lb.deletes != lo.deletes {
		t.Errorf("the last shard's deletes beyond the shard records, parts and marker: %d with %d shards, %d with %d: want the same", lb.deletes, lb.n, lo.deletes, lo.n)
	}
	if lb.listed != lo.listed {
		t.Errorf("the last shard's objects listed beyond 2 per record, 2 per staged object and 1 per part: %d with %d shards, %d with %d: want the same", lb.listed, lb.n, lo.listed, lo.n)
	}

	for _, m := range []*shardedMonth{big, other} {
		var took time.Duration
		for _, s := range m.shards {
			took += s.took
		}
		t.Logf("%3d shards of %d files (%d rows): shard 0 (plans) %+v", len(m.shards), files, total, m.shards[0].ops)
		t.Logf("%3d shards: shard 1 %+v; shard %d %+v", len(m.shards), m.shards[1].ops, len(m.shards)-2, m.shards[len(m.shards)-2].ops)
		t.Logf("%3d shards: all shards in %s", len(m.shards), took.Round(time.Millisecond))
	}
}

// clip shortens a list of keys for a message.
func clip(keys []string) []string {
	if len(keys) > 4 {
		return append(slices.Clone(keys[:4]), "...")
	}
	return keys
}

// checkShardedRows checks that the month is published in the output store
// with every input row exactly once: the manifest's row count, and DuckDB
// over the published files (downloaded) against the input CSV files.
func checkShardedRows(t *testing.T, out store.Bucket, in string, total int64, ids map[string]bool) {
	t.Helper()
	ctx := context.Background()
	if int64(len(ids)) != total {
		t.Fatalf("%d distinct input ids for %d rows", len(ids), total)
	}
	pub, err := table.NewPublisher(out, table.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	m, err := pub.Manifest(ctx, demoTable, demoPartition)
	if err != nil {
		t.Fatalf("the month is not published: %v", err)
	}
	if m.TotalRows != total {
		t.Errorf("the manifest counts %d rows, want the %d input rows", m.TotalRows, total)
	}
	dir := t.TempDir()
	var quoted []string
	for i, f := range m.Files {
		r, err := out.NewReader(ctx, table.PartitionPrefix(demoTable, demoPartition)+f.Name, 0)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(r)
		_ = r.Close()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, fmt.Sprintf("%05d.parquet", i))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		quoted = append(quoted, "'"+p+"'")
	}
	db := duck(t)
	rel := "read_parquet([" + strings.Join(quoted, ", ") + "])"
	inputs := fmt.Sprintf("read_csv('%s', header = true, all_varchar = true)", filepath.Join(in, "dumps", demoMonth, "*.csv"))
	if n := queryInt(t, db, "SELECT count(*) FROM "+inputs); n != total {
		t.Fatalf("DuckDB reads %d input rows, want %d", n, total)
	}
	rowsOut := queryInt(t, db, "SELECT count(*) FROM "+rel)
	distinct := queryInt(t, db, "SELECT count(DISTINCT ad_id) FROM "+rel)
	matched := queryInt(t, db, "SELECT count(*) FROM "+rel+" o JOIN "+inputs+" i ON o.ad_id = i.ad_id")
	if rowsOut != total || distinct != total || matched != total {
		t.Errorf("published: %d rows, %d distinct ad_ids, %d matching an input row; want %d of each (every input row once)", rowsOut, distinct, matched, total)
	}
}
