package kernels

import "unsafe"

// tileRows and tileCols are the shape of one tile of a dense layer's output.
const (
	tileRows = 6
	tileCols = 16
)

// impl is one implementation of the tile and gather kernels. Every
// implementation computes what tile6x16Go and gather16Go do (the tile up to
// FMA rounding).
type impl struct {
	name string
	// tile computes one 6×16 tile; see tile6x16Go for the contract.
	tile func(k int, a *[tileRows]*float32, b []float32, c []float32, ldc int, bias []float32, relu bool)
	// gather copies 16-float table rows; see gather16Go for the contract.
	// The indices must be in range.
	gather func(dst []float32, stride int, table []float32, idx []int32, rows, k int)
}

// pureGo is the portable implementation, available everywhere.
var pureGo = &impl{name: "go", tile: tile6x16Go, gather: gather16Go}

// active is the implementation this process uses: the first of impls, the
// best this build and CPU support.
var active = impls()[0]

// Name names the matrix kernel this build and CPU use: "avx2-fma" (Go
// assembly), "go" (portable Go, for other CPUs and the purego build tag) or
// "openblas" (the openblas build tag).
func Name() string {
	if useOpenBLAS {
		return "openblas"
	}
	return active.name
}

// Gather16 copies 16-float table rows: dst[r*stride+c*16:][:16] =
// table[idx[r*k+c]*16:][:16] for r < rows, c < k. It panics if an index is
// outside the table or dst is too short.
func Gather16(dst []float32, stride int, table []float32, idx []int32, rows, k int) {
	active.gather(dst, stride, table, idx, rows, k)
}

// tile6x16Go is the portable tile: for the six rows i,
//
//	c[i*ldc+j] = act(bias[j] + Σ_{p<k} a[i][p]·b[p*16+j]),  j < 16,
//
// summed in order of p.
func tile6x16Go(k int, a *[tileRows]*float32, b []float32, c []float32, ldc int, bias []float32, relu bool) {
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

// gather16Go is the portable gather: dst[r*stride+c*16:][:16] =
// table[idx[r*k+c]*16:][:16] for r < rows, c < k.
func gather16Go(dst []float32, stride int, table []float32, idx []int32, rows, k int) {
	for r := range rows {
		row := dst[r*stride:]
		for c, i := range idx[r*k : (r+1)*k] {
			copy(row[c*16:(c+1)*16], table[int(i)*16:(int(i)+1)*16])
		}
	}
}
