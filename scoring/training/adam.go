package training

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/adtech/scorer/scoring/kernels"
)

// adam is Gorgonia's AdamSolver for float32 parameters (batch scaling,
// clipping and L1 off, as Train uses it), computing the same float32
// operations in the same order, so the same weights bit for bit
// (TestAdamMatchesGorgonia), in one vectorised pass (kernels.AdamUpdate)
// over each parameter, its gradient and its two moments, which it keeps
// from step to step.
// Gorgonia's clones and combines whole tensors a dozen times a step: on
// the reference ctr-mlp (29M parameters, nearly all embeddings) that was
// 0.9 s a step, the whole of training's time.
type adam struct {
	eta, l2 float64 // step size; L2 penalty (0: none)
	iter    int
	m, v    [][]float32 // the moments of each parameter of the model
}

// Adam's other constants, Gorgonia's defaults.
const (
	adamBeta1 = 0.9
	adamBeta2 = 0.999
	adamEps   = 1e-8
)

// Step updates every parameter of model from its gradient, which it then
// zeroes, as gorgonia.Solver's Step does.
func (s *adam) Step(model []gorgonia.ValueGrad) error {
	if s.m == nil {
		s.m, s.v = make([][]float32, len(model)), make([][]float32, len(model))
	}
	if len(model) != len(s.m) {
		return fmt.Errorf("adam: %d parameters, %d at the first step", len(model), len(s.m))
	}
	s.iter++
	c1 := float32(1) / float32(1-math.Pow(adamBeta1, float64(s.iter)))
	c2 := float32(1) / float32(1-math.Pow(adamBeta2, float64(s.iter)))
	for i, n := range model {
		w, g, err := float32sOf(n)
		if err != nil {
			return fmt.Errorf("adam: parameter %d: %w", i, err)
		}
		if s.m[i] == nil {
			s.m[i], s.v[i] = make([]float32, len(w)), make([]float32, len(w))
		}
		s.parallel(w, g, s.m[i], s.v[i], c1, c2)
	}
	return nil
}

// adamChunk is the least work worth a goroutine of its own.
const adamChunk = 1 << 16

// parallel is update over GOMAXPROCS goroutines for a large parameter (the
// embedding tables): each element's update depends on nothing else, so
// the result is the same however the work is split.
func (s *adam) parallel(w, g, m, v []float32, c1, c2 float32) {
	parts := min(runtime.GOMAXPROCS(0), len(w)/adamChunk)
	if parts < 2 {
		s.update(w, g, m, v, c1, c2)
		return
	}
	var wg sync.WaitGroup
	size := (len(w) + parts - 1) / parts
	for lo := 0; lo < len(w); lo += size {
		hi := min(lo+size, len(w))
		wg.Go(func() { s.update(w[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], c1, c2) })
	}
	wg.Wait()
}

// update is one step for one parameter; c1 and c2 are the inverse bias
// corrections. kernels.AdamUpdate computes what Gorgonia's
// AdamSolver.Step does, tensor operation by tensor operation, on the
// vector kernel of the CPU.
func (s *adam) update(w, g, m, v []float32, c1, c2 float32) {
	beta1, beta2 := float32(adamBeta1), float32(adamBeta2)
	kernels.AdamUpdate(w, g, m, v, &kernels.Adam{
		Beta1: beta1, Beta2: beta2, OneMinusBeta1: float32(1) - beta1, OneMinusBeta2: float32(1) - beta2,
		InvCorrection1: c1, InvCorrection2: c2, Eps: float32(adamEps), NegEta: -float32(s.eta),
		L2: float32(s.l2), L2Used: s.l2 != 0,
	})
}

// float32sOf returns the data of a parameter and of its gradient.
func float32sOf(n gorgonia.ValueGrad) (w, g []float32, err error) {
	gv, err := n.Grad()
	if err != nil {
		return nil, nil, err
	}
	wd, ok1 := n.Value().(*tensor.Dense)
	gd, ok2 := gv.(*tensor.Dense)
	if !ok1 || !ok2 || wd.Dtype() != tensor.Float32 || gd.Dtype() != tensor.Float32 || wd.Size() != gd.Size() {
		return nil, nil, fmt.Errorf("want float32 tensors of one size, have %T and %T", n.Value(), gv)
	}
	return wd.Float32s(), gd.Float32s(), nil
}
