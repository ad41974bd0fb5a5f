package training

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/adtech/scorer/scoring/bundle"
)

// param is a parameter and its gradient, as gorgonia.Solver takes them.
type param struct{ w, g *tensor.Dense }

func (p param) Value() gorgonia.Value         { return p.w }
func (p param) Grad() (gorgonia.Value, error) { return p.g, nil }

// The fused Adam updates weights exactly as Gorgonia's AdamSolver does,
// bit for bit, step after step, with and without L2, and zeroes the
// gradients as it does.
func TestAdamMatchesGorgonia(t *testing.T) {
	for _, l2 := range []float64{0, 1e-4} {
		rng := rand.New(rand.NewPCG(7, 8))
		sizes := []int{1, 37, 1000, 2*adamChunk + 5}
		var ours, theirs []gorgonia.ValueGrad
		for _, n := range sizes {
			w := make([]float32, n)
			for i := range w {
				w[i] = float32(rng.NormFloat64())
			}
			ours = append(ours, param{tensor.New(tensor.WithBacking(slices.Clone(w))), tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(n))})
			theirs = append(theirs, param{tensor.New(tensor.WithBacking(w)), tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(n))})
		}
		opts := []gorgonia.SolverOpt{gorgonia.WithLearnRate(0.01)}
		if l2 > 0 {
			opts = append(opts, gorgonia.WithL2Reg(l2))
		}
		ref := gorgonia.NewAdamSolver(opts...)
		fused := &adam{eta: 0.01, l2: l2}
		for step := range 20 {
			for p := range ours {
				og, tg := ours[p].(param).g.Float32s(), theirs[p].(param).g.Float32s()
				for i := range og {
					// Sparse, tiny and large gradients, as embeddings see.
					v := float32(0)
					if rng.IntN(3) > 0 {
						v = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(8)-5)))
					}
					og[i], tg[i] = v, v
				}
			}
			if err := fused.Step(ours); err != nil {
				t.Fatal(err)
			}
			if err := ref.Step(theirs); err != nil {
				t.Fatal(err)
			}
			for p := range ours {
				a, b := ours[p].(param), theirs[p].(param)
				for i, x := range a.w.Float32s() {
					if y := b.w.Float32s()[i]; math.Float32bits(x) != math.Float32bits(y) {
						t.Fatalf("l2 %g, step %d, parameter %d[%d]: %g, Gorgonia's %g", l2, step, p, i, x, y)
					}
				}
				if slices.ContainsFunc(a.g.Float32s(), func(v float32) bool { return v != 0 }) {
					t.Fatalf("l2 %g, step %d: a gradient left non-zero", l2, step)
				}
			}
		}
	}
}

// Reading the embedding tables' gradients straight from their scatter,
// unbound, trains the same weights, bit for bit, as binding every
// gradient the way Gorgonia is meant to be used.
func TestScatterGradientsUnbound(t *testing.T) {
	f := newClickFunc(benchInputs, 3)
	train, _ := f.sample(3000, 4)
	cfg := Config{Arch: bundle.Architecture{Kind: bundle.WideDeep, EmbeddingDim: 4, Hidden: []int{8}}, Inputs: benchInputs, Epochs: 2, BatchSize: 128}
	run := func(bindAll bool) *bundle.Bundle {
		t.Helper()
		bindAllGradients = bindAll
		defer func() { bindAllGradients = false }()
		bu, err := Train(context.Background(), cfg, train, Dataset{})
		if err != nil {
			t.Fatal(err)
		}
		return bu
	}
	bound, unbound := run(true), run(false)
	for name, w := range bound.Weights {
		u := unbound.Weights[name]
		if u == nil || len(u.Data) != len(w.Data) {
			t.Fatalf("%s: missing or resized", name)
		}
		for i, x := range w.Data {
			if math.Float32bits(x) != math.Float32bits(u.Data[i]) {
				t.Fatalf("%s[%d]: %g unbound, %g bound", name, i, u.Data[i], x)
			}
		}
	}
}
