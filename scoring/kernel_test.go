package scoring

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestPackedLinearMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct{ n, in, out int }{
		{1, 1, 1}, {6, 4, 16}, {7, 3, 17}, {5, 429, 256}, {13, 256, 128}, {64, 128, 1}, {2, 9, 33}, {100, 35, 8},
	} {
		t.Run(fmt.Sprintf("%dx%dx%d", c.n, c.in, c.out), func(t *testing.T) {
			x := make([]float32, c.n*c.in)
			w := make([]float32, c.in*c.out)
			b := make([]float32, c.out)
			for _, s := range [][]float32{x, w, b} {
				for i := range s {
					s[i] = float32(rng.NormFloat64())
				}
			}
			p := packLinear(w, b, c.in, c.out)
			for _, relu := range []bool{false, true} {
				y := make([]float32, c.n*c.out)
				p.forward(x, c.n, y, relu, make([]float32, tileRows*tileCols))
				for r := range c.n {
					for j := range c.out {
						want := float64(b[j])
						for i := range c.in {
							want += float64(x[r*c.in+i]) * float64(w[i*c.out+j])
						}
						if relu {
							want = max(want, 0)
						}
						if d := math.Abs(float64(y[r*c.out+j]) - want); d > 1e-4*(1+math.Abs(want)) {
							t.Fatalf("relu %v: y[%d][%d] = %g, want %g", relu, r, j, y[r*c.out+j], want)
						}
					}
				}
			}
		})
	}
}

// The assembly tile and the portable one agree (up to FMA rounding).
func TestTileKernelsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, k := range []int{1, 3, 4, 5, 17, 429} {
		var rows [tileRows][]float32
		var a [tileRows]*float32
		for r := range rows {
			rows[r] = make([]float32, k)
			for i := range rows[r] {
				rows[r][i] = float32(rng.NormFloat64())
			}
			a[r] = &rows[r][0]
		}
		b := make([]float32, k*tileCols)
		bias := make([]float32, tileCols)
		for i := range b {
			b[i] = float32(rng.NormFloat64())
		}
		for i := range bias {
			bias[i] = float32(rng.NormFloat64())
		}
		got := make([]float32, tileRows*20)
		want := make([]float32, tileRows*20)
		tile6x16(k, &a, b, got, 20, bias, true)
		tile6x16Go(k, &a, b, want, 20, bias, true)
		for i := range got {
			if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*(1+math.Abs(float64(want[i]))) {
				t.Fatalf("k %d: element %d: %g, want %g (%s)", k, i, got[i], want[i], Kernel())
			}
		}
	}
}

func BenchmarkPackedLinear(b *testing.B) {
	for _, c := range []struct{ n, in, out int }{{1024, 429, 256}, {1024, 256, 128}, {1024, 128, 1}} {
		b.Run(fmt.Sprintf("%dx%dx%d", c.n, c.in, c.out), func(b *testing.B) {
			x := make([]float32, c.n*c.in)
			w := make([]float32, c.in*c.out)
			for i := range x {
				x[i] = 0.5
			}
			for i := range w {
				w[i] = 0.25
			}
			p := packLinear(w, make([]float32, c.out), c.in, c.out)
			y := make([]float32, c.n*c.out)
			scratch := make([]float32, tileRows*tileCols)
			for b.Loop() {
				p.forward(x, c.n, y, true, scratch)
			}
			b.ReportMetric(2*float64(c.n*c.in*c.out)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
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
