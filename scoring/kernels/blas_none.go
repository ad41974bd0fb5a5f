//go:build !openblas || !cgo

package kernels

const useOpenBLAS = false

// OpenBLAS returns the OpenBLAS implementation (single-threaded) with the
// openblas build tag and cgo; in this build, nil.
func OpenBLAS() BLAS { return nil }

func (p *Linear) forwardBLAS(x []float32, n int, y []float32, relu bool) {
	panic("kernels: built without the openblas tag")
}
