package kernels

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/adtech/scorer/internal/hugepage"
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

// sameBits reports whether a and b are the same float32, bit for bit, or
// both NaNs (whose payloads the kernels do not promise).
func sameBits(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

// tileCase is the input of one tile: six rows of k floats, each starting
// off floats into its own allocation (so most rows are not 32-byte aligned),
// and packed weights (two panels) and a bias for a wide tile.
type tileCase struct {
	k    int
	rows [tileRows][]float32
	a    [tileRows]*float32
	b    []float32 // 2 panels: 32k floats
	bias []float32 // 32 floats
}

func newTileCase(rng *rand.Rand, k, off int) *tileCase {
	tc := &tileCase{k: k}
	for r := range tc.rows {
		tc.rows[r] = randomFloats(rng, k+off)[off:]
		tc.a[r] = &tc.rows[r][0]
	}
	tc.b = randomFloats(rng, 2*k*tileCols+off)[off:]
	tc.bias = randomFloats(rng, 2*tileCols+off)[off:]
	return tc
}

// run computes the tile (wide: 6×32, else 6×16) with f into an output of
// ldc-float rows with a guard band of sentinels around it, and fails if f
// wrote outside its tile.
func (tc *tileCase) run(t *testing.T, f tileFunc, wide bool, ldc, off int, relu bool) []float32 {
	t.Helper()
	cols := tileCols
	if wide {
		cols *= 2
	}
	return guarded(t, tileRows, cols, ldc, off, func(c []float32) { f(tc.k, &tc.a, tc.b, c, ldc, tc.bias, relu) })
}

// runTall computes the tall tile with f from fourteen rows of one matrix,
// lda = k+3 floats apart and off floats into it, row r holding tc's row
// r%6, as run does.
func (tc *tileCase) runTall(t *testing.T, f tallFunc, ldc, off int, relu bool) []float32 {
	t.Helper()
	lda := tc.k + 3
	a := make([]float32, off+(tallRows-1)*lda+tc.k)[off:]
	for r := range tallRows {
		copy(a[r*lda:r*lda+tc.k], tc.rows[r%tileRows])
	}
	return guarded(t, tallRows, 2*tileCols, ldc, off, func(c []float32) { f(tc.k, a, lda, tc.b, c, ldc, tc.bias, relu) })
}

// guarded runs f on a rows×ldc output off floats into a buffer filled with
// sentinels, fails if f wrote outside the first cols of each row, and
// returns those rows×cols values.
func guarded(t *testing.T, rows, cols, ldc, off int, f func(c []float32)) []float32 {
	t.Helper()
	const guard = 40
	buf := make([]float32, guard+off+rows*ldc+guard)
	for i := range buf {
		buf[i] = -12345
	}
	c := buf[guard+off : guard+off+rows*ldc]
	f(c)
	for i, v := range buf {
		in := i-guard-off >= 0 && i-guard-off < rows*ldc && (i-guard-off)%ldc < cols
		if !in && v != -12345 {
			t.Fatalf("wrote %g at %d, outside the tile", v, i-guard-off)
		}
	}
	out := make([]float32, 0, rows*cols)
	for r := range rows {
		out = append(out, c[r*ldc:r*ldc+cols]...)
	}
	return out
}

// tileKs are the k (inner dimensions) the tile tests use: 1 to 600, with
// every remainder of the unrolled loops.
var tileKs = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 255, 256, 257, 429, 511, 512, 600}

// Every tile kernel gives the portable tile's results bit for bit: each
// element is the same sequence of float32 FMAs, in the same order, then the
// same bias addition and ReLU. Rows and weights are misaligned, the output
// rows are spaced by more than the tile's width, and nothing outside the
// tile is written.
func TestTileKernelsBitIdentical(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, kn := range impls() {
		for i, k := range tileKs {
			off := i % 4
			t.Run(fmt.Sprintf("%s/k=%d", kn.name, k), func(t *testing.T) {
				tc := newTileCase(rng, k, off)
				for _, relu := range []bool{false, true} {
					for _, ldc := range []int{2 * tileCols, 2*tileCols + 5} {
						compareTiles(t, tc, kn, ldc, off, relu)
					}
				}
			})
		}
	}
}

