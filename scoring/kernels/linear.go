package kernels

import "unsafe"

// Linear is one dense layer's weights, packed for the tile kernels: the
// in×out matrix W split into panels of 16 columns (the last one padded with
// zeros), each panel stored row after row (in × 16 floats), and the bias
// padded likewise. The packing is the same for every kernel: a wide (6×32)
// tile reads two adjacent panels, so a Linear does not depend on the kernel
// chosen, and an odd count of panels wastes nothing. A Linear is read-only
// but for Forward's working memory: give each worker its own.
type Linear struct {
	in, out int
	panels  int
	w       []float32 // panels × in × 16
	bias    []float32 // panels × 16
	col     []float32 // W itself when out is 1 (forwardDot)
	raw     []float32 // W as given (forwardBLAS)
	src     *float32  // the weight data this was packed from

	work tileWork // Forward's working memory
}

// PackLinear packs W (in×out, row-major) and b (out) for Forward. The
// OpenBLAS build keeps a reference to w, which must then not change.
func PackLinear(w []float32, b []float32, in, out int) *Linear {
	p := &Linear{in: in, out: out, panels: (out + tileCols - 1) / tileCols}
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

// PackedFrom reports whether p was packed from w's data (the same memory,
// whatever its values now) and a bias equal to b. When it is false, pack
// again.
func (p *Linear) PackedFrom(w, b []float32) bool {
	return p.src == unsafe.SliceData(w) && p.sameBias(b)
}

// sameBias reports whether b is the bias that was packed.
func (p *Linear) sameBias(b []float32) bool {
	for j, v := range b {
		if p.bias[j] != v {
			return false
		}
	}
	return true
}

// Forward computes y = act(x·W + b) for n ≥ 1 rows: x is n×in, y is n×out,
// both row-major and dense; act is max(·, 0) if relu is set, the identity
// otherwise.
func (p *Linear) Forward(x []float32, n int, y []float32, relu bool) {
	_ = x[n*p.in-1]
	_ = y[n*p.out-1]
	switch {
	case p.out == 1:
		p.forwardDot(current(), x, n, y, relu)
	case useOpenBLAS:
		p.forwardBLAS(x, n, y, relu)
	default:
		p.forwardTiles(current(), x, n, y, relu)
	}
}

// forwardTiles is Forward with the tile kernels of k.
func (p *Linear) forwardTiles(k *impl, x []float32, n int, y []float32, relu bool) {
	mat := panelMatrix{w: p.w, k: p.in, n: p.out, panels: p.panels, bias: p.bias}
	p.work.product(k, mat, x, p.in, n, y, p.out, relu)
}

// forwardDot is Forward for a single output column (the logit layer): one
// dot product per row, in eight interleaved partial sums (k's dot, or
// dot8Go), the rest of the row added to the first, then the eight added
// pairwise.
func (p *Linear) forwardDot(k *impl, x []float32, n int, y []float32, relu bool) {
	in := p.in
	w := p.col[:in]
	b := p.bias[0]
	dot := k.dot
	if dot == nil {
		dot = dot8Go
	}
	n8 := in &^ 7
	for r := range n {
		row := x[r*in : (r+1)*in]
		s := dot(row[:n8], w[:n8])
		for i := n8; i < in; i++ {
			s[0] += float32(row[i] * w[i])
		}
		v := ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + b
		if relu && v < 0 {
			v = 0
		}
		y[r] = v
	}
}
