package training

import (
	"cmp"
	"math"
	"slices"
)

// AUC is the area under the ROC curve of scores against 0/1 labels (a label
// >= 0.5 counts as a click), computed from ranks with tied scores given
// their average rank. It is NaN if the lengths differ or only one class is
// present.
func AUC(scores, labels []float32) float64 {
	if len(scores) != len(labels) {
		return math.NaN()
	}
	order := make([]int, len(scores))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(scores[a], scores[b]) })
	var pos, neg, rankSum float64
	for i := 0; i < len(order); {
		j := i + 1
		for j < len(order) && scores[order[j]] == scores[order[i]] {
			j++
		}
		rank := float64(i+j+1) / 2 // average of the 1-based ranks i+1..j
		for _, o := range order[i:j] {
			if labels[o] >= 0.5 {
				pos++
				rankSum += rank
			} else {
				neg++
			}
		}
		i = j
	}
	if pos == 0 || neg == 0 {
		return math.NaN()
	}
	return (rankSum - pos*(pos+1)/2) / (pos * neg)
}

// probClip bounds probabilities away from 0 and 1 in LogLoss: float32
// sigmoids saturate to exactly 0 or 1.
const probClip = 1e-7

// LogLoss is the mean binary cross-entropy of probabilities against labels
// in [0, 1], with probabilities clipped to [1e-7, 1-1e-7]. It is NaN if the
// lengths differ or there are no rows.
func LogLoss(probs, labels []float32) float64 {
	if len(probs) != len(labels) || len(probs) == 0 {
		return math.NaN()
	}
	var sum float64
	for i, p := range probs {
		q := min(max(float64(p), probClip), 1-probClip)
		y := float64(labels[i])
		sum -= y*math.Log(q) + (1-y)*math.Log(1-q)
	}
	return sum / float64(len(probs))
}
