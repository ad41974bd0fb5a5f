//go:build openblas && cgo

package kernels

// With the openblas build tag (and cgo), dense layers call OpenBLAS's
// cblas_sgemm (internal/openblas) instead of the tile kernel, followed by
// the bias and the activation in Go, and OpenBLAS returns the implementation
// for Gorgonia's own matrix products (training). OpenBLAS runs one thread
// per call: each scoring worker is one thread, so workers and BLAS threads
// do not oversubscribe the cores.

import (
	"gonum.org/v1/gonum/blas"

	"github.com/adtech/scorer/scoring/kernels/internal/openblas"
)

const useOpenBLAS = true

// OpenBLAS returns the OpenBLAS implementation (single-threaded) with the
// openblas build tag and cgo, as in this build; nil otherwise.
func OpenBLAS() BLAS { return openblas.Implementation{} }

// forwardBLAS is Forward with cblas_sgemm on the unpacked weights, then
// the bias and the activation.
func (p *Linear) forwardBLAS(x []float32, n int, y []float32, relu bool) {
	in, out := p.in, p.out
	openblas.Sgemm(blas.NoTrans, blas.NoTrans, n, out, in, 1, x, in, p.raw, out, 0, y, out)
	bias := p.bias[:out]
	for r := range n {
		row := y[r*out : (r+1)*out]
		if relu {
			for j, v := range row {
				row[j] = max(v+bias[j], 0) // branch-free: signs are random
			}
			continue
		}
		for j, v := range row {
			row[j] = v + bias[j]
		}
	}
}
