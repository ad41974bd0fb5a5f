package metrics

import (
	"cmp"
	"math"
	"math/rand/v2"
	"testing"
)

// pairAUC is AUC by its definition: the fraction of (click, non-click)
// pairs ranked correctly, ties counting half, O(n²). Scores compare as
// cmp.Compare does (NaN lowest, NaNs tied).
func pairAUC(scores, labels []float32) float64 {
	var num, den float64
	for i := range scores {
		for j := range scores {
			if labels[i] >= 0.5 && labels[j] < 0.5 {
				den++
				switch cmp.Compare(scores[i], scores[j]) {
				case 1:
					num++
				case 0:
					num += 0.5
				}
			}
		}
	}
	return num / den
}

// sample draws n scores (rounded to levels distinct values from 0 to 1
// if levels > 1, so with many ties) and labels drawn from the scores.
func sample(rng *rand.Rand, n, levels int) (scores, labels []float32) {
	scores, labels = make([]float32, n), make([]float32, n)
	for i := range scores {
		scores[i] = rng.Float32()
		if levels > 1 {
			scores[i] = float32(rng.IntN(levels)) / float32(levels-1)
		}
		if rng.Float32() < 0.2+0.6*scores[i] {
			labels[i] = 1
		}
	}
	return scores, labels
}

func TestAUC(t *testing.T) {
	nan := float32(math.NaN())
	tests := []struct {
		name           string
		scores, labels []float32
		want           float64
	}{
		{"perfect", []float32{0.1, 0.2, 0.8, 0.9}, []float32{0, 0, 1, 1}, 1},
		{"reversed", []float32{0.9, 0.8, 0.2, 0.1}, []float32{0, 0, 1, 1}, 0},
		{"all tied", []float32{0.5, 0.5, 0.5, 0.5}, []float32{0, 1, 0, 1}, 0.5},
		{"some ties", []float32{0.1, 0.4, 0.4, 0.8}, []float32{0, 0, 1, 1}, 0.875},
		{"soft labels split at 0.5", []float32{0.1, 0.2, 0.3}, []float32{0.49, 0.5, 0.7}, 1},
		{"NaN lowest, NaNs tied", []float32{nan, nan, 0.5}, []float32{1, 0, 1}, 0.75},
		{"one class", []float32{0.1, 0.2}, []float32{1, 1}, math.NaN()},
		{"empty", nil, nil, math.NaN()},
		{"length mismatch", []float32{0.1}, []float32{0, 1}, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AUC(tt.scores, tt.labels)
			if !(got == tt.want || math.IsNaN(got) && math.IsNaN(tt.want)) {
				t.Errorf("AUC = %g, want %g", got, tt.want)
			}
		})
	}
	for _, c := range []struct {
		name      string
		n, levels int
	}{{"random with ties", 500, 40}, {"random few values", 700, 3}, {"random without ties", 600, 0}, {"tiny", 5, 2}} {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(c.n)))
			for range 20 {
				scores, labels := sample(rng, c.n, c.levels)
				if got, want := AUC(scores, labels), pairAUC(scores, labels); !(math.Abs(got-want) <= 1e-12 || math.IsNaN(got) && math.IsNaN(want)) {
					t.Fatalf("AUC = %g, pairwise %g", got, want)
				}
			}
		})
	}
	t.Run("inputs unchanged", func(t *testing.T) {
		scores, labels := []float32{0.9, 0.1, 0.5}, []float32{1, 0, 1}
		AUC(scores, labels)
		if scores[0] != 0.9 || scores[1] != 0.1 || scores[2] != 0.5 {
			t.Errorf("AUC reordered its input: %v", scores)
		}
	})
}

func TestLogLoss(t *testing.T) {
	tests := []struct {
		name          string
		probs, labels []float32
		want          float64
	}{
		{"half", []float32{0.5, 0.5}, []float32{0, 1}, math.Ln2},
		{"mixed", []float32{0.9, 0.2}, []float32{1, 0}, -(math.Log(float64(float32(0.9))) + math.Log(1-float64(float32(0.2)))) / 2},
		{"saturated is clipped", []float32{1, 0}, []float32{0, 1}, -math.Log(probClip)},
		{"soft label", []float32{0.5}, []float32{0.3}, math.Ln2},
		{"empty", nil, nil, math.NaN()},
		{"length mismatch", []float32{0.5}, nil, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := LogLoss(tt.probs, tt.labels)
			if !(math.Abs(got-tt.want) < 1e-9 || math.IsNaN(got) && math.IsNaN(tt.want)) {
				t.Errorf("LogLoss = %g, want %g", got, tt.want)
			}
		})
	}
}
