//go:build amd64 && !purego

package readers

import "golang.org/x/sys/cpu"

// delimEndsAVX2 is the assembly of split_amd64.s: see delimEnds.
//
//go:noescape
func delimEndsAVX2(p *byte, n int, d byte, ends *int32, base int) (k int, high uint32)

// delimEndsAsm runs delimEndsAVX2 over the largest multiple of 32 bytes of
// p; see delimEnds.
func delimEndsAsm(p []byte, d byte, ends []int32, base int) (n, k int, ascii bool) {
	n = len(p) &^ 31
	if n == 0 {
		return 0, 0, true
	}
	_ = ends[n-1] // room for a delimiter in every byte
	k, high := delimEndsAVX2(&p[0], n, d, &ends[0], base)
	return n, k, high == 0
}

func init() {
	if cpu.X86.HasAVX2 && cpu.X86.HasBMI1 {
		delimEnds, delimEndsName = delimEndsAsm, "avx2"
	}
}
