package metrics

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// rows is a test data set of (score, label) rows.
type rows struct {
	scores []float32
	labels []float64
}

// draw makes n rows: scores uniform (rounded to levels distinct values
// from 0 to 1 if levels > 1, for ties and saturated scores), labels 1 with
// probability click(score).
func draw(seed uint64, n, levels int, click func(float64) float64) rows {
	rng := rand.New(rand.NewPCG(seed, 7))
	r := rows{make([]float32, n), make([]float64, n)}
	for i := range n {
		r.scores[i] = rng.Float32()
		if levels > 1 {
			r.scores[i] = float32(rng.IntN(levels)) / float32(levels-1)
		}
		if rng.Float64() < click(float64(r.scores[i])) {
			r.labels[i] = 1
		}
	}
	return r
}

func linear(p float64) float64 { return 0.1 + 0.8*p }

func (r rows) accumulate(t testing.TB) *Accumulator {
	var a Accumulator
	for i, s := range r.scores {
		if err := a.Add(s, r.labels[i]); err != nil {
			t.Fatal(err)
		}
	}
	return &a
}

// reference computes a Result straight from the definitions: direct
// float64 sums, pairwise AUC, and bins cut by position from the rows
// sorted by score, each row counting as the mean label of its tied group.
func reference(r rows, bins int) Result {
	n := len(r.scores)
	nan := math.NaN()
	want := Result{Rows: int64(n), LabelRate: nan, MeanScore: nan, AUC: nan, LogLoss: nan, Brier: nan, ConstantLogLoss: nan, ECE: nan}
	if n == 0 {
		return want
	}
	var pos, sumS, sumLL, sumB float64
	for i, s32 := range r.scores {
		s, y := float64(s32), r.labels[i]
		pos += y
		sumS += s
		q := math.Min(math.Max(s, 1e-7), 1-1e-7)
		sumLL += -y*math.Log(q) - (1-y)*math.Log(1-q)
		sumB += (s - y) * (s - y)
	}
	want.Positives = int64(pos)
	want.LabelRate = pos / float64(n)
	want.MeanScore, want.LogLoss, want.Brier = sumS/float64(n), sumLL/float64(n), sumB/float64(n)
	q := math.Min(math.Max(want.LabelRate, 1e-7), 1-1e-7)
	want.ConstantLogLoss = -(want.LabelRate*math.Log(q) + (1-want.LabelRate)*math.Log(1-q))
	labels32 := make([]float32, n)
	for i, y := range r.labels {
		labels32[i] = float32(y)
	}
	want.AUC = pairAUC(r.scores, labels32)
	if bins <= 0 {
		return want
	}

	tie := map[float32][2]float64{} // score -> clicks, rows
	for i, s := range r.scores {
		c := tie[s]
		tie[s] = [2]float64{c[0] + r.labels[i], c[1] + 1}
	}
	sorted := slices.Clone(r.scores)
	slices.Sort(sorted)
	want.ECE = 0
	for b := range bins {
		lo, hi := b*n/bins, (b+1)*n/bins
		if lo == hi {
			continue
		}
		bin := Bin{Rows: int64(hi - lo), ScoreMin: float64(sorted[lo]), ScoreMax: float64(sorted[hi-1])}
		var s, c float64
		for _, x := range sorted[lo:hi] {
			s += float64(x)
			c += tie[x][0] / tie[x][1]
		}
		bin.MeanScore, bin.LabelRate = s/float64(hi-lo), c/float64(hi-lo)
		want.Bins = append(want.Bins, bin)
		want.ECE += float64(hi-lo) / float64(n) * math.Abs(bin.MeanScore-bin.LabelRate)
	}
	return want
}

// near reports whether x and y agree to a relative 1e-12 (or 1e-15
// absolute), or are both NaN.
func near(x, y float64) bool {
	return x == y || math.IsNaN(x) && math.IsNaN(y) || math.Abs(x-y) <= 1e-15+1e-12*math.Max(math.Abs(x), math.Abs(y))
}

