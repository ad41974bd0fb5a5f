package scoring

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestEmbedForward(t *testing.T) {
	g := gorgonia.NewGraph()
	table := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(4, 2), gorgonia.WithName("t"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(4, 2), tensor.WithBacking([]float32{0, 1, 10, 11, 20, 21, 30, 31}))))
	idx := gorgonia.NewMatrix(g, tensor.Int32, gorgonia.WithShape(2, 3), gorgonia.WithName("i"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]int32{3, 0, 3, 1, 2, 1}))))
	out, err := embed(table, idx)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Shape().Eq(tensor.Shape{2, 6}) {
		t.Fatalf("shape %v, want (2, 6)", out.Shape())
	}
	vm := gorgonia.NewTapeMachine(g)
	defer func() { _ = vm.Close() }()
	for run := range 2 { // the second run may use a preallocated output
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		got := out.Value().Data().([]float32)
		want := []float32{30, 31, 0, 1, 30, 31, 10, 11, 20, 21, 10, 11}
		if !slices.Equal(got, want) {
			t.Errorf("run %d: %v, want %v", run, got, want)
		}
		vm.Reset()
	}
}

func TestEmbedRejectsBadIndex(t *testing.T) {
	g := gorgonia.NewGraph()
	table := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(3, 2), gorgonia.WithName("t"),
		gorgonia.WithValue(tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(3, 2))))
	idx := gorgonia.NewMatrix(g, tensor.Int32, gorgonia.WithShape(1, 2), gorgonia.WithName("i"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(1, 2), tensor.WithBacking([]int32{1, 3}))))
	if _, err := embed(table, idx); err != nil {
		t.Fatal(err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer func() { _ = vm.Close() }()
	err := vm.RunAll()
	if err == nil || !strings.Contains(err.Error(), "index 3 out of range [0, 3)") {
		t.Errorf("RunAll: %v, want an index error", err)
	}
}

// embedCost builds cost = Σ (embed(table, idx) ⊙ r)² in float64 and returns
// the table node and the cost node.
func embedCost(t *testing.T, g *gorgonia.ExprGraph, table []float64, rows, dim int, idx []int32, b, k int, r []float64) (*gorgonia.Node, *gorgonia.Node) {
	t.Helper()
	tn := gorgonia.NewMatrix(g, tensor.Float64, gorgonia.WithShape(rows, dim), gorgonia.WithName("table"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(rows, dim), tensor.WithBacking(table))))
	in := gorgonia.NewMatrix(g, tensor.Int32, gorgonia.WithShape(b, k), gorgonia.WithName("idx"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(b, k), tensor.WithBacking(idx))))
	rn := gorgonia.NewMatrix(g, tensor.Float64, gorgonia.WithShape(b, k*dim), gorgonia.WithName("r"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(b, k*dim), tensor.WithBacking(r))))
	e, err := embed(tn, in)
	if err != nil {
		t.Fatal(err)
	}
	cost := gorgonia.Must(gorgonia.Sum(gorgonia.Must(gorgonia.Square(gorgonia.Must(gorgonia.HadamardProd(e, rn))))))
	return tn, cost
}

// TestEmbedGradient compares the op's gradient, symbolic (tape machine) and
// automatic (lisp machine), with central differences.
func TestEmbedGradient(t *testing.T) {
	const rows, dim, b, k = 6, 3, 4, 3
	rng := rand.New(rand.NewPCG(1, 2))
	table := make([]float64, rows*dim)
	for i := range table {
		table[i] = rng.NormFloat64()
	}
	// Repeated indices (within and across rows) must accumulate; row 5 is
	// never looked up and gets a zero gradient.
	idx := []int32{0, 1, 1, 2, 0, 3, 4, 4, 4, 1, 2, 0}
	r := make([]float64, b*k*dim)
	for i := range r {
		r[i] = rng.NormFloat64()
	}
	costAt := func(tbl []float64) float64 {
		var s float64
		for j, i := range idx {
			for e := range dim {
				v := tbl[int(i)*dim+e] * r[j*dim+e]
				s += v * v
			}
		}
		return s
	}
	numeric := make([]float64, len(table))
	const h = 1e-6
	for i := range table {
		tp, tm := slices.Clone(table), slices.Clone(table)
		tp[i] += h
		tm[i] -= h
		numeric[i] = (costAt(tp) - costAt(tm)) / (2 * h)
	}

	machines := []struct {
		name string
		run  func(t *testing.T) []float64
	}{
		{"symbolic", func(t *testing.T) []float64 {
			g := gorgonia.NewGraph()
			tn, cost := embedCost(t, g, slices.Clone(table), rows, dim, idx, b, k, r)
			if _, err := gorgonia.Grad(cost, tn); err != nil {
				t.Fatal(err)
			}
			vm := gorgonia.NewTapeMachine(g, gorgonia.BindDualValues(tn))
			defer func() { _ = vm.Close() }()
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			return gradOf(t, tn)
		}},
		{"automatic", func(t *testing.T) []float64 {
			g := gorgonia.NewGraph()
			tn, _ := embedCost(t, g, slices.Clone(table), rows, dim, idx, b, k, r)
			vm := gorgonia.NewLispMachine(g)
			defer func() { _ = vm.Close() }()
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			return gradOf(t, tn)
		}},
	}
	for _, m := range machines {
		t.Run(m.name, func(t *testing.T) {
			got := m.run(t)
			for i := range numeric {
				if math.Abs(got[i]-numeric[i]) > 1e-6*max(1, math.Abs(numeric[i])) {
					t.Errorf("d cost / d table[%d, %d] = %g, numeric %g", i/dim, i%dim, got[i], numeric[i])
				}
			}
			for e := range dim {
				if got[5*dim+e] != 0 {
					t.Errorf("unused row 5 has gradient %g", got[5*dim+e])
				}
			}
		})
	}
}

func gradOf(t *testing.T, n *gorgonia.Node) []float64 {
	t.Helper()
	gv, err := n.Grad()
	if err != nil {
		t.Fatal(err)
	}
	d, err := denseOf(gv)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Clone(d.Float64s())
}

// An embedding gradient that reuses its previous output (training's, from
// SymDiff) gives each step what a fresh zero table would: the rows the
// previous step touched are zero again. After an error it starts afresh.
func TestEmbedGradReusesOutput(t *testing.T) {
	const rows, dim = 50, 3
	reused := embedGradOp{rows: rows, dim: dim, last: new(lastGrad)}
	fresh := embedGradOp{rows: rows, dim: dim}
	rng := rand.New(rand.NewPCG(9, 10))
	for step := range 6 {
		idx := make([]int32, 4*2)
		for i := range idx {
			idx[i] = int32(rng.IntN(rows))
		}
		if step == 3 {
			idx[5] = rows // out of range: an error, and the cache dropped
		}
		g := make([]float32, len(idx)*dim)
		for i := range g {
			g[i] = float32(rng.NormFloat64())
		}
		in := []gorgonia.Value{
			tensor.New(tensor.WithShape(4, 2), tensor.WithBacking(idx)),
			tensor.New(tensor.WithShape(4, 2*dim), tensor.WithBacking(g)),
		}
		got, err := reused.Do(in...)
		want, werr := fresh.Do(in...)
		if step == 3 {
			if err == nil || werr == nil {
				t.Fatalf("step %d: errors %v and %v, want both", step, err, werr)
			}
			continue
		}
		if err != nil || werr != nil {
			t.Fatal(err, werr)
		}
		if !slices.Equal(got.Data().([]float32), want.Data().([]float32)) {
			t.Fatalf("step %d: reused output differs from a fresh one", step)
		}
	}
}
