package training_test

import (
	"context"
	"fmt"
	"log"

	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/training"
)

func ExampleTrain() {
	ctx := context.Background()
	var train, val training.Dataset // from the feature pipeline, with labels

	cfg := training.DefaultConfig()
	cfg.Arch = bundle.Architecture{Kind: bundle.WideDeep, EmbeddingDim: 8, Hidden: []int{32, 16}}
	cfg.Inputs = bundle.Inputs{Dense: train.Batch.D, Cardinalities: []int{ /* from the pipeline */ }}
	cfg.Seed = 1
	bu, err := training.Train(ctx, cfg, train, val)
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
