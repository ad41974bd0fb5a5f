package training

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/internal/modeltest"
	"github.com/adtech/scorer/scoring/metrics"
)

// imageDataset is n rows of random tabular input for in, each with one
// image per image feature drawn from u random images (or none, one row in
// ten).
func imageDataset(in bundle.Inputs, n, u int, seed uint64) Dataset {
	rng := rand.New(rand.NewPCG(seed, 19))
	ds := Dataset{Batch: *modeltest.RandomBatch(n, in, seed), Labels: make([]float32, n)}
	ds.Images = modeltest.RandomImages(u, in.ImageSize, seed)
	ds.ImageIndex = make([]int32, n*in.Images)
	for i := range ds.ImageIndex {
		ds.ImageIndex[i] = int32(rng.IntN(u))
		if rng.IntN(10) == 0 {
			ds.ImageIndex[i] = -1
		}
	}
	return ds
}

// TestImageTrainingGraphMatchesScoring: the tower that training
// differentiates (Gorgonia's im2col, max pooling and mean in the training
// graph) computes the same scores as the packed tower and model that
// score, for the same weights, rows without images included.
func TestImageTrainingGraphMatchesScoring(t *testing.T) {
	bu := modeltest.WithImages(modeltest.RandomBundle(bundle.WideDeep, 2, []int{5, 3}, 4, []int{8}, 1),
		2, 16, bundle.ImageTower{Channels: []int{4, 6}, Embedding: 3}, 2)
	const batch, u = 32, 9
	ds := imageDataset(bu.Inputs, batch, u, 3)
	cfg := Config{Arch: bu.Arch, Inputs: bu.Inputs, BatchSize: batch, LearningRate: 0.01}
	tr, err := newTrainer(cfg.withDefaults(), bu, u)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	rows := make([]int, batch-5) // a short batch: padding rows too
	for i := range rows {
		rows[i] = i
	}
	tr.fill(&ds, rows)
	if err := tr.vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	logits := tr.net.Logit().Value().Data().([]float32)

	m, err := scoring.NewModel(bu, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Close() }()
	want, err := scoreAll(m, bu, &ds)
	if err != nil {
		t.Fatal(err)
	}
	for r := range rows {
		got := 1 / (1 + math.Exp(-float64(logits[r])))
		if math.Abs(got-float64(want[r])) > 1e-5 {
			t.Fatalf("row %d: training graph %g, scoring %g", r, got, want[r])
		}
	}
}

// TestTrainLearnsFromImages: clicks depend on the image alone (on how red
// it is); a model with the image tower learns it, and beats the same
// model without images on held-out rows.
func TestTrainLearnsFromImages(t *testing.T) {
	in := bundle.Inputs{Dense: 2, Cardinalities: []int{4}, Images: 1, ImageSize: 8}
	const u = 24
	// label draws the clicks and returns the true probabilities.
	label := func(ds *Dataset, seed uint64) []float32 {
		rng := rand.New(rand.NewPCG(seed, 23))
		probs := make([]float32, ds.Batch.N)
		plane := in.ImageSize * in.ImageSize
		for r := range ds.Batch.N {
			z := -1.0
			if k := ds.ImageIndex[r]; k >= 0 {
				var red float64
				for _, v := range ds.Images[int(k)*3*plane : int(k)*3*plane+plane] {
					red += float64(v)
				}
				// A random image's red mean is 0.5 ± 0.036: a strong signal.
				z = 40 * (red/float64(plane) - 0.5)
			}
			probs[r] = float32(1 / (1 + math.Exp(-z)))
			if rng.Float64() < float64(probs[r]) {
				ds.Labels[r] = 1
			}
		}
		return probs
	}
	train, val := imageDataset(in, 3000, u, 1), imageDataset(in, 2000, u, 1)
	// The same images (seed), other rows.
	val.ImageIndex = imageDataset(in, 2000, u, 2).ImageIndex
	label(&train, 3)
	best := metrics.AUC(label(&val, 4), val.Labels) // the true probabilities' AUC: the most a model can reach

	arch := bundle.Architecture{
		Kind: bundle.WideDeep, EmbeddingDim: 2, Hidden: []int{8},
		Image: &bundle.ImageTower{Channels: []int{4}, Embedding: 2},
	}
	cfg := Config{Arch: arch, Inputs: in, Epochs: 8, BatchSize: 64, LearningRate: 0.01, Seed: 1}
	withImages, err := Train(context.Background(), cfg, train, val)
	if err != nil {
		t.Fatal(err)
	}

	tab := func(ds Dataset) Dataset {
		ds.Images, ds.ImageIndex = nil, nil
		return ds
	}
	cfg.Arch.Image, cfg.Inputs.Images, cfg.Inputs.ImageSize = nil, 0, 0
	tabular, err := Train(context.Background(), cfg, tab(train), tab(val))
	if err != nil {
		t.Fatal(err)
	}
	img, plain := withImages.Metrics["val_auc"], tabular.Metrics["val_auc"]
	t.Logf("validation AUC: %.3f with images, %.3f without, %.3f from the true probabilities", img, plain, best)
	if img < best-0.03 || img < plain+0.15 {
		t.Fatalf("validation AUC %.3f with images, %.3f without, %.3f at best: the tower did not learn the image signal", img, plain, best)
	}
}

