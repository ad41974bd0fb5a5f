package training

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/metrics"
)

func TestTrainLearnsClickFunction(t *testing.T) {
	in := bundle.Inputs{Dense: 3, Cardinalities: []int{10, 20, 30, 5}}
	f := newClickFunc(in, 1)
	train, _ := f.sample(20000, 2)
	val, trueProbs := f.sample(5000, 3)
	best := metrics.AUC(trueProbs, val.Labels)

	cfg := DefaultConfig()
	cfg.Arch = bundle.Architecture{Kind: bundle.WideDeep, EmbeddingDim: 4, Hidden: []int{16, 8}}
	cfg.Inputs = in
	cfg.Epochs = 4
	cfg.LearningRate = 0.005
	cfg.Seed = 42
	at := time.Date(2020, 8, 1, 12, 0, 0, 0, time.UTC)
	cfg.Now = func() time.Time { return at }
	var epochs []EpochStats
	cfg.Progress = func(s EpochStats) { epochs = append(epochs, s) }

	bu, err := Train(context.Background(), cfg, train, val)
	if err != nil {
		t.Fatal(err)
	}
	got := bu.Metrics["val_auc"]
	t.Logf("val AUC %.4f, true probabilities' AUC %.4f", got, best)
	if math.Abs(got-best) > 0.02 {
		t.Errorf("val AUC %.4f, want within 0.02 of the true probabilities' %.4f", got, best)
	}
	if ll, trueLL := bu.Metrics["val_logloss"], metrics.LogLoss(trueProbs, val.Labels); ll > trueLL+0.02 {
		t.Errorf("val log loss %.4f, true probabilities' %.4f", ll, trueLL)
	}
	for _, k := range []string{"auc", "logloss", "rows", "val_auc", "val_logloss", "val_rows"} {
		if _, ok := bu.Metrics[k]; !ok {
			t.Errorf("metric %q missing from %v", k, bu.Metrics)
		}
	}
	if bu.Metrics["rows"] != 20000 || bu.Metrics["val_rows"] != 5000 {
		t.Errorf("rows metrics %v", bu.Metrics)
	}
	wantInfo := bundle.TrainingInfo{Rows: 20000, Seed: 42, Epochs: 4, Patience: DefaultPatience, BatchSize: DefaultBatchSize, LearningRate: 0.005, TrainedAt: at}
	// The kept epoch is the one with the lowest validation log loss, and
	// its weights are the bundle's.
	bestLoss := math.Inf(1)
	for _, e := range epochs {
		if e.ValLogLoss < bestLoss {
			bestLoss, wantInfo.BestEpoch = e.ValLogLoss, e.Epoch
		}
	}
	if got := bu.Metrics["val_logloss"]; got != bestLoss {
		t.Errorf("val_logloss %v, want the best epoch's %v", got, bestLoss)
	}
	if !trainingInfoEqual(bu.Training, wantInfo) {
		t.Errorf("Training = %+v, want %+v", bu.Training, wantInfo)
	}
	if len(epochs) != 4 || epochs[3].Epoch != 4 || math.IsNaN(epochs[3].ValAUC) || epochs[3].Loss <= 0 {
		t.Errorf("progress reports %+v", epochs)
	}
	// The trained bundle scores as the training metrics say.
	m, err := scoring.NewModel(bu, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Close() }()
	p := make([]float32, val.Batch.N)
	if err := m.Score(&val.Batch, p); err != nil {
		t.Fatal(err)
	}
	if a := metrics.AUC(p, val.Labels); math.Abs(a-got) > 1e-9 {
		t.Errorf("rescored val AUC %g, metrics say %g", a, got)
	}
}

func trainingInfoEqual(a, b bundle.TrainingInfo) bool {
	eq := a.TrainedAt.Equal(b.TrainedAt)
	a.TrainedAt, b.TrainedAt = time.Time{}, time.Time{}
	return eq && a == b
}

