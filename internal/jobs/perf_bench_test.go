package jobs

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/perf"
	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/writers/table"
)

// perfDataRows is the size of the end-to-end benchmark's input.
const perfDataRows = 1_000_000

var perfData struct {
	once sync.Once
	dir  string
	err  error
}

// perfStore returns a store folder holding dumps/2020-01/ with perfDataRows
// Criteo-like rows in two CSV files: $SCORER_BENCH_DATA/store if set (what
// `make bench-data` writes), else a cache folder under os.TempDir that the
// first benchmark run generates (about 240 MB, a few seconds) and later
// runs reuse; `make clean-bench-data` removes both.
func perfStore(b *testing.B) string {
	b.Helper()
	if dir := os.Getenv("SCORER_BENCH_DATA"); dir != "" {
		return filepath.Join(dir, "store")
	}
	perfData.once.Do(func() {
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("scorer-bench-data-%d-v1", perfDataRows), "store")
		perfData.dir = dir
		done := filepath.Join(dir, "_complete")
		if _, err := os.Stat(done); err == nil {
			return
		}
		perfData.err = writePerfStore(dir)
		if perfData.err == nil {
			perfData.err = os.WriteFile(done, nil, 0o644)
		}
	})
	if perfData.err != nil {
		b.Fatal(perfData.err)
	}
	return perfData.dir
}

