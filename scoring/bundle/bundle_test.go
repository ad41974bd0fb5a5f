package bundle_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nlpodyssey/safetensors"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/internal/modeltest"
)

func fullBundle() *bundle.Bundle {
	bu := modeltest.RandomBundle(bundle.WideDeep, 2, []int{4, 6}, 3, []int{5, 2}, 9)
	bu.Name, bu.Version = "ctr-demo", "2020-08.1"
	fill := 0.0
	bu.Features = features.Spec{
		Label: "click",
		Features: []features.Feature{
			{Name: "price", Kind: features.Numeric, Column: "price", Fill: &fill, Log1p: true, Standardize: true},
			{Name: "site", Kind: features.Categorical, Column: "site", HashBuckets: 3},
			{Name: "age", Kind: features.Numeric, Column: "age"},
			{Name: "device", Kind: features.Categorical, Column: "device", Vocabulary: &features.VocabSpec{MaxSize: 5}},
		},
	}
	bu.Stats = features.Stats{
		Numeric: map[string]features.NumericStats{"price": {Mean: 1.5, Std: 0.25}, "age": {Mean: 30, Std: 9}},
		Vocab:   map[string][]string{"device": {"ios", "android", "web", "tv", "other"}},
	}
	bu.Metrics = map[string]float64{"auc": 0.75, "logloss": 0.41, "rows": 1000}
	bu.Training = bundle.TrainingInfo{
		Data: "gs://clicks/2020-07", Rows: 1000, Command: "scorer train --month 2020-07", Seed: 7,
		Epochs: 10, BatchSize: 256, LearningRate: 0.001, L2: 1e-5,
		TrainedAt: time.Date(2020, 8, 1, 3, 4, 5, 0, time.UTC),
	}
	return bu
}

func TestBundleRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []bundle.Kind{bundle.Wide, bundle.Deep, bundle.WideDeep} {
		t.Run(string(kind), func(t *testing.T) {
			bu := fullBundle()
			if kind != bundle.WideDeep {
				bu = modeltest.RandomBundle(kind, 3, []int{2, 5, 7}, 4, map[bundle.Kind][]int{bundle.Deep: {3}}[kind], 1)
			}
			b := store.NewFileBucket(t.TempDir())
			if err := bu.Save(ctx, b, "models/ctr/v1"); err != nil {
				t.Fatal(err)
			}
			got, err := bundle.Load(ctx, b, "models/ctr/v1")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, bu) {
				t.Errorf("loaded bundle differs:\n got %+v\nwant %+v", got, bu)
			}
		})
	}
}