// compareTiles compares kn's tiles (6×16 and, if it has them, 6×32 and
// 14×32) with the portable ones on tc; with the portable kernel, the
// portable 14×32 tile too. A tall tile's row r must be the wide tile's row
// r%6, which it was given the same data for.
func compareTiles(t *testing.T, tc *tileCase, kn *impl, ldc, off int, relu bool) {
	t.Helper()
	type pair struct {
		got, want tileFunc
		wide      bool
	}
	pairs := []pair{{kn.tile, tile6x16Go, false}}
	if kn.wide != nil {
		pairs = append(pairs, pair{kn.wide, tile6x32Go, true})
	}
	for _, p := range pairs {
		got := tc.run(t, p.got, p.wide, ldc, off, relu)
		want := tc.run(t, p.want, p.wide, ldc, 0, relu)
		for i := range got {
			if !sameBits(got[i], want[i]) {
				t.Fatalf("wide %v, relu %v, ldc %d: element %d (row %d): %g (%#08x), want %g (%#08x)",
					p.wide, relu, ldc, i, i/(len(got)/tileRows), got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
			}
		}
	}
	var talls []tallFunc
	if kn.tall != nil {
		talls = append(talls, kn.tall)
	}
	if kn == pureGo {
		talls = append(talls, tile14x32Go)
	}
	const tc2 = 2 * tileCols
	want := tc.run(t, tile6x32Go, true, ldc, 0, relu)
	for ti, tall := range talls {
		got := tc.runTall(t, tall, ldc, off, relu)
		for i, v := range got {
			r, j := i/tc2, i%tc2
			if w := want[(r%tileRows)*tc2+j]; !sameBits(v, w) {
				t.Fatalf("tall tile %d, relu %v, ldc %d: row %d column %d: %g (%#08x), want %g (%#08x)",
					ti, relu, ldc, r, j, v, math.Float32bits(v), w, math.Float32bits(w))
			}
		}
	}
}

// The tiles agree bit for bit on the cases that separate one FMA from a
// multiply then an add, or from an FMA in float64 then a rounding to
// float32 (double rounding): sums that land exactly halfway between two
// float32s, or in float32's subnormal range; and on NaNs and infinities,
// which the ReLU passes on (a NaN stays NaN).
func TestTileKernelsHardCases(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const e12 = 1 + 0x1p-12 // e12² = 1 + 2^-11 + 2^-24: halfway between two float32s
	hard := [][2][]float32{ // a row, then the column of weights
		{{0x1p-30, e12}, {0x1p-30, e12}},        // 2^-60 + e12²: rounds up; mul+add and float64 FMA round down
		{{-0x1p-30, e12}, {0x1p-30, e12}},       // -2^-60 + e12²: rounds down
		{{e12, 0x1p-30}, {e12, 0x1p-30}},        // e12² + 2^-60
		{{0x1p-75, 0x1p-75}, {0x1p-75, 0x1p-1}}, // subnormal sums
		{{0x1p-70, 3}, {0x1p-80, 0x1p-150}},     // 2^-150 + 3·2^-150: subnormal tie region
		{{1, float32(math.Inf(1))}, {1, 0}},     // Inf·0 = NaN
		{{float32(math.NaN()), 1}, {1, 1}},      // NaN
		{{float32(math.Inf(-1)), 1}, {1, 1}},    // -Inf, ReLU to 0
		{{0, 0}, {-1, 1}},                       // -0 products
		{{-0x1p-100, 0}, {0x1p-100, 1}},         // a product that rounds to -0
	}
	for _, kn := range impls() {
		for hi, h := range hard {
			t.Run(fmt.Sprintf("%s/case=%d", kn.name, hi), func(t *testing.T) {
				k := len(h[0])
				tc := newTileCase(rng, k, 0)
				// Every row is the hard row, every column the hard
				// column, with zero bias; then random rows and columns
				// with one hard step in the middle.
				for r := range tc.rows {
					copy(tc.rows[r], h[0])
				}
				for p := range k {
					for j := range 2 * tileCols {
						tc.b[(j/tileCols)*k*tileCols+p*tileCols+j%tileCols] = h[1][p]
					}
				}
				clear(tc.bias)
				for _, relu := range []bool{false, true} {
					compareTiles(t, tc, kn, 2*tileCols, 0, relu)
				}
				tc = newTileCase(rng, 9, 0)
				for r := range tc.rows {
					tc.rows[r][4], tc.rows[r][5] = h[0][0], h[0][1]
				}
				for j := range 2 * tileCols {
					tc.b[(j/tileCols)*9*tileCols+4*tileCols+j%tileCols] = h[1][0]
					tc.b[(j/tileCols)*9*tileCols+5*tileCols+j%tileCols] = h[1][1]
				}
				for _, relu := range []bool{false, true} {
					compareTiles(t, tc, kn, 2*tileCols, 0, relu)
				}
			})
		}
	}
}

// Every kernel's Forward gives the portable kernel's results bit for bit, on
// shapes with short last row tiles and last panels (odd and even panel
// counts, partial panels), inputs 1 to 600, misaligned x and y.
func TestForwardBitIdentical(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	ins := []int{1, 2, 3, 5, 8, 16, 17, 33, 64, 100, 129, 256, 429, 600}
	outs := []int{2, 5, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 100, 128, 256}
	i := 0
	for _, in := range ins {
		for _, out := range outs {
			i++
			n := 1 + i%31 // 1 to 31 rows: every remainder of 6 and of 14, up to three tiles of each
			off := i % 3
			w, b := randomFloats(rng, in*out), randomFloats(rng, out)
			x := randomFloats(rng, n*in+off)[off:]
			p := PackLinear(w, b, in, out)
			for _, relu := range []bool{false, true} {
				want := make([]float32, n*out)
				p.forwardTiles(pureGo, x, n, want, relu)
				for _, kn := range impls() {
					got := make([]float32, n*out+off)[off:]
					p.forwardTiles(kn, x, n, got, relu)
					for e := range got {
						if !sameBits(got[e], want[e]) {
							t.Fatalf("%s %dx%dx%d relu %v: y[%d][%d] = %g, want %g",
								kn.name, n, in, out, relu, e/out, e%out, got[e], want[e])
						}
					}
				}
			}
		}
	}
}

// Every kernel's logit layer (one output: forwardDot) gives the portable
// loop's results bit for bit: products rounded, then added in eight lanes
// (an FMA would differ in the last bits of most of these sums), on inputs
// 1 to 600 long and misaligned, with NaNs, infinities and zeros in some rows.
func TestForwardDotBitIdentical(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, in := range []int{1, 2, 7, 8, 9, 15, 16, 17, 64, 100, 128, 129, 256, 429, 600} {
		const n = 9
		off := in % 3
		w, b := randomFloats(rng, in), randomFloats(rng, 1)
		x := randomFloats(rng, n*in+off)[off:]
		x[in+in/2] = float32(math.NaN())
		x[2*in] = float32(math.Inf(1))
		x[3*in+in-1] = float32(math.Inf(-1))
		clear(x[4*in : 5*in])
		p := PackLinear(w, b, in, 1)
		for _, relu := range []bool{false, true} {
			want := make([]float32, n)
			p.forwardDot(pureGo, x, n, want, relu)
			for _, kn := range impls() {
				got := make([]float32, n+off)[off:]
				p.forwardDot(kn, x, n, got, relu)
				for r := range got {
					if !sameBits(got[r], want[r]) {
						t.Fatalf("%s in=%d relu %v: row %d = %g (%#08x), want %g (%#08x)",
							kn.name, in, relu, r, got[r], math.Float32bits(got[r]), want[r], math.Float32bits(want[r]))
					}
				}
			}
		}
	}
}

// fma32 rounds a·b + c once, as the exact value rounded to nearest float32
// (ties to even) by math/big, on random operands of every magnitude and on
// the hard cases: ties made by rounding to float64 first, subnormal
// results, zeros.
func TestFMA32(t *testing.T) {
	exact := func(a, b, c float32) float32 {
		x := new(big.Float).SetPrec(2000).SetFloat64(float64(a))
		x.Mul(x, new(big.Float).SetPrec(2000).SetFloat64(float64(b)))
		x.Add(x, new(big.Float).SetPrec(2000).SetFloat64(float64(c)))
		f, _ := x.Float32()
		return f
	}
	check := func(a, b, c float32) {
		t.Helper()
		want := exact(a, b, c)
		if got := fma32(a, b, c); math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("fma32(%g, %g, %g) = %g (%#08x), want %g (%#08x)", a, b, c, got, math.Float32bits(got), want, math.Float32bits(want))
		}
		if got := fma32Slow(a, b, c); math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("fma32Slow(%g, %g, %g) = %g, want %g", a, b, c, got, want)
		}
	}
	const e12 = 1 + 0x1p-12
	for _, c := range [][3]float32{
		{e12, e12, 0x1p-60},
		{e12, e12, -0x1p-60},
		{-e12, e12, 0x1p-60},
		{e12, e12, 0},
		{e12, e12, -0x1p-11},
		{0x1p-75, 0x1p-75, 0},
		{0x1p-75, 0x1p-76, 0x1p-149},
		{0x1p-80, 0x1p-70, 0x1p-149},
		{0x1p-100, 0x1p-100, -0x1p-149},
		{-0x1p-100, 0x1p-100, 0},
		{0, 1, 0},
		{0, -1, 0},
		{-1, 1, 1},
		{1, 1, -1},
		{0x1p100, 0x1p100, 1},
		{0x1p127, 4, -0x1p127},
		{math.MaxFloat32, 1, math.MaxFloat32},
		{math.MaxFloat32, 1 + 0x1p-23, 0},
	} {
		check(c[0], c[1], c[2])
	}
	rng := rand.New(rand.NewPCG(11, 12))
	// Operands with 24 random significant bits and exponents such that the
	// product and the addend overlap (or nearly).
	randomOf := func(exp int) float32 {
		m := float64(1<<23 + rng.IntN(1<<23))
		f := float32(math.Ldexp(m, exp-23))
		if rng.IntN(2) == 0 {
			f = -f
		}
		return f
	}
	for range 200_000 {
		ea, eb := rng.IntN(120)-60, rng.IntN(120)-60
		ec := ea + eb + rng.IntN(60) - 30
		check(randomOf(ea), randomOf(eb), randomOf(ec))
	}
	// Ties on purpose: a·b a 25-bit odd integer (halfway between two
	// float32s) times a power of two, plus a small addend. Rounding the
	// sum to float64 first gets some of them wrong.
	doubleRounded := 0
	for range 20_000 {
		ia := 1<<11 + 2*rng.IntN(1<<10) + 1                   // odd, 12 bits
		ib := (1<<24)/ia + 1 + 2*rng.IntN((1<<24)/ia/2-1) | 1 // odd, a·b in [2^24, 2^25)
		scale := rng.IntN(40) - 20
		a, b := float32(math.Ldexp(float64(ia), scale)), float32(ib)
		c := randomOf(scale - 10 - rng.IntN(40))
		check(a, b, c)
		check(a, b, 0)
		if float32(float64(a)*float64(b)+float64(c)) != exact(a, b, c) {
			doubleRounded++
		}
	}
	if doubleRounded == 0 {
		t.Error("no tie case where rounding to float64 first is wrong: the test does not test that")
	}
	t.Logf("%d of 20000 tie cases rounded wrong through float64", doubleRounded)
	// Products and sums in float32's subnormal range.
	for range 50_000 {
		ea, eb := rng.IntN(40)-90, rng.IntN(40)-90
		check(randomOf(ea), randomOf(eb), randomOf(rng.IntN(30)-155))
	}
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	for _, c := range [][3]float32{{nan, 1, 1}, {1, nan, 1}, {1, 1, nan}, {inf, 0, 1}, {inf, 1, -inf}} {
		if got := fma32(c[0], c[1], c[2]); got == got {
			t.Errorf("fma32(%g, %g, %g) = %g, want NaN", c[0], c[1], c[2], got)
		}
	}
	if got := fma32(inf, 1, 1); got != inf {
		t.Errorf("fma32(Inf, 1, 1) = %g", got)
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
				if at := kn.gather(got, stride, table, idx, c.rows, c.k); at != -1 {
					t.Errorf("gather returned %d with every index in range, want -1", at)
				}
				if !slices.Equal(got, want) {
					t.Errorf("gather differs from the naive copy")
				}
			})
		}
	}
}

