package scoring

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/adtech/scorer/scoring/internal/modeltest"
)

// The scoring graph is an ordinary Gorgonia program: Gorgonia's tape
// machine computes the same probabilities as the plan that Model runs.
func TestScoringGraphOnTapeMachine(t *testing.T) {
	for i, c := range shapeCases {
		t.Run(c.name, func(t *testing.T) {
			bu := modeltest.RandomBundle(c.kind, c.dense, c.cards, c.emb, c.hidden, uint64(i))
			const bs = 13
			b := modeltest.RandomBatch(bs, bu.Inputs, uint64(200+i))
			m, err := NewModel(bu, bs)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = m.Close() }()
			want := make([]float32, bs)
			if err := m.Score(b, want); err != nil {
				t.Fatal(err)
			}

			net, err := buildScoringNetwork(bu.Arch, bu.Inputs, bu.Weights, bs)
			if err != nil {
				t.Fatal(err)
			}
			m2 := &Model{net: net}
			m2.indexInputs(bu.Inputs)
			if err := m2.fill(b, 0, bs); err != nil {
				t.Fatal(err)
			}
			vm := gorgonia.NewTapeMachine(net.g)
			defer func() { _ = vm.Close() }()
			for run := range 2 { // a second run after Reset gives the same
				if err := vm.RunAll(); err != nil {
					t.Fatal(err)
				}
				got := make([]float32, bs)
				if err := read(net.prob.Value(), got); err != nil {
					t.Fatal(err)
				}
				vm.Reset()
				if !slices.Equal(got, want) {
					t.Fatalf("run %d: tape machine %v, plan %v", run, got, want)
				}
			}
		})
	}
}

// Scoring in steady state allocates nothing, for every architecture.
func TestScoreAllocatesNothing(t *testing.T) {
	for i, c := range shapeCases {
		t.Run(c.name, func(t *testing.T) {
			bu := modeltest.RandomBundle(c.kind, c.dense, c.cards, c.emb, c.hidden, uint64(i))
			m, err := NewModel(bu, 64)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = m.Close() }()
			b := modeltest.RandomBatch(150, bu.Inputs, 3) // split and padded
			out := make([]float32, b.N)
			if n := testing.AllocsPerRun(10, func() {
				if err := m.Score(b, out); err != nil {
					t.Fatal(err)
				}
			}); n != 0 {
				t.Errorf("%v allocations per Score", n)
			}
		})
	}
}

// A linear op packs its weights once, and again if it is given other
// weights (another tensor, or new values in its bias).
func TestLinearOpRepacks(t *testing.T) {
	const n, in, out = 7, 5, 3
	rng := rand.New(rand.NewPCG(1, 1))
	randf := func(size int) []float32 {
		s := make([]float32, size)
		for i := range s {
			s[i] = float32(rng.NormFloat64())
		}
		return s
	}
	x, w1, w2, b := randf(n*in), randf(in*out), randf(in*out), randf(out)
	naive := func(w, b []float32) []float32 {
		y := make([]float32, n*out)
		for r := range n {
			for j := range out {
				s := float64(b[j])
				for i := range in {
					s += float64(x[r*in+i]) * float64(w[i*out+j])
				}
				y[r*out+j] = float32(s)
			}
		}
		return y
	}
	op := newLinearOp("test", in, out, n, false)
	dense := func(s []float32, shape ...int) *tensor.Dense {
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(s))
	}
	for i, c := range []struct{ w, b []float32 }{{w1, b}, {w2, b}, {w2, randf(out)}, {w1, b}} {
		copy(b, c.b) // the third case changes the bias in place
		v, err := op.Do(dense(x, n, in), dense(c.w, in, out), dense(b, 1, out))
		if err != nil {
			t.Fatal(err)
		}
		got, want := v.(*tensor.Dense).Float32s(), naive(c.w, b)
		for j := range got {
			if math.Abs(float64(got[j]-want[j])) > 1e-5 {
				t.Fatalf("case %d: y[%d] = %g, want %g", i, j, got[j], want[j])
			}
		}
	}
}

