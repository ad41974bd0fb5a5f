package kernels

import (
	"math"
	"unsafe"
)

// tileRows and tileCols are the shape of one tile of a dense layer's output,
// and of one panel of packed weights; a wide tile is two panels side by
// side (tileRows × 2·tileCols), a tall one tallRows × 2·tileCols.
const (
	tileRows = 6
	tileCols = 16
	tallRows = 14
)

// tileFunc computes one tile; see tile6x16Go and tile6x32Go for the
// contracts.
type tileFunc func(k int, a *[tileRows]*float32, b []float32, c []float32, ldc int, bias []float32, relu bool)

// tallFunc computes one tall tile from tallRows consecutive rows of x; see
// tile14x32Go for the contract.
type tallFunc func(k int, a []float32, lda int, b []float32, c []float32, ldc int, bias []float32, relu bool)

// impl is one implementation of the tile and gather kernels. Every
// implementation computes exactly what tile6x16Go and gather16Go do, bit
// for bit: each output element is the same sequence of float32 FMAs (fma32)
// in order of p, then the bias, then the activation.
type impl struct {
	name string
	// tile computes one 6×16 tile; see tile6x16Go for the contract.
	tile tileFunc
	// wide, if not nil, computes one 6×32 tile over two adjacent panels;
	// see tile6x32Go for the contract. Forward uses it for every pair of
	// panels and tile for the last panel of an odd count.
	wide tileFunc
	// tall, if not nil, computes one 14×32 tile over two adjacent panels
	// from 14 consecutive rows; see tile14x32Go for the contract. Forward
	// uses it for every whole block of 14 rows and pair of panels, and wide
	// and tile for the rest.
	tall tallFunc
	// dot, if not nil, computes what dot8Go does (Forward's loop for a
	// layer of one output, the logit), bit for bit.
	dot func(x, w []float32) [8]float32
	// gather copies 16-float table rows; see gather16Go for the contract.
	gather func(dst []float32, stride int, table []float32, idx []int32, rows, k int) int
	// adam, if not nil, is AdamUpdate over a prefix of the elements (the
	// rest go to adamGo); it returns how many it did.
	adam func(w, g, m, v []float32, k *Adam) int
	// offsets, if not nil, is Offsets.Apply's loop over a prefix of src
	// (the rest goes to offsetsGo); it returns how many it did and
	// whether one was out of range.
	offsets func(dst, src, offPat []int32, limPat []uint32) (int, bool)
}

// pureGo is the portable implementation, available everywhere.
var pureGo = &impl{name: "go", tile: tile6x16Go, gather: gather16Go}

// Name names the matrix kernel this process uses: "avx512" or "avx2-fma"
// (Go assembly), "go" (portable Go, for other CPUs and the purego build tag)
// or "openblas" (the openblas build tag). It is chosen at first use: the
// one the SCORER_KERNEL environment variable forces, else the fastest this
// build and CPU support.
func Name() string {
	if useOpenBLAS {
		return "openblas"
	}
	return current().name
}

// Gather16 copies 16-float table rows: dst[r*stride+c*16:][:16] =
// table[idx[r*k+c]*16:][:16] for r < rows, c < k, and returns -1; or, if an
// index is outside the table, copies nothing and returns the position in
// idx of the first such (a caller need not check the indices first). It
// panics if dst is too short, or if rows > 1 and stride < 16k (rows would
// overlap).
func Gather16(dst []float32, stride int, table []float32, idx []int32, rows, k int) int {
	return current().gather(dst, stride, table, idx, rows, k)
}

