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
