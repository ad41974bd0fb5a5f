// Package kernels owns the numeric kernels that scoring runs on: a dense
// layer y = act(x·W + b) over weights packed once (Linear), and the gather of
// 16-wide embedding rows (Gather16).
//
// A dense layer is a register-blocked matrix product of 6 rows × 16 columns
// tiles: twelve 8-wide accumulators, each k step two loads of the packed
// weight row, six broadcasts of x and twelve FMAs, with the bias and the
// activation applied to the tile while it is still in registers. The tile is
// Go assembly for AVX2 + FMA3 (kernel_amd64.s, about 110 GFLOP/s on one core
// of the reference machine) where the CPU and the OS support them
// (golang.org/x/sys/cpu), portable Go elsewhere and with the purego build
// tag, or OpenBLAS's cblas_sgemm through cgo with the openblas build tag
// (internal/openblas; then OpenBLAS also serves Gorgonia's own matrix
// products, see OpenBLAS). Name says which one this build and CPU use. Every
// row of y is computed with the same operations in the same order whatever
// the batch size and the row's neighbours, so a row's result does not
// depend on them. No kernel starts threads of its own: each scoring worker
// is one thread. docs/performance.md has the measurements.
//
// This package knows slices of float32 and nothing else: not Gorgonia, not
// model bundles, not features. Callers (the scoring package's fused ops)
// check shapes; the kernels check only what keeps memory safe.
package kernels