// tile6x16Go is the portable tile: for the six rows i,
//
//	c[i*ldc+j] = act(bias[j] + Σ_{p<k} a[i][p]·b[p*16+j]),  j < 16,
//
// where the sum starts at +0 and adds one term at a time in order of p,
// each as one fused multiply-add rounded once to float32 (fma32), as the
// assembly tiles' FMA instructions do; then the bias is added (rounded),
// and act(v) is 0 if relu is set and v < 0, v otherwise (a NaN stays NaN).
// Every implementation of the tile gives these results bit for bit.
func tile6x16Go(k int, a *[tileRows]*float32, b []float32, c []float32, ldc int, bias []float32, relu bool) {
	b = b[:k*tileCols]
	for r := range tileRows {
		row := unsafe.Slice(a[r], k)
		out := c[r*ldc : r*ldc+tileCols]
		for j := 0; j < tileCols; j += 8 {
			// Eight sums in registers; each in order of p, by fma32
			// inline, with one test of the eight for its slow path.
			var s0, s1, s2, s3, s4, s5, s6, s7 float32
			for p, v := range row {
				w := (*[8]float32)(b[p*tileCols+j:])
				x := float64(v)
				t0 := x*float64(w[0]) + float64(s0)
				t1 := x*float64(w[1]) + float64(s1)
				t2 := x*float64(w[2]) + float64(s2)
				t3 := x*float64(w[3]) + float64(s3)
				t4 := x*float64(w[4]) + float64(s4)
				t5 := x*float64(w[5]) + float64(s5)
				t6 := x*float64(w[6]) + float64(s6)
				t7 := x*float64(w[7]) + float64(s7)
				if (fma32Hard(t0)|fma32Hard(t1)|fma32Hard(t2)|fma32Hard(t3)|
					fma32Hard(t4)|fma32Hard(t5)|fma32Hard(t6)|fma32Hard(t7))>>63 != 0 {
					s0, s1, s2, s3 = fma32Slow(v, w[0], s0), fma32Slow(v, w[1], s1), fma32Slow(v, w[2], s2), fma32Slow(v, w[3], s3)
					s4, s5, s6, s7 = fma32Slow(v, w[4], s4), fma32Slow(v, w[5], s5), fma32Slow(v, w[6], s6), fma32Slow(v, w[7], s7)
					continue
				}
				s0, s1, s2, s3 = float32(t0), float32(t1), float32(t2), float32(t3)
				s4, s5, s6, s7 = float32(t4), float32(t5), float32(t6), float32(t7)
			}
			for i, v := range [8]float32{s0, s1, s2, s3, s4, s5, s6, s7} {
				v += bias[j+i]
				if relu && v < 0 {
					v = 0
				}
				out[j+i] = v
			}
		}
	}
}

// tile6x32Go is the portable wide tile: the 6×16 tiles of the two adjacent
// panels b[:16k] and b[16k:32k], side by side in c, with bias[:16] and
// bias[16:32]. See tile6x16Go for the contract.
func tile6x32Go(k int, a *[tileRows]*float32, b []float32, c []float32, ldc int, bias []float32, relu bool) {
	tile6x16Go(k, a, b[:k*tileCols], c, ldc, bias[:tileCols], relu)
	tile6x16Go(k, a, b[k*tileCols:2*k*tileCols], c[tileCols:], ldc, bias[tileCols:2*tileCols], relu)
}

// tile14x32Go is the portable tall tile: for the rows i < 14 of a (row i at
// a[i*lda:], lda ≥ k) and j < 32,
//
//	c[i*ldc+j] = act(bias[j] + Σ_{p<k} a[i*lda+p]·b'[p][j]),
//
// b' the two adjacent panels b[:16k] and b[16k:32k] side by side: the 6×16
// tile's contract (tile6x16Go), fourteen rows high and two panels wide.
func tile14x32Go(k int, a []float32, lda int, b []float32, c []float32, ldc int, bias []float32, relu bool) {
	for r := range tallRows {
		row := a[r*lda : r*lda+k]
		out := c[r*ldc : r*ldc+2*tileCols]
		for j := range out {
			panel := b[(j/tileCols)*k*tileCols : (j/tileCols+1)*k*tileCols]
			var s float32
			for p, v := range row {
				s = fma32(v, panel[p*tileCols+j%tileCols], s)
			}
			s += bias[j]
			if relu && s < 0 {
				s = 0
			}
			out[j] = s
		}
	}
}

