package training

import (
	"math"
	"math/rand/v2"
	"testing"
)

// pairAUC is AUC by its definition: the fraction of (click, non-click)
// pairs ranked correctly, ties counting half.
func pairAUC(scores, labels []float32) float64 {
	var num, den float64
	for i := range scores {
		for j := range scores {
			if labels[i] == 1 && labels[j] == 0 {
				den++
				switch {
				case scores[i] > scores[j]:
					num++
				case scores[i] == scores[j]:
					num += 0.5
				}
			}
		}
	}
	return num / den
}

func TestAUC(t *testing.T) {
	tests := []struct {
		name           string
		scores, labels []float32
		want           float64
	}{
		{"perfect", []float32{0.1, 0.2, 0.8, 0.9}, []float32{0, 0, 1, 1}, 1},
		{"reversed", []float32{0.9, 0.8, 0.2, 0.1}, []float32{0, 0, 1, 1}, 0},
		{"all tied", []float32{0.5, 0.5, 0.5, 0.5}, []float32{0, 1, 0, 1}, 0.5},
		{"some ties", []float32{0.1, 0.4, 0.4, 0.8}, []float32{0, 0, 1, 1}, 0.875},
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
	t.Run("random with ties", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		scores, labels := make([]float32, 500), make([]float32, 500)
		for i := range scores {
			scores[i] = float32(rng.IntN(40)) / 40 // many ties
			if rng.Float32() < scores[i] {
				labels[i] = 1
			}
		}
		if got, want := AUC(scores, labels), pairAUC(scores, labels); math.Abs(got-want) > 1e-12 {
			t.Errorf("AUC = %g, pairwise %g", got, want)
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