// A gather with an index outside the table copies nothing and says where
// the first such index is, whatever the rows before it.
func TestGather16RejectsBadIndex(t *testing.T) {
	table := make([]float32, 3*16)
	for i := range table {
		table[i] = float32(i)
	}
	for _, kn := range append(impls(), &impl{name: "Gather16", gather: Gather16}) {
		for _, c := range []struct {
			idx []int32
			at  int
		}{{[]int32{0, 3}, 1}, {[]int32{-1, 1}, 0}, {[]int32{2, 1, 0, 7, 1, -5}, 3}, {[]int32{1, 1, 1, 1, 1, math.MaxInt32}, 5}} {
			t.Run(fmt.Sprintf("%s/%v", kn.name, c.idx), func(t *testing.T) {
				dst := make([]float32, len(c.idx)*16)
				for i := range dst {
					dst[i] = -1
				}
				if at := kn.gather(dst, 16, table, c.idx, len(c.idx), 1); at != c.at {
					t.Errorf("returned %d, want %d", at, c.at)
				}
				if i := slices.IndexFunc(dst, func(v float32) bool { return v != -1 }); i >= 0 {
					t.Errorf("dst[%d] written (%g): a gather with a bad index must copy nothing", i, dst[i])
				}
			})
		}
	}
}

