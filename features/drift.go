package features

import (
	"math"
	"slices"
)

// PSIEpsilon replaces an empty bin's share in the population stability
// index, whose terms are undefined at 0 (the convention of Evidently and
// most PSI implementations).
const PSIEpsilon = 1e-4

// Shares is the distribution Compare compares: the shares of the rows
// observed that fall in each bin, in order: missing, then for categoricals
// out of vocabulary, then Bins. Nil when the profile has no bins.
func (f *FeatureProfile) Shares() []float64 {
	if len(f.Bins) == 0 || f.Count == 0 {
		return nil
	}
	counts := []int64{f.Missing}
	if f.Kind != Numeric && f.Kind != ScoreKind {
		counts = append(counts, f.OOV)
	}
	counts = append(counts, f.Bins...)
	out := make([]float64, len(counts))
	for i, c := range counts {
		out[i] = float64(c) / float64(f.Count)
	}
	return out
}

// Comparable says whether f and ref have the same bins, so that Compare
// means something: the same kind, edges and reference indices.
func (f *FeatureProfile) Comparable(ref *FeatureProfile) bool {
	return ref != nil && f.Kind == ref.Kind && len(f.Bins) > 0 && len(f.Bins) == len(ref.Bins) &&
		slices.Equal(f.Edges, ref.Edges) && slices.Equal(f.Refs, ref.Refs) && f.Count > 0 && ref.Count > 0
}

// Compare measures how far f's distribution is from ref's over their common
// bins (Shares): the population stability index, Σ (p-q)·ln(p/q) with
// empty shares taken as PSIEpsilon, and the Jensen-Shannon distance (the
// square root of the divergence, base 2: 0 for the same distribution, 1
// for disjoint ones). Both are NaN when the profiles are not Comparable.
func Compare(f, ref *FeatureProfile) (psi, js float64) {
	if !f.Comparable(ref) {
		return math.NaN(), math.NaN()
	}
	p, q := f.Shares(), ref.Shares()
	var jsd float64
	for i := range p {
		a, b := max(p[i], PSIEpsilon), max(q[i], PSIEpsilon)
		psi += (a - b) * math.Log(a/b)
		m := (p[i] + q[i]) / 2
		if p[i] > 0 {
			jsd += p[i] / 2 * math.Log2(p[i]/m)
		}
		if q[i] > 0 {
			jsd += q[i] / 2 * math.Log2(q[i]/m)
		}
	}
	return psi, math.Sqrt(max(jsd, 0))
}