func TestTrainDeterministic(t *testing.T) {
	in := bundle.Inputs{Dense: 2, Cardinalities: []int{5, 8}}
	f := newClickFunc(in, 4)
	train, _ := f.sample(1000, 5)
	train.Batch.N, train.Labels = 999, train.Labels[:999] // a short last minibatch
	train.Batch.Dense, train.Batch.Cat = train.Batch.Dense[:999*2], train.Batch.Cat[:999*2]
	run := func(t *testing.T, kind bundle.Kind, seed int64) *bundle.Bundle {
		cfg := Config{Arch: bundle.Architecture{Kind: kind, EmbeddingDim: 3, Hidden: []int{4}}, Inputs: in, Epochs: 2, BatchSize: 100, Seed: seed}
		if kind == bundle.Wide {
			cfg.Arch = bundle.Architecture{Kind: bundle.Wide}
		}
		bu, err := Train(context.Background(), cfg, train, Dataset{})
		if err != nil {
			t.Fatal(err)
		}
		return bu
	}
	same := func(a, b *bundle.Bundle) bool {
		for name, p := range a.Weights {
			if !slices.Equal(p.Data, b.Weights[name].Data) {
				return false
			}
		}
		return true
	}
	for _, kind := range []bundle.Kind{bundle.Wide, bundle.Deep, bundle.WideDeep} {
		t.Run(string(kind), func(t *testing.T) {
			a, b, c := run(t, kind, 1), run(t, kind, 1), run(t, kind, 2)
			if !same(a, b) {
				t.Error("two runs with one seed differ")
			}
			if same(a, c) {
				t.Error("runs with different seeds agree")
			}
			if _, ok := a.Metrics["val_auc"]; ok {
				t.Errorf("val metrics without validation data: %v", a.Metrics)
			}
			initial, err := initBundle(Config{Arch: a.Arch, Inputs: in, Seed: 1}, 0.5)
			if err != nil {
				t.Fatal(err)
			}
			if same(a, initial) {
				t.Error("training did not change the weights")
			}
		})
	}
}

func TestTrainErrors(t *testing.T) {
	in := bundle.Inputs{Dense: 2, Cardinalities: []int{3}}
	f := newClickFunc(in, 1)
	good, _ := f.sample(50, 2)
	cfg := Config{Arch: bundle.Architecture{Kind: bundle.Wide}, Inputs: in, Epochs: 1, BatchSize: 16}
	tests := []struct {
		name   string
		cfg    func(c *Config)
		data   func(d *Dataset)
		val    func(d *Dataset)
		ctx    func() context.Context
		want   string
		target error
	}{
		{name: "negative epochs", cfg: func(c *Config) { c.Epochs = -1 }, want: "epochs -1"},
		{name: "negative batch", cfg: func(c *Config) { c.BatchSize = -2 }, want: "batch size -2"},
		{name: "bad learning rate", cfg: func(c *Config) { c.LearningRate = math.NaN() }, want: "learning rate NaN"},
		{name: "negative l2", cfg: func(c *Config) { c.L2 = -1 }, want: "l2 -1", target: ErrConfig},
		{name: "negative patience", cfg: func(c *Config) { c.Patience = -1 }, want: "patience -1", target: ErrConfig},
		{name: "bad arch", cfg: func(c *Config) { c.Arch.Kind = "linear" }, want: `unknown architecture kind "linear"`, target: bundle.ErrInvalid},
		{name: "hidden for wide", cfg: func(c *Config) { c.Arch.Hidden = []int{4} }, want: "hidden", target: ErrConfig},
		{name: "no rows", data: func(d *Dataset) {
			*d = Dataset{Batch: d.Batch, Labels: nil}
			d.Batch.N = 0
			d.Batch.Dense, d.Batch.Cat = nil, nil
		}, want: "no rows", target: scoring.ErrInput},
		{name: "dense width", cfg: func(c *Config) { c.Inputs.Dense = 3 }, want: "2 dense features, config has 3", target: scoring.ErrInput},
		{name: "labels", data: func(d *Dataset) { d.Labels = d.Labels[:10] }, want: "10 labels for 50 rows", target: scoring.ErrInput},
		{name: "label range", data: func(d *Dataset) { d.Labels[7] = 2 }, want: "row 7: label 2 is not in [0, 1]", target: scoring.ErrInput},
		{name: "nan feature", data: func(d *Dataset) { d.Batch.Dense[5] = float32(math.NaN()) }, want: "row 2: dense feature 1 is NaN", target: scoring.ErrInput},
		{name: "index range", data: func(d *Dataset) { d.Batch.Cat[9] = 3 }, want: "row 9: categorical feature 0: index 3 out of range [0, 3)", target: scoring.ErrInput},
		{name: "validation data", val: func(d *Dataset) { d.Batch.Cat[0] = -1 }, want: "validation data", target: scoring.ErrInput},
		{name: "cancelled", ctx: func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, want: "context canceled", target: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			c.Inputs.Cardinalities = slices.Clone(in.Cardinalities)
			if tt.cfg != nil {
				tt.cfg(&c)
			}
			clone := func(d Dataset) Dataset {
				d.Labels = slices.Clone(d.Labels)
				d.Batch.Dense, d.Batch.Cat = slices.Clone(d.Batch.Dense), slices.Clone(d.Batch.Cat)
				return d
			}
			data, val := clone(good), clone(good)
			if tt.data != nil {
				tt.data(&data)
			}
			if tt.val != nil {
				tt.val(&val)
			}
			ctx := context.Background()
			if tt.ctx != nil {
				ctx = tt.ctx()
			}
			_, err := Train(ctx, c, data, val)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Train: %v, want an error containing %q", err, tt.want)
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.target)
			}
		})
	}
}