// dot8Go returns the eight partial sums of x·w that forwardDot adds up:
// sums[i] = Σ_q x[8q+i]·w[8q+i], in order of q from +0, each product
// rounded to float32 before it is added (the conversion keeps the compiler
// from fusing them into FMAs, which the assembly does not use). len(x) is a
// multiple of 8, w at least as long.
func dot8Go(x, w []float32) (sums [8]float32) {
	if len(x)%8 != 0 {
		panic("dot8: length not a multiple of 8")
	}
	w = w[:len(x)]
	for i := 0; i+8 <= len(x); i += 8 {
		v := (*[8]float32)(x[i : i+8])
		u := (*[8]float32)(w[i : i+8])
		for j := range sums {
			sums[j] += float32(v[j] * u[j])
		}
	}
	return sums
}

// fma32 returns a·b + c rounded once to float32 (to nearest, ties to even),
// as one lane of VFMADD231PS computes it. Go has no float32 FMA, and the
// compiler fuses x*y + z only where the target guarantees FMA (not with
// GOAMD64=v1, the default), so the portable tile spells it out; tile6x16Go
// has this function inline.
//
// a·b is exact in float64 (24 + 24 significant bits), so s = a·b + c in
// float64 is the exact sum rounded once. Rounding s again to float32 is
// right unless s lies exactly halfway between two float32s, where the
// first rounding may have moved the exact sum onto the tie; as rounding
// preserves order, that is the only case. fma32Hard finds it (and a few
// harmless others), and fma32Slow then rounds exactly.
func fma32(a, b, c float32) float32 {
	s := float64(a)*float64(b) + float64(c)
	if fma32Hard(s)>>63 != 0 {
		return fma32Slow(a, b, c)
	}
	return float32(s)
}

// fma32Hard has its top bit set if s, a sum rounded to float64, may be
// halfway between two float32s: if the low 29 of its 52 fraction bits are 1
// followed by 28 zeros (a tie in float32's normal range), or if s is below
// float32's normal range (ties there have other patterns; zero included).
// It does not branch, so that the portable tile's speed does not depend on
// the data (exact zeros after a ReLU, round numbers), and it costs less than
// a mispredicted branch: the tile tests eight sums at once.
func fma32Hard(s float64) uint64 {
	bits := math.Float64bits(s)
	tie := bits&(1<<29-1) ^ 1<<28             // 0 at a tie
	tiny := bits&(0x7ff<<52) - (1023-126)<<52 // top bit set below 2^-126
	return (tie - 1) | tiny                   // tie-1 has its top bit set iff tie == 0
}

// fma32Slow is fma32 computed so that it is always right: a·b + c rounded
// to odd in float64 (an inexact sum whose last bit is even moves one unit
// toward the exact sum), then to float32, which is then right as float64
// has at least two more bits than float32 (Boldo and Melquiond, "When double
// rounding is odd", 2005).
func fma32Slow(a, b, c float32) float32 {
	p, q := float64(a)*float64(b), float64(c) // p exact
	s := p + q
	// TwoSum: s + e = p + q exactly.
	t := s - p
	e := (p - (s - t)) + (q - t)
	if e != 0 && math.Float64bits(s)&1 == 0 {
		s = math.Nextafter(s, math.Copysign(math.Inf(1), e))
	}
	return float32(s)
}

// gather16Go is the portable gather: dst[r*stride+c*16:][:16] =
// table[idx[r*k+c]*16:][:16] for r < rows, c < k, then -1; or, if an index
// is outside the table, nothing copied and the position of the first such
// (badIndex).
func gather16Go(dst []float32, stride int, table []float32, idx []int32, rows, k int) int {
	if rows > 1 && stride < k*16 {
		panic("gather16: stride < 16k")
	}
	if at := badIndex(idx[:rows*k], len(table)/16); at >= 0 {
		return at
	}
	for r := range rows {
		row := dst[r*stride:]
		for c, i := range idx[r*k : (r+1)*k] {
			copy(row[c*16:(c+1)*16], table[int(i)*16:(int(i)+1)*16])
		}
	}
	return -1
}

// badIndex is the position of the first index outside [0, rows), or -1.
func badIndex(idx []int32, rows int) int {
	for at, i := range idx {
		if i < 0 || int(i) >= rows {
			return at
		}
	}
	return -1
}