// compare reports the differences between got and want, approximately
// (with close) or bit for bit.
func compare(got, want Result, exact bool) []string {
	eq := near
	if exact {
		eq = func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) }
	}
	var diffs []string
	check := func(name string, g, w float64) {
		if !eq(g, w) {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", name, g, w))
		}
	}
	if got.Rows != want.Rows || got.Positives != want.Positives {
		diffs = append(diffs, fmt.Sprintf("rows, positives = %d, %d, want %d, %d", got.Rows, got.Positives, want.Rows, want.Positives))
	}
	check("LabelRate", got.LabelRate, want.LabelRate)
	check("MeanScore", got.MeanScore, want.MeanScore)
	check("AUC", got.AUC, want.AUC)
	check("LogLoss", got.LogLoss, want.LogLoss)
	check("Brier", got.Brier, want.Brier)
	check("ConstantLogLoss", got.ConstantLogLoss, want.ConstantLogLoss)
	check("ECE", got.ECE, want.ECE)
	if len(got.Bins) != len(want.Bins) || (got.Bins == nil) != (want.Bins == nil) {
		return append(diffs, fmt.Sprintf("%d bins (nil %t), want %d (nil %t)", len(got.Bins), got.Bins == nil, len(want.Bins), want.Bins == nil))
	}
	for i, g := range got.Bins {
		w := want.Bins[i]
		if g.Rows != w.Rows {
			diffs = append(diffs, fmt.Sprintf("bin %d: %d rows, want %d", i, g.Rows, w.Rows))
		}
		check(fmt.Sprintf("bin %d ScoreMin", i), g.ScoreMin, w.ScoreMin)
		check(fmt.Sprintf("bin %d ScoreMax", i), g.ScoreMax, w.ScoreMax)
		check(fmt.Sprintf("bin %d MeanScore", i), g.MeanScore, w.MeanScore)
		check(fmt.Sprintf("bin %d LabelRate", i), g.LabelRate, w.LabelRate)
	}
	return diffs
}

func TestResultAgainstReference(t *testing.T) {
	for _, c := range []struct {
		name      string
		n, levels int
		click     func(float64) float64
	}{
		{"continuous", 1500, 0, linear},
		{"many ties", 1500, 12, linear},
		{"two values", 400, 2, linear},
		{"one value", 300, 1, func(float64) float64 { return 0.3 }},
		{"saturated scores", 500, 3, func(p float64) float64 { return 1 - p }},
		{"only clicks", 200, 5, func(float64) float64 { return 1 }},
		{"only non-clicks", 200, 0, func(float64) float64 { return 0 }},
		{"small", 7, 4, linear},
		{"one row", 1, 0, linear},
		{"empty", 0, 0, linear},
	} {
		for _, bins := range []int{0, 1, 3, 10, 25, 10000} {
			t.Run(fmt.Sprintf("%s/bins=%d", c.name, bins), func(t *testing.T) {
				r := draw(uint64(c.n*31+bins), c.n, c.levels, c.click)
				if c.levels == 1 {
					for i := range r.scores {
						r.scores[i] = 0.3
					}
				}
				got := r.accumulate(t).Result(bins)
				for _, d := range compare(got, reference(r, bins), false) {
					t.Error(d)
				}
			})
		}
	}
}

