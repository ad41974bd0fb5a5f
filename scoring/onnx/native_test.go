package onnx_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/perf"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/internal/modeltest"
	"github.com/adtech/scorer/scoring/onnx"
	"github.com/adtech/scorer/scoring/onnx/internal/onnxtest"
)

// demoBundle is the committed demo model (wide & deep over numeric,
// hashed, vocabulary, cross and timestamp features).
func demoBundle(t testing.TB) *bundle.Bundle {
	t.Helper()
	b, err := store.Open(context.Background(), "../../testdata/models")
	if err != nil {
		t.Fatal(err)
	}
	bu, err := bundle.Load(context.Background(), b, "ctr-demo")
	if err != nil {
		t.Fatal(err)
	}
	return bu
}

// importBundle exports a built-in bundle as PyTorch would and imports it
// with the bundle's own spec and statistics.
func importBundle(t testing.TB, bu *bundle.Bundle) *bundle.Bundle {
	t.Helper()
	im, err := onnx.Import(onnxtest.FromBundle(bu, 17), onnx.Options{Name: bu.Name + "-onnx", Spec: bu.Features, Stats: bu.Stats, File: "model.onnx"})
	if err != nil {
		t.Fatal(err)
	}
	return im
}

func scores(t testing.TB, bu *bundle.Bundle, batch int, in *features.Batch) []float32 {
	t.Helper()
	m, err := scoring.NewModel(bu, batch)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Close() }()
	out := make([]float32, in.N)
	if err := m.Score(in, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// The same weights, exported as torch.onnx.export lays them out (per
// feature tables, dense features first, [out, in] Gemm weights) and
// imported, score what the built-in graph scores: two independent paths to
// the same function (the layouts differ; only the float32 summation order
// of the first layer may).
func TestImportedScoresEqualBuiltIn(t *testing.T) {
	mlp, err := perf.Bundle(perf.MLP, 3)
	if err != nil {
		t.Fatal(err)
	}
	logreg, err := perf.Bundle(perf.LogReg, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, bu := range []*bundle.Bundle{demoBundle(t), mlp, logreg} {
		t.Run(bu.Name, func(t *testing.T) {
			im := importBundle(t, bu)
			// The per-feature tables were stacked: one lookup for the deep
			// part's concatenation, one for the wide part's sum.
			var stacked, tables, parts int
			for name := range im.Weights {
				switch {
				case strings.HasSuffix(name, ".weight") && strings.Contains(name, "/stacked_"):
					stacked++
				case strings.HasPrefix(name, "deep.emb_"), strings.HasPrefix(name, "wide.emb_"):
					tables++
				}
			}
			for _, has := range []bool{bu.Arch.HasDeep(), bu.Arch.HasWide()} {
				if has {
					parts++
				}
			}
			if stacked != parts || tables != 0 {
				t.Errorf("imported weights: %d stacked tables and %d per-feature tables, want %d and 0", stacked, tables, parts)
			}
			in := modeltest.RandomBatch(700, bu.Inputs, 5)
			want := scores(t, bu, 256, in)
			for _, batch := range []int{1, 256, 1024} {
				got := scores(t, im, batch, in)
				worst := 0.0
				for i := range want {
					worst = max(worst, math.Abs(float64(got[i])-float64(want[i])))
				}
				if worst > 1e-6 {
					t.Errorf("batch %d: imported scores differ from the built-in model's by up to %g", batch, worst)
				}
			}
		})
	}
}

// An imported ctr-mlp runs at the built-in model's speed: the same fused
// ops (the packed matrix kernel, the gather written into the concatenated
// input). Compare with BenchmarkReferenceModel/model=ctr-mlp.
func BenchmarkImportedReferenceModel(b *testing.B) {
	for _, name := range []string{perf.MLP, perf.LogReg} {
		bu, err := perf.Bundle(name, 1)
		if err != nil {
			b.Fatal(err)
		}
		im := importBundle(b, bu)
		in, err := perf.NewGenerator(2).Batch(8192)
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range []struct {
			kind string
			bu   *bundle.Bundle
		}{{"built-in", bu}, {"onnx", im}} {
			b.Run(fmt.Sprintf("model=%s/%s/batch=8192", name, m.kind), func(b *testing.B) {
				model, err := scoring.NewModel(m.bu, 8192)
				if err != nil {
					b.Fatal(err)
				}
				out := make([]float32, in.N)
				if err := model.Score(in, out); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if err := model.Score(in, out); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*in.N)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}
