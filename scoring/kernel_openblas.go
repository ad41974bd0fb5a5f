//go:build openblas && cgo

package scoring

// With the openblas build tag (and cgo), dense layers call OpenBLAS's
// cblas_sgemm (scoring/internal/openblas) instead of the tile kernel,
// followed by the bias and the activation in Go, and Gorgonia's own matrix
// products (training) use OpenBLAS too. OpenBLAS runs one thread per call:
// each scoring worker is one thread, so workers and BLAS threads do not
// oversubscribe the cores.

import (
	"gonum.org/v1/gonum/blas"
	"gorgonia.org/gorgonia"

	"github.com/adtech/scorer/scoring/internal/openblas"
)

const useOpenBLAS = true

func init() { gorgonia.Use(openblas.Implementation{}) }

// forwardBLAS is forward with cblas_sgemm on the unpacked weights, then
// the bias and the activation.
func (p *packedLinear) forwardBLAS(x []float32, n int, y []float32, relu bool) {
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