func TestResultDefinitions(t *testing.T) {
	r := draw(3, 2000, 50, linear)
	a := r.accumulate(t)
	got := a.Result(10)

	t.Run("AUC and LogLoss of the slice functions", func(t *testing.T) {
		labels := make([]float32, len(r.labels))
		for i, y := range r.labels {
			labels[i] = float32(y)
		}
		if want := AUC(r.scores, labels); !near(got.AUC, want) {
			t.Errorf("AUC %v, AUC() %v", got.AUC, want)
		}
		if want := LogLoss(r.scores, labels); !near(got.LogLoss, want) {
			t.Errorf("LogLoss %v, LogLoss() %v", got.LogLoss, want)
		}
		// ConstantLogLoss: a constant prediction at the label rate. The
		// float32 rounding of the rate moves the loss only to second order
		// (the rate minimizes it).
		constant := make([]float32, len(labels))
		for i := range constant {
			constant[i] = float32(got.LabelRate)
		}
		if want := LogLoss(constant, labels); math.Abs(got.ConstantLogLoss-want) > 1e-12 {
			t.Errorf("ConstantLogLoss %v, LogLoss(constant) %v", got.ConstantLogLoss, want)
		}
		if !(got.LogLoss < got.ConstantLogLoss) {
			t.Errorf("an informative model's log loss %v should beat the constant's %v", got.LogLoss, got.ConstantLogLoss)
		}
	})
	t.Run("bins", func(t *testing.T) {
		var rows int64
		for i, b := range got.Bins {
			rows += b.Rows
			if b.Rows < 200 || b.Rows > 201 { // 2000 rows in 10 bins: 200 each
				t.Errorf("bin %d has %d rows", i, b.Rows)
			}
			if !(b.ScoreMin <= b.MeanScore && b.MeanScore <= b.ScoreMax) || i > 0 && got.Bins[i-1].ScoreMax > b.ScoreMin {
				t.Errorf("bin %d out of order: %+v", i, b)
			}
		}
		if rows != got.Rows {
			t.Errorf("bins hold %d rows of %d", rows, got.Rows)
		}
	})
}

func TestResultEdges(t *testing.T) {
	t.Run("no rows", func(t *testing.T) {
		var a Accumulator
		got := a.Result(10)
		if got.Rows != 0 || got.Positives != 0 || got.Bins != nil {
			t.Errorf("empty result %+v", got)
		}
		for name, v := range map[string]float64{"LabelRate": got.LabelRate, "MeanScore": got.MeanScore, "AUC": got.AUC, "LogLoss": got.LogLoss, "Brier": got.Brier, "ConstantLogLoss": got.ConstantLogLoss, "ECE": got.ECE} {
			if !math.IsNaN(v) {
				t.Errorf("%s = %v without rows, want NaN", name, v)
			}
		}
	})
	t.Run("bins=0", func(t *testing.T) {
		got := draw(1, 100, 0, linear).accumulate(t).Result(0)
		if got.Bins != nil || !math.IsNaN(got.ECE) || math.IsNaN(got.AUC) || math.IsNaN(got.LogLoss) {
			t.Errorf("bins=0: %+v", got)
		}
	})
	t.Run("fewer rows than bins", func(t *testing.T) {
		var a Accumulator
		for _, row := range []struct {
			s float32
			y float64
		}{{0.7, 1}, {0.2, 0}, {0.7, 0}} {
			if err := a.Add(row.s, row.y); err != nil {
				t.Fatal(err)
			}
		}
		got := a.Result(10)
		want := []Bin{
			{Rows: 1, ScoreMin: float64(float32(0.2)), ScoreMax: float64(float32(0.2)), MeanScore: float64(float32(0.2)), LabelRate: 0},
			{Rows: 1, ScoreMin: float64(float32(0.7)), ScoreMax: float64(float32(0.7)), MeanScore: float64(float32(0.7)), LabelRate: 0.5},
			{Rows: 1, ScoreMin: float64(float32(0.7)), ScoreMax: float64(float32(0.7)), MeanScore: float64(float32(0.7)), LabelRate: 0.5},
		}
		if !slices.Equal(got.Bins, want) {
			t.Errorf("bins %+v, want %+v", got.Bins, want)
		}
	})
	t.Run("one class", func(t *testing.T) {
		got := draw(2, 50, 0, func(float64) float64 { return 0 }).accumulate(t).Result(5)
		if !math.IsNaN(got.AUC) || got.Positives != 0 || math.IsNaN(got.LogLoss) {
			t.Errorf("one class: %+v", got)
		}
		if want := -math.Log(1 - 1e-7); got.ConstantLogLoss != want {
			t.Errorf("ConstantLogLoss %v, want the clipped %v", got.ConstantLogLoss, want)
		}
	})
}

