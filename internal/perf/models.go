package perf

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/hugepage"
	"github.com/adtech/scorer/scoring/bundle"
)

// The reference shapes: Criteo's 13 integer counts and 26 categoricals, each
// categorical hashed into HashBuckets buckets (plus index 0, missing) and
// embedded in EmbeddingDim dimensions; ctr-mlp is 429 -> 256 -> 128 -> 1.
const (
	Dense        = 13
	Categoricals = 26
	EmbeddingDim = 16
	HashBuckets  = 1 << 16
	IDColumn     = "ad_id"
)

// Hidden are ctr-mlp's hidden widths.
var Hidden = []int{256, 128}

// Model names.
const (
	MLP    = "ctr-mlp"
	LogReg = "ctr-logreg"
)

// Spec is the feature spec of both reference models: I1..I13 numeric
// (missing -> 0, log1p, standardized), C1..C26 hashed categoricals.
func Spec() features.Spec {
	var s features.Spec
	s.Label = "label"
	for i := 1; i <= Dense; i++ {
		s.Features = append(s.Features, features.Feature{
			Name: fmt.Sprintf("I%d", i), Column: fmt.Sprintf("I%d", i), Kind: features.Numeric,
			Log1p: true, Standardize: true,
		})
	}
	for i := 1; i <= Categoricals; i++ {
		s.Features = append(s.Features, features.Feature{
			Name: fmt.Sprintf("C%d", i), Column: fmt.Sprintf("C%d", i), Kind: features.Categorical,
			HashBuckets: HashBuckets,
		})
	}
	return s
}

// Stats are the fitted statistics that go with Spec: the mean and standard
// deviation of log1p of the generator's counts (fixed, so that bundles do
// not depend on a data sample).
func Stats() features.Stats {
	st := features.Stats{Numeric: map[string]features.NumericStats{}}
	for i := 1; i <= Dense; i++ {
		st.Numeric[fmt.Sprintf("I%d", i)] = features.NumericStats{Mean: countMu(i - 1), Std: countSigma}
	}
	return st
}

// Inputs are the reference models' input widths.
func Inputs() bundle.Inputs {
	in := bundle.Inputs{Dense: Dense}
	for range Categoricals {
		in.Cardinalities = append(in.Cardinalities, HashBuckets+1)
	}
	return in
}

// Bundle returns the named reference model (MLP or LogReg) with weights
// drawn from seed: N(0, 1/fan_in) for layers, N(0, 0.05²) for embeddings,
// small biases. Same name and seed, same bundle.
func Bundle(name string, seed uint64) (*bundle.Bundle, error) {
	bu := &bundle.Bundle{
		Name:     name,
		Version:  fmt.Sprintf("ref.%d", seed),
		Inputs:   Inputs(),
		Features: Spec(),
		Stats:    Stats(),
		Training: bundle.TrainingInfo{Seed: int64(seed), Command: "perf.Bundle (seeded random weights of the reference shapes)"},
		Weights:  map[string]*bundle.Param{},
	}
	switch name {
	case MLP:
		bu.Arch = bundle.Architecture{Kind: bundle.Deep, EmbeddingDim: EmbeddingDim, Hidden: append([]int(nil), Hidden...)}
	case LogReg:
		bu.Arch = bundle.Architecture{Kind: bundle.Wide}
	default:
		return nil, fmt.Errorf("reference bundle: unknown model %q (%s, %s)", name, MLP, LogReg)
	}
	rng := rand.New(rand.NewPCG(seed, 0xc7))
	v := bu.Inputs.TotalCardinality()
	fill := func(name string, scale float64, shape ...int) {
		p := bundle.NewParam(shape...)
		for i := range p.Data {
			p.Data[i] = float32(scale * rng.NormFloat64())
		}
		hugepage.CollapseFloat32s(p.Data) // in huge pages, as a loaded bundle's
		bu.Weights[name] = p
	}
	if name == LogReg {
		fill("wide.emb", 0.1, v, 1)
		fill("wide.dense", 0.1, Dense, 1)
		fill("wide.bias", 0.1, 1)
		return bu, bu.Validate()
	}
	fill("deep.emb", 0.05, v, EmbeddingDim)
	in := Categoricals*EmbeddingDim + Dense
	for i, h := range Hidden {
		fill(fmt.Sprintf("deep.l%d.w", i), math.Sqrt(2/float64(in)), in, h)
		fill(fmt.Sprintf("deep.l%d.b", i), 0.01, h)
		in = h
	}
	fill("deep.out.w", math.Sqrt(1/float64(in)), in, 1)
	fill("deep.out.b", 0.01, 1)
	return bu, bu.Validate()
}
