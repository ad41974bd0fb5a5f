// Package kernels owns the numeric kernels that scoring and training run
// on: a dense layer y = act(x·W + b) over weights packed once (Linear), the
// gather of 16-wide embedding rows (Gather16), the categorical indices
// offset into one stacked table and checked (Offsets), the BLAS that
// Gorgonia's training graph multiplies with (Training, its Sgemm on the
// same tiles) and one Adam step over a parameter (AdamUpdate).
//
// A dense layer is a register-blocked matrix product of tiles of rows over
// weights packed into 16-column panels. The AVX2 tile (6 × 16) keeps twelve
// 8-wide accumulators: each k step two loads of the packed weight row, six
// broadcasts of x and twelve FMAs. The AVX-512 kernel's tall tile (14 × 32,
// two adjacent panels) keeps twenty-eight 16-wide accumulators, all 32
// registers: each k step two loads of weights, fourteen broadcasts of x and
// twenty-eight FMAs, half the weight loads per FMA of a 6-row tile; its 6 × 32
// tile takes the rows left after the blocks of 14. The bias and the
// activation are applied to the tile while it is still in registers. The tiles are Go assembly
// (kernel_amd64.s, kernel_avx512_amd64.s) where the CPU and the OS support
// them (golang.org/x/sys/cpu), portable Go elsewhere and with the purego
// build tag, or OpenBLAS's cblas_sgemm through cgo with the openblas build
// tag (internal/openblas; then OpenBLAS also serves Gorgonia's own matrix
// products, see OpenBLAS).
//
// The kernel is chosen once, at first use: the one the SCORER_KERNEL
// environment variable names ("avx512", "avx2-fma" or "go"; an unknown or
// unsupported name stops the process at start-up), else the best the CPU
// supports, except that AVX-512 is kept only if a 2 ms measurement at
// first use finds it at least 10% faster than AVX2 (on AMD Zen 4, which
// runs 512-bit instructions in two halves, it is not). Name says which
// kernel this process uses.
//
// Every kernel computes every element of y as the same sequence of float32
// fused multiply-adds in order of k, then the bias, then the activation;
// the portable tile rounds each step exactly as an FMA instruction does
// (fma32). So a build's results are bit for bit the same whatever the
// kernel (OpenBLAS, which sums in its own order, aside), and therefore
// whatever the CPU, and whatever the batch size and a row's neighbours.
// No kernel starts threads of its own: each scoring worker is one thread.
// docs/performance.md has the measurements.
//
// Offsets and AdamUpdate run 8 elements an instruction (AVX/AVX2) with the
// avx2-fma and avx512 kernels, element by element in Go with go; each
// gives the same results whatever the kernel.
//
// This package knows slices of float32 and nothing else: not Gorgonia, not
// model bundles, not features. Callers (the scoring package's fused ops)
// check shapes; the kernels check only what keeps memory safe.
package kernels
