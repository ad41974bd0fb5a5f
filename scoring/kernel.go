package scoring

import (
	"unsafe"
)

// The scoring kernels: a dense layer y = act(x·W + b) as a register-blocked
// matrix product over weights packed once per model, with the bias and the
// activation applied to the tile while it is still in registers.
//
// A tile is 6 rows × 16 columns of y: twelve 8-wide accumulators, each k
// step two loads of the packed weight row, six broadcasts of x and twelve
// FMAs (kernel_amd64.s, AVX2 + FMA3; tile6x16Go elsewhere). Every row of y
// is computed with the same operations in the same order whatever the batch
// size and the row's neighbours, so a row's score does not depend on them.

// tileRows and tileCols are the shape of one tile.
const (
	tileRows = 6
	tileCols = 16
)

// Kernel names the matrix kernel this build and CPU use: "avx2-fma" (Go
// assembly), "go" (portable Go, for other CPUs and the purego build tag) or
// "openblas" (the openblas build tag).
func Kernel() string {
	if useOpenBLAS {
		return "openblas"
	}
	return kernelName()
}

// packedLinear is one dense layer's weights, packed for the tile kernel:
// the in×out matrix W split into panels of 16 columns (the last one padded
// with zeros), each panel stored row after row (in × 16 floats), and the
// bias padded likewise.
type packedLinear struct {
	in, out int
	panels  int
	w       []float32 // panels × in × 16
	bias    []float32 // panels × 16
	col     []float32 // W itself when out is 1 (forwardDot)
	raw     []float32 // W as given (forwardBLAS)
	src     *float32  // the weight data this was packed from
}

// packLinear packs W (in×out, row-major) and b (out).
func packLinear(w []float32, b []float32, in, out int) *packedLinear {
	p := &packedLinear{in: in, out: out, panels: (out + tileCols - 1) / tileCols}
	p.w = make([]float32, p.panels*in*tileCols)
	p.bias = make([]float32, p.panels*tileCols)
	for j := range out {
		panel, col := j/tileCols, j%tileCols
		dst := p.w[panel*in*tileCols:]
		for i := range in {
			dst[i*tileCols+col] = w[i*out+j]
		}
		p.bias[panel*tileCols+col] = b[j]
	}
	if out == 1 {
		p.col = append([]float32(nil), w[:in]...)
	}
	if useOpenBLAS {
		p.raw = w
	}
	if len(w) > 0 {
		p.src = &w[0]
	}
	return p
}

// sameBias reports whether b is the bias that was packed.
func (p *packedLinear) sameBias(b []float32) bool {
	for j, v := range b {
		if p.bias[j] != v {
			return false
		}
	}
	return true
}

// forward computes y = act(x·W + b) for n rows: x is n×in, y is n×out,
// both row-major and dense. scratch holds one tile (6×16).
func (p *packedLinear) forward(x []float32, n int, y []float32, relu bool, scratch []float32) {
	in, out := p.in, p.out
	_ = x[n*in-1]
	_ = y[n*out-1]
	if out == 1 {
		p.forwardDot(x, n, y, relu)
		return
	}
	if useOpenBLAS {
		p.forwardBLAS(x, n, y, relu)
		return
	}
	var a [tileRows]*float32
	for i := 0; i < n; i += tileRows {
		rows := min(tileRows, n-i)
		for r := range tileRows {
			// A short last tile repeats its first row; those results are
			// dropped.
			a[r] = &x[(i+min(r, rows-1))*in]
		}
		for panel := range p.panels {
			w := p.w[panel*in*tileCols : (panel+1)*in*tileCols]
			bias := p.bias[panel*tileCols : (panel+1)*tileCols]
			j := panel * tileCols
			cols := min(tileCols, out-j)
			if rows == tileRows && cols == tileCols {
				tile6x16(in, &a, w, y[i*out+j:], out, bias, relu)
				continue
			}
			tile6x16(in, &a, w, scratch, tileCols, bias, relu)
			for r := range rows {
				copy(y[(i+r)*out+j:(i+r)*out+j+cols], scratch[r*tileCols:r*tileCols+cols])
			}
		}
	}
}

// forwardDot is forward for a single output column (the logit layer): one
// dot product per row, in eight interleaved partial sums.
func (p *packedLinear) forwardDot(x []float32, n int, y []float32, relu bool) {
	in := p.in
	w := p.col[:in]
	b := p.bias[0]
	for r := range n {
		row := x[r*in : (r+1)*in]
		var s0, s1, s2, s3, s4, s5, s6, s7 float32
		i := 0
		for ; i+8 <= in; i += 8 {
			v := (*[8]float32)(row[i : i+8])
			u := (*[8]float32)(w[i : i+8])
			s0 += v[0] * u[0]
			s1 += v[1] * u[1]
			s2 += v[2] * u[2]
			s3 += v[3] * u[3]
			s4 += v[4] * u[4]
			s5 += v[5] * u[5]
			s6 += v[6] * u[6]
			s7 += v[7] * u[7]
		}
		for ; i < in; i++ {
			s0 += row[i] * w[i]
		}
		v := ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)) + b
		if relu && v < 0 {
			v = 0
		}
		y[r] = v
	}
}

// tile6x16Go is the portable tile: for the six rows i,
//
//	c[i*ldc+j] = act(bias[j] + Σ_{p<k} a[i][p]·b[p*16+j]),  j < 16,
//
// summed in order of p.
func tile6x16Go(k int, a *[6]*float32, b []float32, c []float32, ldc int, bias []float32, relu bool) {
	b = b[:k*tileCols]
	for r := range tileRows {
		row := unsafe.Slice(a[r], k)
		out := c[r*ldc : r*ldc+tileCols]
		for j := 0; j < tileCols; j += 8 {
			// Eight sums in registers; each in order of p.
			var s0, s1, s2, s3, s4, s5, s6, s7 float32
			for p, v := range row {
				w := (*[8]float32)(b[p*tileCols+j:])
				s0 += v * w[0]
				s1 += v * w[1]
				s2 += v * w[2]
				s3 += v * w[3]
				s4 += v * w[4]
				s5 += v * w[5]
				s6 += v * w[6]
				s7 += v * w[7]
			}
			s := [8]float32{s0, s1, s2, s3, s4, s5, s6, s7}
			for i, v := range s {
				v += bias[j+i]
				if relu && v < 0 {
					v = 0
				}
				out[j+i] = v
			}
		}
	}
}

// gather16Go is the portable gather16: dst[r*stride+c*16:][:16] =
// table[idx[r*k+c]*16:][:16] for r < rows, c < k.
func gather16Go(dst []float32, stride int, table []float32, idx []int32, rows, k int) {
	for r := range rows {
		row := dst[r*stride:]
		for c, i := range idx[r*k : (r+1)*k] {
			copy(row[c*16:(c+1)*16], table[int(i)*16:(int(i)+1)*16])
		}
	}
}
