// Package modeltest makes random bundles and input batches for the tests of
// the scoring packages (bundle, scoring, training). It is not used outside
// tests.
package modeltest

import (
	"math"
	"math/rand/v2"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/scoring/bundle"
)

// RandomBundle is a valid bundle of the given shape with random weights,
// the same for the same arguments.
func RandomBundle(kind bundle.Kind, dense int, cards []int, embDim int, hidden []int, seed uint64) *bundle.Bundle {
	bu := &bundle.Bundle{
		Name:    "test",
		Version: "1",
		Arch:    bundle.Architecture{Kind: kind, EmbeddingDim: embDim, Hidden: hidden},
		Inputs:  bundle.Inputs{Dense: dense, Cardinalities: cards},
		Weights: map[string]*bundle.Param{},
	}
	randomWeights(bu, seed)
	return bu
}

// WithImages makes bu a model of images image features of size × size
// pixels embedded by tower, with new random weights (the same for the same
// arguments).
func WithImages(bu *bundle.Bundle, images, size int, tower bundle.ImageTower, seed uint64) *bundle.Bundle {
	bu.Arch.Image = &tower
	bu.Inputs.Images, bu.Inputs.ImageSize = images, size
	randomWeights(bu, seed)
	return bu
}

// RandomImages are n random images of size × size pixels, channel first,
// values in [0, 1], the same for the same arguments.
func RandomImages(n, size int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 13))
	x := make([]float32, n*3*size*size)
	for i := range x {
		x[i] = rng.Float32()
	}
	return x
}

func randomWeights(bu *bundle.Bundle, seed uint64) {
	bu.Weights = map[string]*bundle.Param{}
	rng := rand.New(rand.NewPCG(seed, 7))
	names, shapes := bundle.WeightShapes(bu.Arch, bu.Inputs)
	for _, name := range names {
		p := bundle.NewParam(shapes[name]...)
		scale := 1 / math.Sqrt(float64(p.Shape[0]))
		if len(p.Shape) == 4 { // a conv filter: over its window
			scale = 1 / math.Sqrt(float64(p.Shape[1]*p.Shape[2]*p.Shape[3]))
		}
		if len(p.Shape) == 1 || name == "wide.emb" || name == "deep.emb" {
			scale = 0.5
		}
		for i := range p.Data {
			p.Data[i] = float32(scale * rng.NormFloat64())
		}
		bu.Weights[name] = p
	}
}

// RandomBatch is n rows of random input for in, the same for the same
// arguments.
func RandomBatch(n int, in bundle.Inputs, seed uint64) *features.Batch {
	rng := rand.New(rand.NewPCG(seed, 11))
	b := &features.Batch{}
	b.Reset(n, in.Dense, in.K())
	for i := range b.Dense {
		b.Dense[i] = float32(rng.NormFloat64())
	}
	for i := range b.Cat {
		b.Cat[i] = int32(rng.IntN(in.Cardinalities[i%in.K()]))
	}
	return b
}