// TestTrainFrozenImageTower: an imported tower's weights start the
// training (ImageInit) and, frozen, end it unchanged, bit for bit, while
// the rest of the model (the missing-image embedding included) learns.
func TestTrainFrozenImageTower(t *testing.T) {
	in := bundle.Inputs{Dense: 2, Cardinalities: []int{4}, Images: 1, ImageSize: 8}
	tower := bundle.ImageTower{Channels: []int{3}, Embedding: 2}
	init := modeltest.WithImages(modeltest.RandomBundle(bundle.WideDeep, 2, []int{4}, 2, []int{4}, 5), 1, 8, tower, 6).Weights
	imported := map[string]*bundle.Param{}
	for _, name := range []string{"image.conv0.w", "image.conv0.b", "image.proj.w", "image.proj.b"} {
		imported[name] = init[name]
	}
	ds := imageDataset(in, 600, 10, 7)
	for i := range ds.Labels {
		ds.Labels[i] = float32(i % 2)
	}
	cfg := Config{
		Arch:   bundle.Architecture{Kind: bundle.WideDeep, EmbeddingDim: 2, Hidden: []int{4}, Image: &tower},
		Inputs: in, Epochs: 2, BatchSize: 64, LearningRate: 0.05, Seed: 1, ImageInit: imported, FreezeImage: true,
	}
	bu, err := Train(context.Background(), cfg, ds, Dataset{})
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range imported {
		if !slices.Equal(bu.Weights[name].Data, p.Data) {
			t.Errorf("frozen %s changed in training", name)
		}
	}
	if slices.Equal(bu.Weights["image.missing"].Data, make([]float32, 2)) || slices.Equal(bu.Weights["deep.l0.w"].Data, make([]float32, len(bu.Weights["deep.l0.w"].Data))) {
		t.Error("the rest of the model did not train")
	}

	cfg.FreezeImage = false
	tuned, err := Train(context.Background(), cfg, ds, Dataset{})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(tuned.Weights["image.conv0.w"].Data, imported["image.conv0.w"].Data) {
		t.Error("fine-tuning left the imported tower as it was")
	}
	cfg.ImageInit = map[string]*bundle.Param{"image.conv0.w": bundle.NewParam(5, 3, 3, 3)}
	if _, err := Train(context.Background(), cfg, ds, Dataset{}); !errors.Is(err, ErrConfig) {
		t.Fatalf("initial weights of the wrong shape: %v, want ErrConfig", err)
	}
}