func TestCalibration(t *testing.T) {
	const n = 200000
	truth := func(p float64) float64 { return p }
	t.Run("calibrated", func(t *testing.T) {
		got := draw(11, n, 0, truth).accumulate(t).Result(10)
		if got.ECE > 0.01 {
			t.Errorf("ECE of calibrated scores %v, want < 0.01", got.ECE)
		}
		for i, b := range got.Bins {
			if math.Abs(b.MeanScore-b.LabelRate) > 0.02 {
				t.Errorf("bin %d: mean score %v, label rate %v", i, b.MeanScore, b.LabelRate)
			}
		}
	})
	t.Run("scores squared", func(t *testing.T) {
		r := draw(12, n, 0, truth)
		for i, s := range r.scores {
			r.scores[i] = s * s
		}
		got := r.accumulate(t).Result(10)
		// Scores p² of rows clicked with probability p: p² <= p in every
		// bin, so ECE ≈ E[p − p²] = 1/2 − 1/3.
		if want := 1.0 / 6; math.Abs(got.ECE-want) > 0.01 {
			t.Errorf("ECE of p² scores %v, want about %v", got.ECE, want)
		}
	})
	t.Run("one tied score", func(t *testing.T) {
		// Every row scored 0.1, 100 clicks in 1000: calibrated. The tied
		// rows span every bin and share the clicks, so every decile has
		// label rate 0.1; ordering ties by label would give 0s and 1s.
		var a Accumulator
		for i := range 1000 {
			if err := a.Add(0.1, float64(min(1, i%10/9))); err != nil {
				t.Fatal(err)
			}
		}
		got := a.Result(10)
		if len(got.Bins) != 10 || got.ECE > 1e-8 {
			t.Errorf("%d bins, ECE %v, want 10 bins and ECE 0 (up to float32(0.1))", len(got.Bins), got.ECE)
		}
		for i, b := range got.Bins {
			if b.LabelRate != 0.1 || b.Rows != 100 {
				t.Errorf("bin %d: %+v", i, b)
			}
		}
	})
}

func TestMergeIsExact(t *testing.T) {
	for _, levels := range []int{0, 20} {
		r := draw(uint64(5+levels), 3000, levels, linear)
		// One accumulator over the rows in another order.
		perm := rand.New(rand.NewPCG(9, 9)).Perm(len(r.scores))
		var whole rows
		for _, i := range perm {
			whole.scores = append(whole.scores, r.scores[i])
			whole.labels = append(whole.labels, r.labels[i])
		}
		want := whole.accumulate(t).Result(10)

		half := len(r.scores) / 2
		a := rows{r.scores[:half], r.labels[:half]}.accumulate(t)
		b := rows{r.scores[half:], r.labels[half:]}.accumulate(t)
		a.Merge(b)
		a.Merge(nil)
		a.Merge(&Accumulator{})
		if d := compare(a.Result(10), want, true); d != nil {
			t.Errorf("levels %d: two halves merged: %v", levels, d)
		}
		if d := compare(b.Result(10), rows{r.scores[half:], r.labels[half:]}.accumulate(t).Result(10), true); d != nil {
			t.Errorf("levels %d: Merge changed its argument: %v", levels, d)
		}

		// Three shards merged into an empty accumulator, last first.
		var m Accumulator
		for _, s := range [][2]int{{2000, 3000}, {0, 1000}, {1000, 2000}} {
			m.Merge(rows{r.scores[s[0]:s[1]], r.labels[s[0]:s[1]]}.accumulate(t))
		}
		if d := compare(m.Result(10), want, true); d != nil {
			t.Errorf("levels %d: three shards merged: %v", levels, d)
		}

		// Merging with itself doubles every row.
		double := rows{append(slices.Clone(r.scores), r.scores...), append(slices.Clone(r.labels), r.labels...)}
		self := r.accumulate(t)
		self.Merge(self)
		if d := compare(self.Result(10), double.accumulate(t).Result(10), true); d != nil {
			t.Errorf("levels %d: merged with itself: %v", levels, d)
		}
	}
}

