package metrics

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// Errors of Accumulator.Add, wrapped with the offending value.
var (
	// ErrScore marks a score that is not a finite probability in [0, 1].
	ErrScore = errors.New("invalid score")
	// ErrLabel marks a label that is not exactly 0 or 1.
	ErrLabel = errors.New("invalid label")
)

// Accumulator gathers (score, label) pairs of one model on one slice of
// rows, for exact metrics (see the package documentation): it keeps every
// score, 4 bytes a row, and sums in fixed point. The zero value is empty
// and ready to use. It is not safe for concurrent use; Result counts as a
// write, since it sorts the kept scores in place.
type Accumulator struct {
	pos, neg []float32 // scores of the rows labelled 1 and 0
	// unsorted is set when pos or neg may not be ascending.
	unsorted bool
	// Σ s, Σ log loss (clipped), Σ (s-y)².
	score, loss, brier fixed
}

// Add adds a row: its score, a probability in [0, 1], and its label,
// exactly 0 or 1 (1 a click). On error (ErrScore, ErrLabel) the row is not
// added.
func (a *Accumulator) Add(score float32, label float64) error {
	if !(score >= 0 && score <= 1) { // NaN fails both
		return fmt.Errorf("%w: %v is not a probability in [0, 1]", ErrScore, score)
	}
	if label != 0 && label != 1 {
		return fmt.Errorf("%w: %v is not 0 or 1", ErrLabel, label)
	}
	if score == 0 {
		score = 0 // -0 is +0
	}
	s := float64(score)
	q := clip(s)
	list := &a.neg
	if label == 1 {
		list = &a.pos
		a.loss.addTerm(-math.Log(q))
		a.brier.addTerm((1 - s) * (1 - s))
	} else {
		a.loss.addTerm(-math.Log(1 - q))
		a.brier.addTerm(s * s)
	}
	a.score.addTerm(s)
	if n := len(*list); n > 0 && score < (*list)[n-1] {
		a.unsorted = true
	}
	*list = append(*list, score)
	return nil
}

// Merge adds the rows of b to a, exactly: the Result is the one a single
// Accumulator given the rows of both would have. b is not changed; a nil b
// adds nothing.
func (a *Accumulator) Merge(b *Accumulator) {
	if b == nil || b.Rows() == 0 {
		return
	}
	a.unsorted = a.unsorted || b.unsorted || a.Rows() > 0
	a.pos = append(a.pos, b.pos...)
	a.neg = append(a.neg, b.neg...)
	a.score.addSum(b.score)
	a.loss.addSum(b.loss)
	a.brier.addSum(b.brier)
}

// Rows is the number of rows added.
func (a *Accumulator) Rows() int64 { return int64(len(a.pos) + len(a.neg)) }

// Result is every metric of the rows added so far, with a reliability
// curve of bins equal-count bins (none if bins <= 0). It sorts the kept
// scores in place, once; Add and Merge may follow.
func (a *Accumulator) Result(bins int) Result {
	if a.unsorted {
		slices.Sort(a.pos)
		slices.Sort(a.neg)
		a.unsorted = false
	}
	r := Result{Rows: a.Rows(), Positives: int64(len(a.pos))}
	if r.Rows == 0 {
		nan := math.NaN()
		r.LabelRate, r.MeanScore, r.AUC, r.LogLoss, r.Brier, r.ConstantLogLoss, r.ECE = nan, nan, nan, nan, nan, nan, nan
		return r
	}
	n := float64(r.Rows)
	r.LabelRate = float64(r.Positives) / n
	r.MeanScore = a.score.value() / n
	r.LogLoss = a.loss.value() / n
	r.Brier = a.brier.value() / n
	q := clip(r.LabelRate)
	r.ConstantLogLoss = -(float64(r.Positives)*math.Log(q) + float64(r.Rows-r.Positives)*math.Log(1-q)) / n
	r.AUC = mannWhitney(a.pos, a.neg)
	r.Bins, r.ECE = reliability(a.pos, a.neg, bins)
	return r
}

// Result holds the metrics of one Accumulator; the package documentation
// defines them. Without rows, the counts are 0 and every metric is NaN.
type Result struct {
	Rows, Positives int64 // rows, and rows labelled 1
	// LabelRate is Positives/Rows; MeanScore the mean score.
	LabelRate, MeanScore float64
	AUC                  float64 // NaN when only one class is present
	// LogLoss is the mean cross-entropy, probabilities clipped to
	// [1e-7, 1-1e-7]; Brier the mean squared error of the scores.
	LogLoss, Brier float64
	// ConstantLogLoss is the log loss of always predicting LabelRate: the
	// baseline a model must beat.
	ConstantLogLoss float64
	ECE             float64 // expected calibration error over Bins; NaN without bins
	// Bins is the reliability curve: equal-count bins of the rows sorted
	// by score, lowest scores first (deciles for bins=10). Tied scores may
	// be split across two bins, their clicks shared in proportion.
	Bins []Bin
}

// Bin is one bin of a reliability curve.
type Bin struct {
	Rows               int64   // rows in the bin
	ScoreMin, ScoreMax float64 // lowest and highest score in the bin
	MeanScore          float64 // mean score of the rows
	LabelRate          float64 // share of the rows that are clicks (tied groups shared in proportion)
}

// reliability cuts the rows with ascending scores pos (clicks) and neg
// into min(bins, rows) equal-count bins and returns them with their
// expected calibration error; no bins and NaN if bins <= 0 or there are no
// rows.
func reliability(pos, neg []float32, bins int) ([]Bin, float64) {
	n := uint64(len(pos) + len(neg))
	if bins <= 0 || n == 0 {
		return nil, math.NaN()
	}
	nb := min(uint64(bins), n) // more bins than rows: one row each, as nb = n gives
	// start is the sorted position of the first row of bin b, ⌊b·n/nb⌋;
	// b <= nb keeps the quotient below 2⁶⁴. With nb <= n no bin is empty.
	start := func(b uint64) uint64 {
		hi, lo := bits.Mul64(b, n)
		q, _ := bits.Div64(hi, lo, nb)
		return q
	}
	out := make([]Bin, 0, nb)
	var (
		b, at     uint64 // current bin, rows placed
		end       = start(1)
		sum, clks float64 // Σ score and clicks of the current bin
		cur       Bin
	)
	groups(pos, neg, func(v float32, cp, cn int) {
		g := uint64(cp + cn)
		for left := g; left > 0; {
			k := min(left, end-at)
			if cur.Rows == 0 {
				cur.ScoreMin = float64(v)
			}
			cur.ScoreMax = float64(v)
			cur.Rows += int64(k)
			sum += float64(k) * float64(v)
			if k == g {
				clks += float64(cp)
			} else {
				clks += float64(k) * float64(cp) / float64(g)
			}
			at += k
			left -= k
			if at == end {
				cur.MeanScore = sum / float64(cur.Rows)
				cur.LabelRate = clks / float64(cur.Rows)
				out = append(out, cur)
				cur, sum, clks = Bin{}, 0, 0
				if b++; b < nb {
					end = start(b + 1)
				}
			}
		}
	})
	var ece float64
	for _, bin := range out {
		ece += float64(bin.Rows) / float64(n) * math.Abs(bin.MeanScore-bin.LabelRate)
	}
	return out, ece
}
