// Package hugepage asks the kernel to back large, randomly read buffers
// with transparent huge pages.
//
// A model's embedding tables (109 MB for the reference ctr-mlp) are read a
// row here and a row there: with 4 KiB pages nearly every row read misses
// the TLB as well as the cache, and with 2 MiB pages the whole table fits
// in the TLB. BenchmarkGather16 (scoring/kernels) measures the difference.
package hugepage

import "unsafe"

// Size is the huge page size advise aligns to (x86-64, arm64 with 4 KiB
// base pages).
const Size = 2 << 20

// Bytes returns a new zeroed slice of n bytes, advised (advise) before
// this package touches it. Memory the Go heap reuses it zeroes first, so
// the advice only holds for memory it maps afresh (Collapse then).
func Bytes(n int) []byte {
	b := make([]byte, n)
	advise(b)
	return b
}

// Float32s is Bytes for n float32 values.
func Float32s(n int) []float32 {
	f := make([]float32, n)
	if n > 0 {
		advise(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(f))), 4*n))
	}
	return f
}

// CollapseFloat32s is Collapse of f's bytes.
func CollapseFloat32s(f []float32) {
	if len(f) > 0 {
		Collapse(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(f))), 4*len(f)))
	}
}
