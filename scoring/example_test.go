package scoring_test

import (
	"fmt"
	"log"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/bundle"
)

// A hand-made logistic regression: one dense feature and one categorical
// feature of cardinality 3.
func ExampleModel_Score() {
	bu := &bundle.Bundle{
		Name:    "example",
		Version: "1",
		Arch:    bundle.Architecture{Kind: bundle.Wide},
		Inputs:  bundle.Inputs{Dense: 1, Cardinalities: []int{3}},
		Weights: map[string]*bundle.Param{
			"wide.emb":   {Shape: []int{3, 1}, Data: []float32{0, 1, -1}},
			"wide.dense": {Shape: []int{1, 1}, Data: []float32{2}},
			"wide.bias":  {Shape: []int{1}, Data: []float32{-1}},
		},
	}
	m, err := scoring.NewModel(bu, 64) // one per worker
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = m.Close() }()

	b := &features.Batch{N: 2, D: 1, K: 1, Dense: []float32{0.5, 0}, Cat: []int32{1, 2}}
	out := make([]float32, b.N)
	if err := m.Score(b, out); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%.4f %.4f\n", out[0], out[1]) // sigmoid(-1+1+2·0.5), sigmoid(-1-1)
	// Output: 0.7311 0.1192
}
