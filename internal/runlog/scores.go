package runlog

import "math"

// ScoreBins is the number of equal bins ScoreHistogram splits [0, 1] into:
// quantiles read from it are within 1/ScoreBins of the exact ones.
const ScoreBins = 1000

// ReportBins is the number of bins of the histogram in a report.
const ReportBins = 20

// ScoreHistogram counts scores (probabilities) in ScoreBins fixed bins over
// [0, 1]: cheap enough to fill with every scored row. Scores outside [0, 1]
// go to the end bins; NaNs are counted apart. The zero value is empty. Not
// safe for concurrent use.
type ScoreHistogram struct {
	counts   [ScoreBins]int64
	n, nan   int64
	min, max float32
	sum      float64
}

// Add counts scores.
func (h *ScoreHistogram) Add(scores []float32) {
	for _, v := range scores {
		if v != v { // NaN
			h.nan++
			continue
		}
		i := int(v * ScoreBins)
		if i < 0 {
			i = 0
		} else if i >= ScoreBins {
			i = ScoreBins - 1
		}
		h.counts[i]++
		if h.n == 0 || v < h.min {
			h.min = v
		}
		if h.n == 0 || v > h.max {
			h.max = v
		}
		h.n++
		h.sum += float64(v)
	}
}

// Count is the number of scores added, NaNs left out.
func (h *ScoreHistogram) Count() int64 { return h.n }

// Quantile returns the q-quantile (0 <= q <= 1), interpolated within its
// bin and clamped to the smallest and largest scores; NaN if empty.
func (h *ScoreHistogram) Quantile(q float64) float64 {
	if h.n == 0 {
		return math.NaN()
	}
	rank := q * float64(h.n)
	var cum float64
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		if cum+float64(c) >= rank {
			v := (float64(i) + (rank-cum)/float64(c)) / ScoreBins
			return math.Min(math.Max(v, float64(h.min)), float64(h.max))
		}
		cum += float64(c)
	}
	return float64(h.max)
}

// ScoreSummary is the score part of a report.
type ScoreSummary struct {
	Count     int64     `json:"count"`
	NaN       int64     `json:"nan,omitempty"`
	Min       float64   `json:"min"`
	Max       float64   `json:"max"`
	Mean      float64   `json:"mean"`
	Quantiles Quantiles `json:"quantiles"`
	// Histogram counts the scores in ReportBins equal bins over [0, 1].
	Histogram []int64 `json:"histogram"`
}

// Quantiles of the scores.
type Quantiles struct {
	P01 float64 `json:"p01"`
	P05 float64 `json:"p05"`
	P10 float64 `json:"p10"`
	P25 float64 `json:"p25"`
	P50 float64 `json:"p50"`
	P75 float64 `json:"p75"`
	P90 float64 `json:"p90"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
}

// Summary returns the report's view of the histogram, or nil if empty.
func (h *ScoreHistogram) Summary() *ScoreSummary {
	if h.n == 0 {
		return nil
	}
	round := func(x float64) float64 { return math.Round(x*1e6) / 1e6 }
	q := func(p float64) float64 { return round(h.Quantile(p)) }
	s := &ScoreSummary{
		Count: h.n, NaN: h.nan, Min: round(float64(h.min)), Max: round(float64(h.max)), Mean: round(h.sum / float64(h.n)),
		Quantiles: Quantiles{
			P01: q(0.01), P05: q(0.05), P10: q(0.10), P25: q(0.25), P50: q(0.50),
			P75: q(0.75), P90: q(0.90), P95: q(0.95), P99: q(0.99),
		},
		Histogram: make([]int64, ReportBins),
	}
	for i, c := range h.counts {
		s.Histogram[i*ReportBins/ScoreBins] += c
	}
	return s
}
