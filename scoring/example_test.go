package scoring_test

import (
	"context"
	"fmt"
	"log"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/readers/store"
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
	defer m.Close()

	b := &features.Batch{N: 2, D: 1, K: 1, Dense: []float32{0.5, 0}, Cat: []int32{1, 2}}
	out := make([]float32, b.N)
	if err := m.Score(b, out); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%.4f %.4f\n", out[0], out[1]) // sigmoid(-1+1+2·0.5), sigmoid(-1-1)
	// Output: 0.7311 0.1192
}

func ExampleTrain() {
	ctx := context.Background()
	var train, val scoring.Dataset // from the feature pipeline, with labels

	cfg := scoring.DefaultTrainConfig()
	cfg.Arch = bundle.Architecture{Kind: bundle.WideDeep, EmbeddingDim: 8, Hidden: []int{32, 16}}
	cfg.Inputs = bundle.Inputs{Dense: train.Batch.D, Cardinalities: []int{ /* from the pipeline */ }}
	cfg.Seed = 1
	bu, err := scoring.Train(ctx, cfg, train, val)
	if err != nil {
		log.Fatal(err)
	}
	bu.Name, bu.Version = "ctr-demo", "2020-08.1"
	bu.Training.Data = "gs://clicks/2020-07"
	if err := bu.Save(ctx, store.NewFileBucket("models"), "ctr-demo/2020-08.1"); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("val AUC %.3f\n", bu.Metrics["val_auc"])
}
