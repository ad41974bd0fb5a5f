//go:build amd64 && !purego

package features

import (
	"os"
	"unsafe"

	"golang.org/x/sys/cpu"
)

//go:noescape
func hash8x8AVX512(dst *uint64, data *byte, offs *int32, base int32, size int, n int) int

// hashAVX512 says whether hashValues hashes eight values at a time with
// AVX-512 (F and DQ, for the 64-bit multiplication): on CPUs that have it,
// unless SCORER_KERNEL names a kernel without it ("go", "avx2-fma"), the
// setting that also keeps the matrix kernels off AVX-512 (scoring/kernels).
var hashAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ && !noAVX512(os.Getenv("SCORER_KERNEL"))

func noAVX512(kernel string) bool { return kernel == "go" || kernel == "avx2-fma" }

// hash8x8 hashes groups of eight values of offs (offs[i]-base to
// offs[i+1]-base in data) into dst while every value of a group has 8 bytes
// or none, and returns how many it hashed: a multiple of 8, at most
// len(offs)-1 rounded down. Without AVX-512 it hashes none.
func hash8x8(dst []uint64, data []byte, offs []int32, base int32) int {
	n := (len(offs) - 1) &^ 7
	if !hashAVX512 || n <= 0 {
		return 0
	}
	_ = dst[n-1]
	return hash8x8AVX512(&dst[0], unsafe.SliceData(data), &offs[0], base, len(data), n)
}