func BenchmarkDeepInput(b *testing.B) {
	const rows, k, e, d, n = 26 * 65537, 26, 16, 13, 1024
	rng := rand.New(rand.NewPCG(5, 6))
	table := make([]float32, rows*e)
	for i := range table {
		table[i] = float32(i)
	}
	idx := make([]int32, n*k)
	for i := range idx {
		idx[i] = int32(rng.IntN(rows))
	}
	op := newDeepInputOp(rows, k, e, d, n)
	in := []gorgonia.Value{
		tensor.New(tensor.WithShape(rows, e), tensor.WithBacking(table)),
		tensor.New(tensor.WithShape(n, k), tensor.WithBacking(idx)),
		tensor.New(tensor.WithShape(n, d), tensor.WithBacking(make([]float32, n*d))),
	}
	for b.Loop() {
		if _, err := op.Do(in...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// The wide op computes bias + Σ table[index] + x·w per row (rows in fours
// and a tail), and refuses an index outside its table on its own, whatever
// fill checked before.
func TestWideOp(t *testing.T) {
	const rows, k, d, batch = 10, 3, 2, 6
	op := newWideOp(rows, k, d, batch)
	table := tensor.New(tensor.WithShape(rows, 1), tensor.WithBacking([]float32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}))
	w := tensor.New(tensor.WithShape(d, 1), tensor.WithBacking([]float32{10, 100}))
	x := tensor.New(tensor.WithShape(batch, d), tensor.WithBacking([]float32{1, 0, 0, 1, 1, 1, 2, 0, 0, 2, 3, 3}))
	bias := tensor.New(tensor.WithShape(1, 1), tensor.WithBacking([]float32{0.5}))
	idx := []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 0, 0, 0, 1, 1, 1}
	in := tensor.New(tensor.WithShape(batch, k), tensor.WithBacking(idx))
	got, err := op.Do(table, in, w, x, bias)
	if err != nil {
		t.Fatal(err)
	}
	for r, v := range got.Data().([]float32) {
		want := float32(0.5)
		for _, i := range idx[r*k : r*k+k] {
			want += float32(i)
		}
		want += x.Float32s()[r*d]*10 + x.Float32s()[r*d+1]*100
		if v != want {
			t.Errorf("row %d: %g, want %g", r, v, want)
		}
	}
	for _, bad := range []int32{rows, -1} {
		idx[13] = bad
		if _, err := op.Do(table, in, w, x, bias); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("index %d out of range [0, %d)", bad, rows)) {
			t.Errorf("index %d: %v, want an index error", bad, err)
		}
	}
}

// The deep input op writes each row's looked-up embeddings side by side,
// then its dense features, and refuses an index outside the table on its
// own (the gather's check at width 16, its own loop at other widths),
// whatever fill checked before.
func TestDeepInputOp(t *testing.T) {
	const rows, k, d, batch = 7, 3, 2, 5
	for _, e := range []int{16, 4} {
		t.Run(fmt.Sprintf("e=%d", e), func(t *testing.T) {
			op := newDeepInputOp(rows, k, e, d, batch)
			tab := make([]float32, rows*e)
			for i := range tab {
				tab[i] = float32(i)
			}
			dense := make([]float32, batch*d)
			for i := range dense {
				dense[i] = -float32(i) - 1
			}
			idx := []int32{0, 1, 2, 3, 4, 5, 6, 6, 6, 0, 0, 0, 2, 4, 6}
			table := tensor.New(tensor.WithShape(rows, e), tensor.WithBacking(tab))
			in := tensor.New(tensor.WithShape(batch, k), tensor.WithBacking(idx))
			x := tensor.New(tensor.WithShape(batch, d), tensor.WithBacking(dense))
			got, err := op.Do(table, in, x)
			if err != nil {
				t.Fatal(err)
			}
			var want []float32
			for r := range batch {
				for _, i := range idx[r*k : (r+1)*k] {
					want = append(want, tab[int(i)*e:(int(i)+1)*e]...)
				}
				want = append(want, dense[r*d:(r+1)*d]...)
			}
			if !slices.Equal(got.Data().([]float32), want) {
				t.Errorf("got %v, want %v", got.Data(), want)
			}
			for _, bad := range []int32{rows, -1} {
				idx[13] = bad
				if _, err := op.Do(table, in, x); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("index %d out of range [0, %d)", bad, rows)) {
					t.Errorf("index %d: %v, want an index error", bad, err)
				}
			}
		})
	}
}