// A gather whose rows would overlap, or leave dst, panics.
func TestGather16RejectsBadStride(t *testing.T) {
	table := make([]float32, 3*16)
	for _, kn := range impls() {
		for _, c := range []struct{ stride, dst int }{{-16, 64}, {16, 47}, {16, 1000}, {32, 63}} {
			t.Run(fmt.Sprintf("%s/stride=%d,dst=%d", kn.name, c.stride, c.dst), func(t *testing.T) {
				defer func() {
					if recover() == nil {
						t.Errorf("no panic")
					}
				}()
				kn.gather(make([]float32, c.dst), c.stride, table, []int32{0, 1, 2, 0}, 2, 2)
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
	case "avx512", "avx2-fma", "go", "openblas":
	default:
		t.Errorf("Name() = %q", k)
	}
	if (OpenBLAS() != nil) != (Name() == "openblas") {
		t.Errorf("OpenBLAS() = %v with kernel %q", OpenBLAS(), Name())
	}
	if !useOpenBLAS && Name() != current().name {
		t.Errorf("Name() = %q, tiles %q", Name(), current().name)
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

// fmaPeak holds, per kernel name, a loop of independent FMAs as wide as
// that kernel's (amd64 builds; see peak_amd64_test.go): the core's peak,
// for the tiles' rates to be read against.
var fmaPeak map[string]func(rounds int) (flopsPerRound int)

// BenchmarkTiles times every kernel this CPU supports on the same dense
// layers in the same run (Forward's tiles, + bias + ReLU; random data),
// and, as "peak", each SIMD kernel's bare FMA loop on one core: the
// GFLOP/s no tile of that width can pass on this CPU at this clock.
func BenchmarkTiles(b *testing.B) {
	for _, k := range impls() {
		peak := fmaPeak[k.name]
		if peak == nil {
			continue
		}
		b.Run("peak/kernel="+k.name, func(b *testing.B) {
			const rounds = 1 << 20
			flops := 0
			for b.Loop() {
				flops = peak(rounds)
			}
			b.ReportMetric(float64(rounds*flops)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct{ n, in, out int }{{1024, 429, 256}, {1024, 256, 128}} {
		x, w := randomFloats(rng, c.n*c.in), randomFloats(rng, c.in*c.out)
		p := PackLinear(w, randomFloats(rng, c.out), c.in, c.out)
		y := make([]float32, c.n*c.out)
		for _, k := range impls() {
			b.Run(fmt.Sprintf("%dx%dx%d/kernel=%s", c.n, c.in, c.out, k.name), func(b *testing.B) {
				for b.Loop() {
					p.forwardTiles(k, x, c.n, y, true)
				}
				b.ReportMetric(2*float64(c.n*c.in*c.out)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkTallTile times each kernel with a tall tile on the dense layers
// of BenchmarkTiles with and without it (14-row blocks against 6-row tiles
// only), alternating call by call in one loop so that both see the same
// machine, and reports both rates and the ratio of times (below 1: the tall
// tile is faster).
func BenchmarkTallTile(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, k := range impls() {
		if k.tall == nil {
			continue
		}
		short := *k
		short.tall = nil
		for _, c := range []struct{ n, in, out int }{{1024, 429, 256}, {1024, 256, 128}} {
			x, w := randomFloats(rng, c.n*c.in), randomFloats(rng, c.in*c.out)
			p := PackLinear(w, randomFloats(rng, c.out), c.in, c.out)
			y := make([]float32, c.n*c.out)
			b.Run(fmt.Sprintf("%dx%dx%d/kernel=%s", c.n, c.in, c.out, k.name), func(b *testing.B) {
				var with, without time.Duration
				for b.Loop() {
					start := time.Now()
					p.forwardTiles(&short, x, c.n, y, true)
					mid := time.Now()
					p.forwardTiles(k, x, c.n, y, true)
					with, without = with+time.Since(mid), without+mid.Sub(start)
				}
				flop := 2 * float64(c.n*c.in*c.out) * float64(b.N)
				b.ReportMetric(flop/with.Seconds()/1e9, "GFLOP/s-tall")
				b.ReportMetric(flop/without.Seconds()/1e9, "GFLOP/s-6-row")
				b.ReportMetric(float64(with)/float64(without), "time-ratio")
			})
		}
	}
}

// BenchmarkGather16 times every kernel's gather of 26 random rows a row
// from a 64 MiB table (cache misses, as ctr-mlp's 109 MB of tables), in
// 4 KiB pages and in huge pages (TLB misses or not).
func BenchmarkGather16(b *testing.B) {
	const tableRows, rows, k = 1 << 20, 1024, 26
	rng := rand.New(rand.NewPCG(3, 4))
	idx := make([]int32, rows*k)
	for i := range idx {
		idx[i] = int32(rng.IntN(tableRows))
	}
	dst := make([]float32, rows*(k*16+13))
	// The table in 4 KiB pages, and advised for huge pages as a loaded
	// bundle's weights are (internal/hugepage).
	// Written, as a loaded table is: never-written memory reads as the
	// kernel's one zero page, always in cache. The huge one is collapsed
	// after, as a loaded bundle's is: a benchmark's heap reuses memory
	// it has zeroed, which the advice alone does not change.
	tables := map[string][]float32{"4k": make([]float32, tableRows*16), "huge": hugepage.Float32s(tableRows * 16)}
	for _, t := range tables {
		for i := range t {
			t[i] = float32(i)
		}
	}
	hugepage.CollapseFloat32s(tables["huge"])
	for _, kn := range impls() {
		for _, pages := range []string{"4k", "huge"} {
			table := tables[pages]
			b.Run("kernel="+kn.name+"/pages="+pages, func(b *testing.B) {
				for b.Loop() {
					kn.gather(dst, k*16+13, table, idx, rows, k)
				}
				b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}