// TestTrainEarlyStopping overfits a small noisy sample with a large step:
// validation log loss must turn up, training must stop Patience epochs
// after the best one, and the bundle must hold the best epoch's weights
// (its metrics say so, and so does rescoring the validation rows). Without
// validation data, every epoch runs and no NaN reaches the metrics.
func TestTrainEarlyStopping(t *testing.T) {
	in := bundle.Inputs{Dense: 2, Cardinalities: []int{50, 50, 50}}
	f := newClickFunc(in, 9)
	train, _ := f.sample(600, 10)
	val, _ := f.sample(600, 11)
	cfg := Config{
		Arch: bundle.Architecture{Kind: bundle.WideDeep, EmbeddingDim: 8, Hidden: []int{32}}, Inputs: in,
		Epochs: 30, BatchSize: 32, LearningRate: 0.02, Seed: 3, Patience: 2,
	}
	var epochs []EpochStats
	cfg.Progress = func(s EpochStats) { epochs = append(epochs, s) }
	bu, err := Train(context.Background(), cfg, train, val)
	if err != nil {
		t.Fatal(err)
	}
	best := bu.Training.BestEpoch
	if best < 1 || best >= 30 || bu.Training.Epochs != best+2 || len(epochs) != best+2 {
		t.Fatalf("best epoch %d, ran %d (%d reports), want early stopping 2 epochs after the best", best, bu.Training.Epochs, len(epochs))
	}
	for _, e := range epochs {
		if e.Epoch != best && e.ValLogLoss <= epochs[best-1].ValLogLoss {
			t.Errorf("epoch %d: val log loss %v, best epoch %d has %v", e.Epoch, e.ValLogLoss, best, epochs[best-1].ValLogLoss)
		}
		if e.Best != (e.ValLogLoss <= minLoss(epochs[:e.Epoch])) {
			t.Errorf("epoch %d: Best = %v", e.Epoch, e.Best)
		}
	}
	m, err := scoring.NewModel(bu, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Close() }()
	p := make([]float32, val.Batch.N)
	if err := m.Score(&val.Batch, p); err != nil {
		t.Fatal(err)
	}
	if got, want := metrics.LogLoss(p, val.Labels), epochs[best-1].ValLogLoss; got != want || bu.Metrics["val_logloss"] != want {
		t.Errorf("bundle's val log loss: rescored %v, metrics %v; best epoch had %v", got, bu.Metrics["val_logloss"], want)
	}
	for _, k := range []string{"logloss_const", "val_logloss_const", "calibration", "val_calibration"} {
		if _, ok := bu.Metrics[k]; !ok {
			t.Errorf("metric %s missing from %v", k, bu.Metrics)
		}
	}

	cfg.Epochs, epochs = 3, nil
	bu, err = Train(context.Background(), cfg, train, Dataset{})
	if err != nil {
		t.Fatal(err)
	}
	if bu.Training.Epochs != 3 || bu.Training.BestEpoch != 0 || len(epochs) != 3 {
		t.Errorf("without validation: ran %d, best %d, %d reports", bu.Training.Epochs, bu.Training.BestEpoch, len(epochs))
	}
	for k, v := range bu.Metrics {
		if strings.HasPrefix(k, "val_") || math.IsNaN(v) {
			t.Errorf("without validation: metric %s = %v", k, v)
		}
	}
}

func minLoss(es []EpochStats) float64 {
	m := math.Inf(1)
	for _, e := range es {
		m = min(m, e.ValLogLoss)
	}
	return m
}
