package features_test

import (
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/perf"
)

// BenchmarkTransform measures the feature transform of the reference spec
// (13 numeric, 26 hashed categoricals) on generated rows, without a profile
// and with the profile every scoring run makes (against a reference with
// bins, as a bundle's training profile has, sampled by the id as a scoring
// run's): the difference is the cost of profiling, which the design keeps
// under 5% of a run's end-to-end time (docs/performance.md).
func BenchmarkTransform(b *testing.B) {
	const rows = 4096
	p, err := features.NewPipeline(perf.Spec(), perf.Stats())
	if err != nil {
		b.Fatal(err)
	}
	gen := perf.NewGenerator(1)
	ref := func() *features.Profile {
		pr, err := p.NewProfiler(nil)
		if err != nil {
			b.Fatal(err)
		}
		rec := gen.Record(memory.DefaultAllocator, 64*1024)
		defer rec.Release()
		var dst features.Batch
		dst.Profile = pr
		if err := p.Transform(rec, &dst); err != nil {
			b.Fatal(err)
		}
		prof, err := pr.Profile()
		if err != nil {
			b.Fatal(err)
		}
		if err := prof.SetReferenceBins(); err != nil {
			b.Fatal(err)
		}
		return prof
	}()
	input := make([]arrow.RecordBatch, 16)
	for i := range input {
		input[i] = gen.Record(memory.DefaultAllocator, rows)
	}
	defer func() {
		for _, r := range input {
			r.Release()
		}
	}()
	for _, profile := range []bool{false, true} {
		name := "profile=off"
		if profile {
			name = "profile=on"
		}
		b.Run(name, func(b *testing.B) {
			var dst features.Batch
			if profile {
				if dst.Profile, err = p.NewProfiler(ref); err != nil {
					b.Fatal(err)
				}
				dst.Profile.SampleBy([]string{perf.IDColumn}) // as a scoring run's

			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := p.Transform(input[i%len(input)], &dst); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i*rows), "ns/row")
		})
	}
	// The difference alone, from each record transformed twice in a row,
	// without and with the profile (which first alternates): the two runs
	// of a pair, milliseconds apart, see the same machine, where separate
	// benchmarks see its speed move by more than the difference.
	b.Run("profile=cost", func(b *testing.B) {
		var off, on features.Batch
		if on.Profile, err = p.NewProfiler(ref); err != nil {
			b.Fatal(err)
		}
		on.Profile.SampleBy([]string{perf.IDColumn})
		var ns [2]time.Duration // off, on
		i := 0
		for b.Loop() {
			rec := input[i%len(input)]
			for k := range 2 {
				v := (i + k) % 2
				dst := &off
				if v == 1 {
					dst = &on
				}
				t0 := time.Now()
				if err := p.Transform(rec, dst); err != nil {
					b.Fatal(err)
				}
				ns[v] += time.Since(t0)
			}
			i++
		}
		perRow := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(i*rows) }
		b.ReportMetric(perRow(ns[0]), "ns/row-off")
		b.ReportMetric(perRow(ns[1]), "ns/row-on")
		b.ReportMetric(perRow(ns[1]-ns[0]), "ns/row-profile")
	})
}

// BenchmarkObserveScores measures the score profile every scoring run
// keeps (bins, extremes, sketch) on a batch of scores spread over [0, 1].
func BenchmarkObserveScores(b *testing.B) {
	p, err := features.NewPipeline(perf.Spec(), perf.Stats())
	if err != nil {
		b.Fatal(err)
	}
	pr, err := p.NewProfiler(nil)
	if err != nil {
		b.Fatal(err)
	}
	scores := make([]float32, 4096)
	for i := range scores {
		scores[i] = float32((i*7919)%4096) / 4096
	}
	for b.Loop() {
		pr.ObserveScores(scores)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(scores)), "ns/score")
}
