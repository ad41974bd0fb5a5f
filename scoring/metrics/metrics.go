package metrics

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
)

// probClip bounds probabilities away from 0 and 1 in log losses: float32
// sigmoids saturate to exactly 0 or 1.
const probClip = 1e-7

// clip bounds a probability to [probClip, 1-probClip].
func clip(p float64) float64 { return min(max(p, probClip), 1-probClip) }

// AUC is the area under the ROC curve of scores against labels (a label
// >= 0.5 counts as a click): the fraction of (click, non-click) pairs in
// which the click has the higher score, tied scores counting half. NaN
// scores rank below every number and tie each other. It is NaN if the
// lengths differ or only one class is present. It copies the scores once
// (4 bytes a row) and sorts the copy.
func AUC(scores, labels []float32) float64 {
	if len(scores) != len(labels) {
		return math.NaN()
	}
	clicks := 0
	for _, y := range labels {
		if y >= 0.5 {
			clicks++
		}
	}
	buf := make([]float32, len(scores))
	pos, neg := buf[:0:clicks], buf[clicks:clicks]
	for i, s := range scores {
		if labels[i] >= 0.5 {
			pos = append(pos, s)
		} else {
			neg = append(neg, s)
		}
	}
	slices.Sort(pos)
	slices.Sort(neg)
	return mannWhitney(pos, neg)
}

// LogLoss is the mean binary cross-entropy of probabilities against labels
// in [0, 1], with probabilities clipped to [1e-7, 1-1e-7]. It is NaN if the
// lengths differ or there are no rows.
func LogLoss(probs, labels []float32) float64 {
	if len(probs) != len(labels) || len(probs) == 0 {
		return math.NaN()
	}
	var sum float64
	for i, p := range probs {
		q := clip(float64(p))
		y := float64(labels[i])
		sum -= y*math.Log(q) + (1-y)*math.Log(1-q)
	}
	return sum / float64(len(probs))
}

// mannWhitney is the AUC of the ascending (slices.Sort) scores of clicks
// pos and non-clicks neg, counted exactly: twice the Mann-Whitney U in 128
// bits, then one division. NaN if either is empty.
func mannWhitney(pos, neg []float32) float64 {
	if len(pos) == 0 || len(neg) == 0 {
		return math.NaN()
	}
	var u2 uint128 // Σ over clicks of 2·(non-clicks below) + (non-clicks tied)
	below := 0
	groups(pos, neg, func(_ float32, cp, cn int) {
		u2.add(bits.Mul64(uint64(cp), uint64(2*below+cn)))
		below += cn
	})
	return u2.float() / 2 / (float64(len(pos)) * float64(len(neg)))
}

// groups calls f for every distinct score of the ascending pos and neg, in
// ascending order, with how many scores of pos (cp) and of neg (cn) equal
// it. Equal means cmp.Compare says so: NaNs are one group, -0 and +0 one.
func groups(pos, neg []float32, f func(v float32, cp, cn int)) {
	i, j := 0, 0
	for i < len(pos) || j < len(neg) {
		var v float32
		switch {
		case i == len(pos):
			v = neg[j]
		case j == len(neg):
			v = pos[i]
		default:
			if cmp.Less(pos[i], neg[j]) {
				v = pos[i]
			} else {
				v = neg[j]
			}
		}
		i0, j0 := i, j
		for i < len(pos) && cmp.Compare(pos[i], v) == 0 {
			i++
		}
		for j < len(neg) && cmp.Compare(neg[j], v) == 0 {
			j++
		}
		f(v, i-i0, j-j0)
	}
}

// uint128 is an unsigned 128-bit integer.
type uint128 struct{ hi, lo uint64 }

// add adds hi·2⁶⁴ + lo.
func (u *uint128) add(hi, lo uint64) {
	var carry uint64
	u.lo, carry = bits.Add64(u.lo, lo, 0)
	u.hi += hi + carry
}

// float is u rounded to a float64.
func (u uint128) float() float64 { return float64(u.hi)*0x1p64 + float64(u.lo) }

// fixedOne is 1 in the fixed point of the sums: 58 fractional bits. The
// largest term, a clipped log loss of ln(1e7) ≈ 16.1 < 2⁵, stays below 2⁶³,
// and 2⁶⁴ rows of it fit in 128 bits.
const fixedOne = 0x1p58

// fixed is a sum of non-negative terms in fixed point, exact and so
// independent of the order of the terms; each term is rounded to a
// multiple of 2⁻⁵⁸ as it is added.
type fixed struct{ uint128 }

// addTerm adds x, 0 <= x < 32.
func (f *fixed) addTerm(x float64) { f.add(0, uint64(math.Round(x*fixedOne))) }

// addSum adds the sum g.
func (f *fixed) addSum(g fixed) { f.add(g.hi, g.lo) }

// value is the sum as a float64.
func (f fixed) value() float64 { return f.float() / fixedOne }
