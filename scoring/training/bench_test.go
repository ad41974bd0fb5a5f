package training

import (
	"context"
	"testing"

	"github.com/adtech/scorer/scoring/bundle"
)

// benchInputs is a demo-sized model input: 6 dense and 14 categorical
// features, a few thousand categorical values in all.
var benchInputs = bundle.Inputs{Dense: 6, Cardinalities: []int{25, 8, 1000, 500, 24, 8, 300, 50, 100, 20, 1000, 200, 60, 12}}

func BenchmarkTrainEpoch(b *testing.B) {
	f := newClickFunc(benchInputs, 1)
	train, _ := f.sample(50000, 2)
	cfg := Config{Arch: bundle.Architecture{Kind: bundle.WideDeep, EmbeddingDim: 8, Hidden: []int{32, 16}}, Inputs: benchInputs, Epochs: 1}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Train(context.Background(), cfg, train, Dataset{}); err != nil {
			b.Fatal(err)
		}
	}
}

// ctrMLPInputs are the reference ctr-mlp model's inputs (internal/perf):
// 13 dense features and 26 categoricals of 65,537 values each.
func ctrMLPInputs() bundle.Inputs {
	in := bundle.Inputs{Dense: 13}
	for range 26 {
		in.Cardinalities = append(in.Cardinalities, 65537)
	}
	return in
}

// BenchmarkTrainStep times optimiser steps alone (forward, backward, Adam
// over every parameter), one op per step of 256 rows, for the demo's
// architecture and for the reference ctr-mlp (wide & deep, embeddings of
// 16, hidden layers 256 and 128): the figure internal/perf/train_torch.py
// measures for PyTorch with the same architecture, batch and optimiser.
func BenchmarkTrainStep(b *testing.B) {
	for _, c := range []struct {
		name string
		in   bundle.Inputs
		arch bundle.Architecture
	}{
		{"demo", benchInputs, bundle.Architecture{Kind: bundle.WideDeep, EmbeddingDim: 8, Hidden: []int{32, 16}}},
		{"ctr-mlp", ctrMLPInputs(), bundle.Architecture{Kind: bundle.WideDeep, EmbeddingDim: 16, Hidden: []int{256, 128}}},
	} {
		b.Run("arch="+c.name, func(b *testing.B) {
			cfg := Config{Arch: c.arch, Inputs: c.in, Epochs: 1}.withDefaults()
			ds, _ := newClickFunc(c.in, 1).sample(64*cfg.BatchSize, 2)
			bu, err := initBundle(cfg, clickRate(ds.Labels))
			if err != nil {
				b.Fatal(err)
			}
			tr, err := newTrainer(cfg, bu, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer tr.close()
			rows := make([]int, ds.Batch.N)
			for i := range rows {
				rows[i] = i
			}
			lo := 0
			b.ResetTimer()
			for b.Loop() {
				if _, err := tr.step(&ds, rows[lo:lo+cfg.BatchSize]); err != nil {
					b.Fatal(err)
				}
				lo = (lo + cfg.BatchSize) % len(rows)
			}
			b.ReportMetric(float64(b.N*cfg.BatchSize)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