func writePerfStore(dir string) error {
	month := filepath.Join(dir, "dumps", "2020-01")
	if err := os.MkdirAll(month, 0o755); err != nil {
		return err
	}
	g := perf.NewGenerator(1)
	for part := range 2 {
		f, err := os.Create(filepath.Join(month, fmt.Sprintf("part-%05d.csv", part)))
		if err != nil {
			return err
		}
		err = g.WriteCSV(f, perfDataRows/2)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// cpuSeconds is the process's user + system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// BenchmarkEndToEnd is a backfill of 1M Criteo-like CSV rows (two files)
// with a reference model and the default workers (one per core): read,
// compute features, score, profile the inputs and measure their drift
// against the model's training profile (made from the first file), write
// Parquet, commit, into a fresh output store each time; ctr-mlp at three
// record batch sizes, and once without the profiles for their cost. It
// reports rows/s and the CPU seconds per million rows (every goroutine of
// the process).
func BenchmarkEndToEnd(b *testing.B) {
	in := store.NewFileBucket(perfStore(b))
	for _, name := range []string{perf.MLP, perf.LogReg} {
		bu, err := perf.Bundle(name, 1)
		if err != nil {
			b.Fatal(err)
		}
		if bu.Profile, err = benchProfile(in, bu); err != nil {
			b.Fatal(err)
		}
		// One run untimed first: the process's first run is slower (the
		// heap grows, the record buffer pool fills), and whichever variant
		// came first would pay for it.
		if _, err := backfillOnce(in, store.NewFileBucket(b.TempDir()), bu, 4096, nil, false); err != nil {
			b.Fatal(err)
		}
		batches := []int{4096} // the config's default
		if name == perf.MLP {
			batches = []int{1024, 4096, 8192}
		}
		for _, bs := range batches {
			b.Run(fmt.Sprintf("model=%s/batch=%d", name, bs), func(b *testing.B) {
				benchBackfill(b, in, bu, bs, nil, false)
			})
		}
		if name == perf.MLP { // the record buffers not reused (package mempool), for comparison
			b.Run(fmt.Sprintf("model=%s/batch=4096/alloc=go", name), func(b *testing.B) {
				benchBackfill(b, in, bu, 4096, memory.NewGoAllocator(), false)
			})
		}
		b.Run(fmt.Sprintf("model=%s/batch=4096/profile=off", name), func(b *testing.B) {
			benchBackfill(b, in, bu, 4096, nil, true)
		})
	}
}

// benchProfile is bu's training profile made from the benchmark data's
// first file.
func benchProfile(in store.Bucket, bu *bundle.Bundle) (*features.Profile, error) {
	ctx := context.Background()
	files, _, err := ListInputs(ctx, in, "dumps/2020-01")
	if err != nil {
		return nil, err
	}
	fx, err := features.NewPipeline(bu.Features, bu.Stats)
	if err != nil {
		return nil, err
	}
	return ProfileData(ctx, func() (*readers.Reader, error) {
		return readers.Open(ctx, in, files[:1], readers.Options{
			Schema: bu.Features.InputSchema(nil, false), BatchSize: 4096, CSV: readers.CSVOptions{Header: true},
		})
	}, fx, bu)
}

// backfillOnce scores the benchmark month from in into out.
func backfillOnce(in, out store.Bucket, bu *bundle.Bundle, batch int, mem memory.Allocator, noProfile bool) (*Summary, error) {
	return Score(context.Background(), ScoreJob{
		Job: BackfillJob("2020-01"), Input: in, Output: out, Bundle: bu, Mem: mem,
		Dir: "dumps/2020-01", Table: "ad_scores", Partition: "month=2020-01", Mode: table.Replace,
		IDColumns: []string{perf.IDColumn}, RequireRows: true,
		BatchSize: batch, ReadConcurrency: 2, CSV: readers.CSVOptions{Header: true},
		RowGroupRows: 128 * 1024, PartRows: 1 << 20, LeaseTTL: 10 * time.Minute,
		noProfile: noProfile,
	})
}

func benchBackfill(b *testing.B, in store.Bucket, bu *bundle.Bundle, batch int, mem memory.Allocator, noProfile bool) {
	var rows int64
	var cpu float64
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		out := store.NewFileBucket(b.TempDir())
		cpu0 := cpuSeconds()
		b.StartTimer()
		sum, err := backfillOnce(in, out, bu, batch, mem, noProfile)
		if err != nil {
			b.Fatal(err)
		}
		cpu += cpuSeconds() - cpu0
		if sum.RowsRead != perfDataRows && os.Getenv("SCORER_BENCH_DATA") == "" {
			b.Fatalf("scored %d rows, want %d", sum.RowsRead, perfDataRows)
		}
		rows += sum.RowsRead
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(cpu/(float64(rows)/1e6), "cpu-s/Mrows")
}

// BenchmarkProfileCost measures what the profiles and drift cost end to
// end: each iteration backfills the month twice, with and without them
// (which first alternates), so that both see the same machine however its
// speed drifts. It reports the CPU seconds per million rows of each and
// the cost in percent of the run without (docs/performance.md: at most 5%).
func BenchmarkProfileCost(b *testing.B) {
	in := store.NewFileBucket(perfStore(b))
	bu, err := perf.Bundle(perf.MLP, 1)
	if err != nil {
		b.Fatal(err)
	}
	if bu.Profile, err = benchProfile(in, bu); err != nil {
		b.Fatal(err)
	}
	if _, err := backfillOnce(in, store.NewFileBucket(b.TempDir()), bu, 4096, nil, false); err != nil {
		b.Fatal(err) // warm: see BenchmarkEndToEnd
	}
	var cpu [2]float64 // profile on, off
	var rows [2]int64
	var pairs []float64 // each pair's cost, in percent
	i := 0
	for b.Loop() {
		var pair [2]float64 // CPU seconds per row, on and off
		for k := range 2 {
			off := (i+k)%2 == 1
			b.StopTimer()
			out := store.NewFileBucket(b.TempDir())
			cpu0 := cpuSeconds()
			b.StartTimer()
			label, v := "on", 0
			if off {
				label, v = "off", 1
			}
			var sum *Summary
			var err error
			// Labelled for a CPU profile's -tagfocus=profile=on|off.
			pprof.Do(context.Background(), pprof.Labels("profile", label), func(context.Context) {
				sum, err = backfillOnce(in, out, bu, 4096, nil, off)
			})
			if err != nil {
				b.Fatal(err)
			}
			c := cpuSeconds() - cpu0
			cpu[v] += c
			rows[v] += sum.RowsRead
			pair[v] = c / float64(sum.RowsRead)
		}
		pairs = append(pairs, 100*(pair[0]-pair[1])/pair[1])
		i++
	}
	on, off := cpu[0]/(float64(rows[0])/1e6), cpu[1]/(float64(rows[1])/1e6)
	b.ReportMetric(on, "cpu-s/Mrows-on")
	b.ReportMetric(off, "cpu-s/Mrows-off")
	b.ReportMetric(100*(on-off)/off, "%cost")
	// The pairs' median and quartiles: a pair whose two runs saw a
	// different machine (the VM's speed moves by more than the effect
	// within seconds) moves the total above, not the median.
	slices.Sort(pairs)
	b.ReportMetric(quantile(pairs, 0.5), "%cost-median")
	b.ReportMetric(quantile(pairs, 0.25), "%cost-q1")
	b.ReportMetric(quantile(pairs, 0.75), "%cost-q3")
}

// quantile is the q-quantile of sorted values, linearly interpolated.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	x := q * float64(len(sorted)-1)
	i := int(x)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (x-float64(i))*(sorted[i+1]-sorted[i])
}