func TestBundleFileLayout(t *testing.T) {
	dir := t.TempDir()
	if err := fullBundle().Save(context.Background(), store.NewFileBucket(dir), "b"); err != nil {
		t.Fatal(err)
	}
	yml, err := os.ReadFile(filepath.Join(dir, "b", bundle.ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"format: 1\n", "name: ctr-demo\n", "kind: wide_deep\n", "cardinalities: [4, 6]\n", "hidden: [5, 2]\n"} {
		if !strings.Contains(string(yml), want) {
			t.Errorf("%s lacks %q:\n%s", bundle.ModelFile, want, yml)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "b", bundle.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	st, err := safetensors.Deserialize(data)
	if err != nil {
		t.Fatal(err)
	}
	tv, ok := st.Tensor("deep.l0.w")
	if !ok || tv.DType() != safetensors.F32 || !reflect.DeepEqual(tv.Shape(), []uint64{2*3 + 2, 5}) {
		t.Errorf("deep.l0.w: found %v, %v %v", ok, tv.DType(), tv.Shape())
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(bu *bundle.Bundle)
		want   string
	}{
		{"valid", func(*bundle.Bundle) {}, ""},
		{"missing tensor", func(bu *bundle.Bundle) { delete(bu.Weights, "deep.l1.b") }, `missing tensor "deep.l1.b" (shape [2])`},
		{"nil tensor", func(bu *bundle.Bundle) { bu.Weights["wide.bias"] = nil }, `missing tensor "wide.bias"`},
		{"wrong shape", func(bu *bundle.Bundle) { bu.Weights["deep.emb"] = bundle.NewParam(10, 4) }, `tensor "deep.emb" has shape [10 4], want [10 3]`},
		{"wrong rank", func(bu *bundle.Bundle) { bu.Weights["deep.out.b"] = bundle.NewParam(1, 1) }, `tensor "deep.out.b" has shape [1 1], want [1]`},
		{"short data", func(bu *bundle.Bundle) { p := bu.Weights["wide.dense"]; p.Data = p.Data[:1] }, `tensor "wide.dense" has 1 values, want 2`},
		{"unexpected tensor", func(bu *bundle.Bundle) { bu.Weights["deep.l0.weight"] = bundle.NewParam(1) }, `unexpected tensor(s) "deep.l0.weight"`},
		{"input width changed", func(bu *bundle.Bundle) { bu.Inputs.Dense = 3 }, `tensor "wide.dense" has shape [2 1], want [3 1]`},
		{"unknown kind", func(bu *bundle.Bundle) { bu.Arch.Kind = "fm" }, `unknown architecture kind "fm"`},
		{"no embedding dim", func(bu *bundle.Bundle) { bu.Arch.EmbeddingDim = 0 }, "arch.embedding_dim is 0"},
		{"zero hidden", func(bu *bundle.Bundle) { bu.Arch.Hidden[1] = 0 }, "arch.hidden[1] is 0"},
		{"zero cardinality", func(bu *bundle.Bundle) { bu.Inputs.Cardinalities[1] = 0 }, "inputs.cardinalities[1] is 0"},
		{"no inputs", func(bu *bundle.Bundle) { bu.Inputs = bundle.Inputs{} }, "model has no inputs"},
		{"hidden on wide", func(bu *bundle.Bundle) { bu.Arch.Kind = bundle.Wide }, "arch.hidden is set for a wide model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bu := fullBundle()
			tt.modify(bu)
			err := bu.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate: %v, want an error containing %q", err, tt.want)
			}
			if !errors.Is(err, bundle.ErrInvalid) {
				t.Errorf("error does not wrap bundle.ErrInvalid: %v", err)
			}
		})
	}
}

func TestLoadBundleErrors(t *testing.T) {
	ctx := context.Background()
	f32 := func(name string, shape []uint64, dtype safetensors.DType) []byte {
		n := uint64(1)
		for _, d := range shape {
			n *= d
		}
		tv, err := safetensors.NewTensorView(dtype, shape, make([]byte, n*dtype.Size()))
		if err != nil {
			t.Fatal(err)
		}
		data, err := safetensors.Serialize(map[string]safetensors.TensorView{name: tv}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	tests := []struct {
		name   string
		modify func(t *testing.T, dir string) // the bundle is saved in dir/b first
		want   string
		target error
	}{
		{"no model.yaml", func(t *testing.T, dir string) { rm(t, dir, bundle.ModelFile) }, "model.yaml", store.ErrNotExist},
		{"no weights", func(t *testing.T, dir string) { rm(t, dir, bundle.WeightsFile) }, "weights.safetensors", store.ErrNotExist},
		{"garbage weights", func(t *testing.T, dir string) { write(t, dir, bundle.WeightsFile, []byte("not a safetensors file")) }, "weights.safetensors: invalid model bundle: not a safetensors file", bundle.ErrInvalid},
		{"truncated weights", func(t *testing.T, dir string) { truncate(t, dir, bundle.WeightsFile, 100) }, "not a safetensors file", bundle.ErrInvalid},
		{"huge header", func(t *testing.T, dir string) {
			data := binary.LittleEndian.AppendUint64(nil, 1<<40)
			write(t, dir, bundle.WeightsFile, append(data, "{}"...))
		}, "not a safetensors file", bundle.ErrInvalid},
		{"f64 weights", func(t *testing.T, dir string) {
			write(t, dir, bundle.WeightsFile, f32("wide.bias", []uint64{1}, safetensors.F64))
		}, `tensor "wide.bias" has dtype F64, want F32`, bundle.ErrInvalid},
		{"weights of another model", func(t *testing.T, dir string) {
			write(t, dir, bundle.WeightsFile, f32("wide.bias", []uint64{1}, safetensors.F32))
		}, `missing tensor "wide.emb"`, bundle.ErrInvalid},
		{"unknown yaml field", func(t *testing.T, dir string) { appendTo(t, dir, bundle.ModelFile, "colour: blue\n") }, "field colour not found", bundle.ErrInvalid},
		{"not yaml", func(t *testing.T, dir string) { write(t, dir, bundle.ModelFile, []byte("{{{")) }, "decode", bundle.ErrInvalid},
		{"other format", func(t *testing.T, dir string) {
			data := readFile(t, dir, bundle.ModelFile)
			write(t, dir, bundle.ModelFile, []byte(strings.Replace(string(data), "format: 1", "format: 2", 1)))
		}, "format 2, want 1", bundle.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			b := store.NewFileBucket(dir)
			if err := fullBundle().Save(ctx, b, "b"); err != nil {
				t.Fatal(err)
			}
			tt.modify(t, filepath.Join(dir, "b"))
			_, err := bundle.Load(ctx, b, "b")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("bundle.Load: %v, want an error containing %q", err, tt.want)
			}
			if !errors.Is(err, tt.target) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.target)
			}
		})
	}
}

func TestSaveRejectsInvalidBundle(t *testing.T) {
	bu := fullBundle()
	delete(bu.Weights, "deep.emb")
	dir := t.TempDir()
	err := bu.Save(context.Background(), store.NewFileBucket(dir), "b")
	if !errors.Is(err, bundle.ErrInvalid) || !strings.Contains(err.Error(), "deep.emb") {
		t.Fatalf("Save: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("Save of an invalid bundle wrote %v", entries)
	}
}

func rm(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func appendTo(t *testing.T, dir, name, text string) {
	t.Helper()
	write(t, dir, name, append(readFile(t, dir, name), text...))
}

func truncate(t *testing.T, dir, name string, n int) {
	t.Helper()
	write(t, dir, name, readFile(t, dir, name)[:n])
}
