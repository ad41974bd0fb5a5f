package app

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/onnx"
	"github.com/adtech/scorer/scoring/training"
)

// TrainRequest asks for a model bundle trained on a labelled month. The
// rest (architecture, epochs, ...) comes from the train section of the
// configuration.
type TrainRequest struct {
	Month string // YYYY-MM
	Out   string // folder or URI the bundle is written to
	// Command is the command line, recorded in the bundle.
	Command string
}

// Train trains a model bundle on a labelled month of ad dumps and saves it;
// it returns the bundle and the URI it was saved to.
func (a *App) Train(ctx context.Context, r TrainRequest) (*bundle.Bundle, string, error) {
	if r.Month == "" || r.Out == "" {
		return nil, "", UsageError{errors.New("train: a month and an output folder are required")}
	}
	cfg := a.cfg
	tc := cfg.Train
	if err := tc.Validate(); err != nil {
		return nil, "", UsageError{fmt.Errorf("invalid configuration:\n%w", err)}
	}
	s, err := features.LoadSpec(tc.Spec)
	if err != nil {
		return nil, "", UsageError{err}
	}
	input, err := store.Open(ctx, cfg.Input)
	if err != nil {
		return nil, "", UsageError{fmt.Errorf("input: %w", err)}
	}
	outB, err := store.Open(ctx, r.Out)
	if err != nil {
		return nil, "", UsageError{fmt.Errorf("out: %w", err)}
	}
	limit, _ := jobs.ParseBadRowLimit(cfg.MaxBadRows)
	trainCfg := training.DefaultConfig()
	trainCfg.Arch = tc.ImageArchitecture(s)
	towerNote := ""
	if tc.Image.ONNX != "" && trainCfg.Arch.Image != nil {
		tw, err := readTower(ctx, tc.Image.ONNX)
		if err != nil {
			return nil, "", err
		}
		if size := s.ImageInputs()[0].Size; tw.Size != 0 && tw.Size != size {
			return nil, "", UsageError{fmt.Errorf("train.image.onnx: %s takes %d px images, the spec's image features are %d px", tc.Image.ONNX, tw.Size, size)}
		}
		trainCfg.Arch.Image = &tw.Arch
		trainCfg.ImageInit, trainCfg.FreezeImage = tw.Weights, !tc.Image.FineTune
		state := "frozen"
		if tc.Image.FineTune {
			state = "fine-tuned"
		}
		towerNote = fmt.Sprintf("onnx %s (sha256 %s), %s", tc.Image.ONNX, tw.SHA256[:12], state)
	}
	trainCfg.Epochs, trainCfg.BatchSize, trainCfg.Patience = tc.Epochs, tc.BatchSize, tc.Patience
	trainCfg.LearningRate, trainCfg.L2, trainCfg.Seed = tc.LearningRate, tc.L2, tc.Seed

	bu, err := jobs.Train(ctx, jobs.TrainJob{
		Input: input, Dir: cfg.Backfill.Dir, Month: r.Month, Spec: s,
		Name: tc.Name, Version: tc.Version, Config: trainCfg,
		ValidationFraction: tc.ValidationFraction, Split: tc.Split, TimeColumn: tc.TimeColumn, Refit: tc.Refit,
		BatchSize: cfg.BatchSize,
		CSV:       cfg.CSV.CSVOptions(), BadRows: limit,
		Command: r.Command, Log: a.log, Images: cfg.Images.Options(), MaxImages: cfg.Images.MaxTrainImages,
		Data: strings.TrimSuffix(cfg.Input, "/") + "/" + path.Join(cfg.Backfill.Dir, r.Month),
	})
	if err != nil {
		return nil, "", fmt.Errorf("train on %s: %w", r.Month, err)
	}
	bu.Training.ImageTower = towerNote
	if err := bu.Save(ctx, outB, ""); err != nil {
		return nil, "", fmt.Errorf("save bundle: %w", err)
	}
	return bu, outB.URI(""), nil
}

// Architecture is the model architecture the train section asks for: a
// wide model (a logistic regression) has no embeddings or hidden layers,
// so the deep settings are left out of it rather than refused.
func (t TrainConfig) Architecture() bundle.Architecture {
	a := bundle.Architecture{Kind: bundle.Kind(t.Arch), EmbeddingDim: t.EmbeddingDim, Hidden: t.Hidden}
	if a.Kind == bundle.Wide {
		a = bundle.Architecture{Kind: bundle.Wide}
	}
	if len(t.Image.Channels) > 0 || t.Image.Embedding > 0 {
		a.Image = &bundle.ImageTower{Channels: t.Image.Channels, Embedding: t.Image.Embedding}
	}
	return a
}

// ImageArchitecture is Architecture for a spec: train.image only when the
// spec has image features (a tabular spec trains no tower).
func (t TrainConfig) ImageArchitecture(s features.Spec) bundle.Architecture {
	a := t.Architecture()
	if len(s.ImageInputs()) == 0 {
		a.Image = nil
	}
	return a
}

// readTower reads and imports the image tower of train.image.onnx (a file
// or URI).
func readTower(ctx context.Context, uri string) (*onnx.Tower, error) {
	dir, file := path.Split(uri)
	if dir == "" {
		dir = "."
	}
	src, err := store.Open(ctx, dir)
	if err != nil {
		return nil, UsageError{fmt.Errorf("train.image.onnx: %w", err)}
	}
	data, err := store.ReadAll(ctx, src, file)
	if errors.Is(err, store.ErrNotExist) {
		return nil, UsageError{fmt.Errorf("train.image.onnx: %w", err)}
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", src.URI(file), err)
	}
	tw, err := onnx.ImportTower(data)
	if err != nil {
		return nil, UsageError{fmt.Errorf("train.image.onnx %s: %w", uri, err)}
	}
	return tw, nil
}
