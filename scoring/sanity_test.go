package scoring

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/internal/modeltest"
)

// A model whose weights turn bad after it was compiled (the bundle is
// checked at load, so this stands for any way a logit can stop being a
// number: sums that overflow float32, say) fails Score, naming the row,
// instead of returning NaN or a saturated 0 or 1. The limit on |logit| is
// off unless asked for; non-finite logits are always refused.
func TestScoreRefusesUnusableLogits(t *testing.T) {
	tests := []struct {
		name   string
		bias   float32 // wide.bias, set after compiling
		dense  float32 // dense input 0 of row 5, if not 0
		maxAbs float64
		want   string // "" means success
		target error
	}{
		{"NaN weight", float32(math.NaN()), 0, 0, "row 0: logit NaN is not finite", ErrModel},
		{"infinite weight", float32(math.Inf(1)), 0, 0, "row 0: logit +Inf is not finite", ErrModel},
		{"huge bias without limit", -1e38, 0, 0, "", nil},
		{"huge bias beyond limit", -1e38, 0, 50, "row 0: logit -1e+38 is beyond ±50 (max_abs_logit)", ErrModel},
		{"plain model within limit", 0.1, 0, 50, "", nil},
		{"infinite input", 0.1, float32(math.Inf(-1)), 0, "row 5: logit", ErrInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bu := modeltest.RandomBundle(bundle.WideDeep, 2, []int{3, 5}, 2, []int{4}, 5)
			m, err := NewModel(bu, 4, WithMaxAbsLogit(tt.maxAbs))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = m.Close() }()
			bu.Weights["wide.bias"].Data[0] = tt.bias
			b := modeltest.RandomBatch(7, bu.Inputs, 1) // two graph runs, the second padded
			if tt.dense != 0 {
				b.Dense[5*b.D] = tt.dense
			}
			out := make([]float32, b.N)
			err = m.Score(b, out)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Score: %v", err)
				}
				for r, p := range out { // published scores are in (0, 1)
					if !(p > 0 && p < 1) {
						t.Errorf("row %d: score %g is not in (0, 1)", r, p)
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Score: %v, want an error containing %q", err, tt.want)
			}
			if !errors.Is(err, tt.target) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.target)
			}
			var le *LogitError
			if !errors.As(err, &le) {
				t.Errorf("error is no *LogitError: %v", err)
			}
		})
	}
}

// The check is per graph run and costs no allocation: a limit set, the
// model still scores without allocating (TestScoreAllocatesNothing covers
// the default).
func TestScoreWithLimitAllocatesNothing(t *testing.T) {
	bu := modeltest.RandomBundle(bundle.WideDeep, 2, []int{3, 5}, 2, []int{4}, 5)
	m, err := NewModel(bu, 64, WithMaxAbsLogit(50))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Close() }()
	b := modeltest.RandomBatch(150, bu.Inputs, 3)
	out := make([]float32, b.N)
	if n := testing.AllocsPerRun(10, func() {
		if err := m.Score(b, out); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per Score", n)
	}
}
