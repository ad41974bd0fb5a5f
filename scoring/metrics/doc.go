// Package metrics owns the binary-classification metrics of click models:
// how well scores s (predicted click probabilities) rank and predict 0/1
// labels y (1 a click). Training records them for its training and
// validation data, and `scorer evaluate` for every model and segment of a
// scored table. No I/O, no goroutines.
//
// Two entry points:
//
//   - AUC and LogLoss take whole slices of scores and float32 labels (the
//     form training has them in).
//   - An Accumulator gathers (score, label) rows one at a time, merges
//     exactly with the Accumulators of other shards, and gives every metric
//     at once in a Result, with a reliability curve and the expected
//     calibration error. It is strict: a score must be a finite probability
//     in [0, 1] and a label exactly 0 or 1, or Add returns ErrScore or
//     ErrLabel naming the value.
//
// # Definitions
//
// Over N rows (s_i, y_i), P of them clicks (y_i = 1) and N−P not:
//
//	LabelRate       = P / N
//	MeanScore       = Σ s_i / N
//	LogLoss         = −Σ [y_i ln c(s_i) + (1−y_i) ln(1 − c(s_i))] / N
//	ConstantLogLoss = −[LabelRate ln c(LabelRate) + (1−LabelRate) ln(1 − c(LabelRate))]
//	Brier           = Σ (s_i − y_i)² / N
//	AUC             = Σ_{i: y_i=1} Σ_{j: y_j=0} ([s_i > s_j] + ½[s_i = s_j]) / (P (N−P))
//	ECE             = Σ_b (N_b / N) |MeanScore_b − LabelRate_b|
//
// c clips a probability to [1e-7, 1 − 1e-7], so a saturated float32
// sigmoid (exactly 0 or 1) costs ln(1e7) ≈ 16.1 when wrong instead of
// infinity; the Brier score and the mean score use s unclipped.
// ConstantLogLoss is the log loss of always predicting the label rate, the
// best constant: a model that does not beat it has learned nothing
// (LogLoss/ConstantLogLoss is the normalized entropy). AUC is the
// Mann-Whitney statistic: the probability that a random click outscores a
// random non-click, tied scores counting half, which equals the area under
// the ROC curve with ties drawn as diagonal segments. It is NaN when only
// one class is present.
//
// # Reliability curve and ECE
//
// Result(bins) sorts the rows by score and cuts them into bins of equal
// count: bin b (0-based) holds the rows at sorted positions
// [⌊bN/bins⌋, ⌊(b+1)N/bins⌋), so sizes differ by at most one (bins = 10
// gives deciles). For each bin, MeanScore_b is the mean score and
// LabelRate_b the click rate of its N_b rows; a calibrated model has
// MeanScore_b ≈ LabelRate_b in every bin, and ECE is their gap weighted by
// the bins' shares of the rows. With fewer rows than bins there is one bin
// per row (no empty bins); bins <= 0 means no curve and a NaN ECE.
//
// Rows with equal scores may straddle a bin boundary and are then split
// across the two bins by count. Which of the tied rows are clicks is
// arbitrary, so each bin is given the tied group's clicks in proportion to
// the tied rows it takes (LabelRate_b need not be a ratio of whole clicks).
// This is the expected curve over every order of the tied rows; ordering
// ties by label instead would invent a slope: a model that scores every row
// 0.1 with a click rate of 0.1 would show deciles of click rate 0 and 1 and
// an ECE of 0.18 instead of 0.
//
// # Exactness and memory
//
// The metrics are exact, not histogram approximations: an Accumulator keeps
// the score of every row as a float32 (4 bytes a row, plus the slack of
// growing slices: up to twice that while one is reallocated), and Result
// sorts them, clicks and non-clicks apart, in O(N log N) with no further
// per-row memory. AUC is counted exactly in integers by one merge of the
// two sorted lists. The sums behind MeanScore, LogLoss and Brier are
// accumulated in Add as 128-bit fixed-point numbers (each row's term
// rounded to a multiple of 2⁻⁵⁸, below the precision of a float64 term
// near 1), so they do not depend on the order of the rows: merging shards
// in any order gives exactly, bit for bit, the Result of one Accumulator
// over all the rows.
//
// Result sorts the kept scores in place. The order is no part of an
// Accumulator's state, so Add and Merge after Result stay correct (the next
// Result sorts again), but Result is a write: an Accumulator is not safe
// for concurrent use.
//
// The slice function AUC copies the scores once (4 bytes a row) and counts
// the same statistic; a label >= 0.5 counts as a click there, and a NaN
// score ranks below every number and ties other NaNs. LogLoss there accepts
// any label in [0, 1] (soft labels).
package metrics
