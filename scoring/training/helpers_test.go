package training

import (
	"math"
	"math/rand/v2"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/internal/modeltest"
)

// clickFunc is a known logistic click model: an additive part per
// categorical value and dense feature, and one dense interaction.
type clickFunc struct {
	in    bundle.Inputs
	bias  float64
	cat   [][]float64
	dense []float64
	cross float64
}

func newClickFunc(in bundle.Inputs, seed uint64) *clickFunc {
	rng := rand.New(rand.NewPCG(seed, 13))
	f := &clickFunc{in: in, bias: -1.5, cross: 0.8}
	for _, c := range in.Cardinalities {
		w := make([]float64, c)
		for i := range w {
			w[i] = 0.6 * rng.NormFloat64()
		}
		f.cat = append(f.cat, w)
	}
	for range in.Dense {
		f.dense = append(f.dense, 0.5*rng.NormFloat64())
	}
	return f
}

func (f *clickFunc) prob(b *features.Batch, row int) float64 {
	z := f.bias
	for k, w := range f.cat {
		z += w[b.Cat[row*b.K+k]]
	}
	x := b.Dense[row*b.D : (row+1)*b.D]
	for d, v := range f.dense {
		z += v * float64(x[d])
	}
	if len(x) >= 2 {
		z += f.cross * float64(x[0]*x[1])
	}
	return 1 / (1 + math.Exp(-z))
}

// sample draws n labelled rows; it also returns the true probabilities.
func (f *clickFunc) sample(n int, seed uint64) (Dataset, []float32) {
	b := modeltest.RandomBatch(n, f.in, seed)
	rng := rand.New(rand.NewPCG(seed, 17))
	ds := Dataset{Batch: *b, Labels: make([]float32, n)}
	probs := make([]float32, n)
	for i := range n {
		p := f.prob(b, i)
		probs[i] = float32(p)
		if rng.Float64() < p {
			ds.Labels[i] = 1
		}
	}
	return ds, probs
}
