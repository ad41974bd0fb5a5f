package scoring_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/perf"
	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/bundle"
)

// BenchmarkReferenceModel times the reference models of the performance
// issue alone, on prepared inputs (Criteo-like rows through the reference
// feature spec): ctr-mlp and ctr-logreg, batch 1024 and 8192, 1 and 2
// workers, each worker with its own compiled model. A batch is scored as
// scoring.Run scores a record of that many rows: by a model compiled for
// min(batch, DefaultModelBatch) rows, in slices of that size. One op is
// one batch; rows/s counts every worker's rows.
func BenchmarkReferenceModel(b *testing.B) {
	for _, name := range []string{perf.MLP, perf.LogReg} {
		bu, err := perf.Bundle(name, 1)
		if err != nil {
			b.Fatal(err)
		}
		for _, bs := range []int{1024, 8192} {
			in, err := perf.NewGenerator(2).Batch(bs)
			if err != nil {
				b.Fatal(err)
			}
			for _, workers := range []int{1, 2} {
				b.Run(fmt.Sprintf("model=%s/batch=%d/workers=%d", name, bs, workers), func(b *testing.B) {
					benchModels(b, bu, in, min(in.N, scoring.DefaultModelBatch), workers)
				})
			}
		}
	}
}

// benchModels scores in with workers models compiled for batch size
// compiled, each on its own goroutine, and reports rows/s.
func benchModels(b *testing.B, bu *bundle.Bundle, in *features.Batch, compiled, workers int) {
	models := make([]*scoring.Model, workers)
	outs := make([][]float32, workers)
	for w := range models {
		m, err := scoring.NewModel(bu, compiled)
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = m.Close() }()
		models[w] = m
		outs[w] = make([]float32, in.N)
		if err := m.Score(in, outs[w]); err != nil { // warm up: first-run allocations
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		share := b.N / workers
		if w < b.N%workers {
			share++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range share {
				if err := models[w].Score(in, outs[w]); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*float64(in.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkCompiledBatch scores the same 8192 prepared rows with models
// compiled for different batch sizes (Score splits the rows), two workers:
// what DefaultModelBatch is chosen by.
func BenchmarkCompiledBatch(b *testing.B) {
	for _, name := range []string{perf.MLP, perf.LogReg} {
		bu, err := perf.Bundle(name, 1)
		if err != nil {
			b.Fatal(err)
		}
		in, err := perf.NewGenerator(2).Batch(8192)
		if err != nil {
			b.Fatal(err)
		}
		for _, bs := range []int{64, 256, 1024, 4096, 8192} {
			b.Run(fmt.Sprintf("model=%s/compiled=%d/workers=2", name, bs), func(b *testing.B) {
				benchModels(b, bu, in, bs, 2)
			})
		}
	}
}
