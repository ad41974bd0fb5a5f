package features

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Fitter learns Stats from training records in one streaming pass: the mean
// and standard deviation of each standardized numeric feature (after fill,
// clip and log1p, exactly as Transform computes them) and the vocabulary of
// each vocabulary feature.
type Fitter struct {
	spec    Spec
	moments map[string]*welford
	ops     map[string]denseOp
	counts  map[string]map[string]int
}

type welford struct {
	n        int64
	mean, m2 float64
}

func (w *welford) add(x float64) {
	w.n++
	d := x - w.mean
	w.mean += d / float64(w.n)
	w.m2 += d * (x - w.mean)
}

// NewFitter starts fitting a spec.
func NewFitter(spec Spec) (*Fitter, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	f := &Fitter{spec: spec, moments: map[string]*welford{}, ops: map[string]denseOp{}, counts: map[string]map[string]int{}}
	for _, feat := range spec.Features {
		switch {
		case feat.Kind == Numeric && feat.Standardize:
			op := denseOp{name: feat.Name, column: feat.Column, lo: math.Inf(-1), hi: math.Inf(1), log1p: feat.Log1p, invStd: 1}
			if feat.Fill != nil {
				op.fill = *feat.Fill
			}
			if feat.Clip != nil {
				op.lo, op.hi = feat.Clip[0], feat.Clip[1]
			}
			f.ops[feat.Name] = op
			f.moments[feat.Name] = &welford{}
		case feat.Kind == Categorical && feat.Vocabulary != nil:
			f.counts[feat.Name] = map[string]int{}
		}
	}
	return f, nil
}

// Observe adds the rows of one record.
func (f *Fitter) Observe(rec arrow.RecordBatch) error {
	n := int(rec.NumRows())
	for _, feat := range f.spec.Features {
		if w, ok := f.moments[feat.Name]; ok {
			col, err := column[*array.Float64](rec, feat.Column)
			if err != nil {
				return fmt.Errorf("fit feature %q: %w", feat.Name, err)
			}
			op := f.ops[feat.Name]
			values := col.Float64Values()
			for i := 0; i < n; i++ {
				v := op.fill
				if col.IsValid(i) && !math.IsNaN(values[i]) {
					v = values[i]
				}
				w.add(op.apply(v)) // mean 0, invStd 1: the value before standardizing
			}
		}
		if counts, ok := f.counts[feat.Name]; ok {
			col, err := column[*array.String](rec, feat.Column)
			if err != nil {
				return fmt.Errorf("fit feature %q: %w", feat.Name, err)
			}
			for i := 0; i < n; i++ {
				if col.IsValid(i) {
					counts[col.Value(i)]++
				}
			}
		}
	}
	return nil
}

// Stats returns what was learned. Vocabularies hold the MaxSize most frequent
// values seen at least MinCount times, most frequent first, ties by value.
func (f *Fitter) Stats() Stats {
	st := Stats{Numeric: map[string]NumericStats{}, Vocab: map[string][]string{}}
	for name, w := range f.moments {
		std := 0.0
		if w.n > 1 {
			std = math.Sqrt(w.m2 / float64(w.n))
		}
		st.Numeric[name] = NumericStats{Mean: w.mean, Std: std}
	}
	for _, feat := range f.spec.Features {
		counts, ok := f.counts[feat.Name]
		if !ok {
			continue
		}
		type vc struct {
			v string
			c int
		}
		var all []vc
		for v, c := range counts {
			if c >= max(feat.Vocabulary.MinCount, 1) {
				all = append(all, vc{v, c})
			}
		}
		slices.SortFunc(all, func(a, b vc) int {
			if c := cmp.Compare(b.c, a.c); c != 0 {
				return c
			}
			return cmp.Compare(a.v, b.v)
		})
		if len(all) > feat.Vocabulary.MaxSize {
			all = all[:feat.Vocabulary.MaxSize]
		}
		values := make([]string, len(all))
		for i, x := range all {
			values[i] = x.v
		}
		st.Vocab[feat.Name] = values
	}
	return st
}