func TestAddAfterResult(t *testing.T) {
	r := draw(21, 2000, 30, linear)
	want := r.accumulate(t).Result(10)

	var a Accumulator
	for i, s := range r.scores {
		if i%500 == 0 {
			first := a.Result(7) // sorts what is there so far
			if d := compare(a.Result(7), first, true); d != nil {
				t.Fatalf("a second Result differs: %v", d)
			}
		}
		if err := a.Add(s, r.labels[i]); err != nil {
			t.Fatal(err)
		}
	}
	if d := compare(a.Result(10), want, true); d != nil {
		t.Errorf("adding after Result: %v", d)
	}
}

func TestAddRejects(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		score float32
		label float64
		err   error
		msg   string
	}{
		{0.5, 0.5, ErrLabel, "invalid label: 0.5 is not 0 or 1"},
		{0.5, 2, ErrLabel, "invalid label: 2 is not 0 or 1"},
		{0.5, -1, ErrLabel, "invalid label: -1 is not 0 or 1"},
		{0.5, nan, ErrLabel, "invalid label: NaN is not 0 or 1"},
		{0.5, math.Inf(1), ErrLabel, "invalid label: +Inf is not 0 or 1"},
		{float32(nan), 1, ErrScore, "invalid score: NaN is not a probability in [0, 1]"},
		{-0.1, 0, ErrScore, "invalid score: -0.1 is not a probability in [0, 1]"},
		{1.1, 1, ErrScore, "invalid score: 1.1 is not a probability in [0, 1]"},
		{float32(math.Inf(1)), 1, ErrScore, "invalid score: +Inf is not a probability in [0, 1]"},
		{float32(math.Inf(-1)), 0, ErrScore, "invalid score: -Inf is not a probability in [0, 1]"},
		{1.1, 0.5, ErrScore, "invalid score: 1.1"},
	}
	var a Accumulator
	for _, tt := range tests {
		err := a.Add(tt.score, tt.label)
		if !errors.Is(err, tt.err) || err == nil || !strings.HasPrefix(err.Error(), tt.msg) {
			t.Errorf("Add(%v, %v) = %v, want %v (%q)", tt.score, tt.label, err, tt.err, tt.msg)
		}
	}
	if a.Rows() != 0 {
		t.Errorf("rejected rows were kept: %d rows", a.Rows())
	}
	for _, s := range []float32{0, float32(math.Copysign(0, -1)), 1, 1e-30} {
		for _, y := range []float64{0, 1} {
			if err := a.Add(s, y); err != nil {
				t.Errorf("Add(%v, %v): %v", s, y, err)
			}
		}
	}
	if got := a.Result(2); got.Rows != 8 || got.Positives != 4 || got.Bins[0].ScoreMin != 0 || math.Signbit(got.Bins[0].ScoreMin) {
		t.Errorf("boundary rows: %+v", got)
	}
}

func BenchmarkAccumulator(b *testing.B) {
	const n = 1 << 20
	r := draw(1, n, 0, linear)
	for b.Loop() {
		var a Accumulator
		for i, s := range r.scores {
			if err := a.Add(s, r.labels[i]); err != nil {
				b.Fatal(err)
			}
		}
		if res := a.Result(10); res.Rows != n {
			b.Fatal(res.Rows)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
