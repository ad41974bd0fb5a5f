package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// naiveLinear is y = act(x·W + b) in float64.
func naiveLinear(x, w, b []float32, n, in, out int, relu bool) []float64 {
	y := make([]float64, n*out)
	for r := range n {
		for j := range out {
			s := float64(b[j])
			for i := range in {
				s += float64(x[r*in+i]) * float64(w[i*out+j])
			}
			if relu {
				s = max(s, 0)
			}
			y[r*out+j] = s
		}
	}
	return y
}

func randomFloats(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

// Every kernel this build and CPU support, the portable one included, and
// the one Forward uses (with the openblas tag, OpenBLAS), computes a dense
// layer as the float64 reference does.
func TestPackedLinearMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	type run struct {
		name    string
		forward func(p *Linear, x []float32, n int, y []float32, relu bool)
	}
	runs := []run{{"Forward/" + Name(), (*Linear).Forward}}
	for _, k := range impls() {
		runs = append(runs, run{"tiles/" + k.name, func(p *Linear, x []float32, n int, y []float32, relu bool) {
			p.forwardTiles(k, x, n, y, relu)
		}})
	}
	for _, c := range []struct{ n, in, out int }{
		{1, 1, 1}, {6, 4, 16}, {7, 3, 17}, {5, 429, 256}, {13, 256, 128}, {64, 128, 1}, {2, 9, 33}, {100, 35, 8},
	} {
		x, w, b := randomFloats(rng, c.n*c.in), randomFloats(rng, c.in*c.out), randomFloats(rng, c.out)
		p := PackLinear(w, b, c.in, c.out)
		for _, rn := range runs {
			t.Run(fmt.Sprintf("%s/%dx%dx%d", rn.name, c.n, c.in, c.out), func(t *testing.T) {
				for _, relu := range []bool{false, true} {
					y := make([]float32, c.n*c.out)
					rn.forward(p, x, c.n, y, relu)
					want := naiveLinear(x, w, b, c.n, c.in, c.out, relu)
					for i, v := range want {
						if d := math.Abs(float64(y[i]) - v); d > 1e-4*(1+math.Abs(v)) {
							t.Fatalf("relu %v: y[%d][%d] = %g, want %g", relu, i/c.out, i%c.out, y[i], v)
						}
					}
				}
			})
		}
	}
}

// Every tile kernel agrees with the portable one (up to FMA rounding).
func TestTileKernelsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, kn := range impls() {
		for _, k := range []int{1, 3, 4, 5, 17, 429} {
			t.Run(fmt.Sprintf("%s/k=%d", kn.name, k), func(t *testing.T) {
				var rows [tileRows][]float32
				var a [tileRows]*float32
				for r := range rows {
					rows[r] = randomFloats(rng, k)
					a[r] = &rows[r][0]
				}
				b, bias := randomFloats(rng, k*tileCols), randomFloats(rng, tileCols)
				for _, relu := range []bool{false, true} {
					got := make([]float32, tileRows*20)
					want := make([]float32, tileRows*20)
					kn.tile(k, &a, b, got, 20, bias, relu)
					tile6x16Go(k, &a, b, want, 20, bias, relu)
					for i := range got {
						if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*(1+math.Abs(float64(want[i]))) {
							t.Fatalf("relu %v: element %d: %g, want %g", relu, i, got[i], want[i])
						}
					}
				}
			})
		}
	}
}

// Every gather kernel copies the indexed rows and nothing else.
func TestGather16(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const tableRows = 50
	table := randomFloats(rng, tableRows*16)
	for _, kn := range append(impls(), &impl{name: "Gather16", gather: Gather16}) {
		for _, c := range []struct{ rows, k, pad int }{{0, 3, 0}, {1, 0, 2}, {1, 1, 0}, {7, 3, 5}, {64, 26, 13}} {
			t.Run(fmt.Sprintf("%s/%dx%d", kn.name, c.rows, c.k), func(t *testing.T) {
				idx := make([]int32, c.rows*c.k)
				for i := range idx {
					idx[i] = int32(rng.IntN(tableRows))
				}
				stride := c.k*16 + c.pad
				got := make([]float32, c.rows*stride)
				for i := range got {
					got[i] = -1
				}
				want := slices.Clone(got)
				for r := range c.rows {
					for j := range c.k {
						i := int(idx[r*c.k+j])
						copy(want[r*stride+j*16:], table[i*16:(i+1)*16])
					}
				}
				kn.gather(got, stride, table, idx, c.rows, c.k)
				if !slices.Equal(got, want) {
					t.Errorf("gather differs from the naive copy")
				}
			})
		}
	}
}

func TestGather16RejectsBadIndex(t *testing.T) {
	table := make([]float32, 3*16)
	for _, kn := range impls() {
		for _, bad := range []int32{3, -1} {
			t.Run(fmt.Sprintf("%s/%d", kn.name, bad), func(t *testing.T) {
				defer func() {
					if recover() == nil {
						t.Errorf("index %d: no panic", bad)
					}
				}()
				kn.gather(make([]float32, 2*16), 16, table, []int32{0, bad}, 2, 1)
			})
		}
	}
}

// A Linear knows the weights it was packed from: the same memory, and the
// same bias values.
func TestPackedFrom(t *testing.T) {
	w, w2, b := []float32{1, 2, 3, 4}, []float32{1, 2, 3, 4}, []float32{5, 6}
	p := PackLinear(w, b, 2, 2)
	if !p.PackedFrom(w, b) {
		t.Error("not packed from its own weights")
	}
	if p.PackedFrom(w2, b) {
		t.Error("packed from equal weights in other memory")
	}
	if p.PackedFrom(w, []float32{5, 7}) {
		t.Error("packed from another bias")
	}
}

func TestKernelName(t *testing.T) {
	switch k := Name(); k {
	case "avx2-fma", "go", "openblas":
	default:
		t.Errorf("Name() = %q", k)
	}
	if (OpenBLAS() != nil) != (Name() == "openblas") {
		t.Errorf("OpenBLAS() = %v with kernel %q", OpenBLAS(), Name())
	}
	t.Log("kernel:", Name())
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
			p := PackLinear(w, make([]float32, c.out), c.in, c.out)
			y := make([]float32, c.n*c.out)
			for b.Loop() {
				p.Forward(x, c.n, y, true)
			}
			b.ReportMetric(2*float64(c.n*c.in*c.out)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
