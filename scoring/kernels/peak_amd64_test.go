//go:build amd64 && !purego

package kernels

// fmaPeakAVX512 and fmaPeakAVX2 are the assembly of peak_amd64.s: n rounds
// of 12 independent FMAs, 16 or 8 floats wide.
//
//go:noescape
func fmaPeakAVX512(n int)

//go:noescape
func fmaPeakAVX2(n int)

func init() {
	fmaPeak = map[string]func(int) (flopsPerRound int){
		"avx512":   func(n int) int { fmaPeakAVX512(n); return 12 * 16 * 2 },
		"avx2-fma": func(n int) int { fmaPeakAVX2(n); return 12 * 8 * 2 },
	}
}
