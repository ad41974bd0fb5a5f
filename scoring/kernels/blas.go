package kernels

import "gonum.org/v1/gonum/blas"

// BLAS is a complete BLAS implementation, as gorgonia.Use takes.
type BLAS interface {
	blas.Float32
	blas.Float64
	blas.Complex64
	blas.Complex128
}
