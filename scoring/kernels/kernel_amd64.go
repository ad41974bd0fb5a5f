//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

//go:noescape
func tile6x16AVX2(k int, a0, a1, a2, a3, a4, a5, b, c *float32, ldc int, bias *float32, relu int)

//go:noescape
func gather16AVX2(dst *float32, stride int, table *float32, idx *int32, rows, k int)

// avx2FMA is the Go assembly of kernel_amd64.s, for CPUs (and OSes that save
// the YMM state) with AVX2 and FMA3.
var avx2FMA = &impl{name: "avx2-fma", tile: tile6x16AVX2Go, gather: gather16AVX2Go}

// impls lists the implementations this build and CPU support, best first.
func impls() []*impl {
	// x/sys/cpu reports AVX2 and FMA only if the OS saves the YMM state
	// (OSXSAVE and XCR0).
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		return []*impl{avx2FMA, pureGo}
	}
	return []*impl{pureGo}
}

// tile6x16AVX2Go calls the assembly tile; see tile6x16Go for the contract.
func tile6x16AVX2Go(k int, a *[tileRows]*float32, b []float32, c []float32, ldc int, bias []float32, relu bool) {
	if k == 0 {
		tile6x16Go(k, a, b, c, ldc, bias, relu)
		return
	}
	r := 0
	if relu {
		r = 1
	}
	// The assembly reads b[:16k], bias[:16] and writes c[i*ldc:i*ldc+16].
	_ = b[16*k-1]
	_ = c[5*ldc+15]
	_ = bias[15]
	tile6x16AVX2(k, a[0], a[1], a[2], a[3], a[4], a[5], &b[0], &c[0], ldc, &bias[0], r)
}

// gather16AVX2Go calls the assembly gather after checking the indices; see
// gather16Go for the contract.
func gather16AVX2Go(dst []float32, stride int, table []float32, idx []int32, rows, k int) {
	if rows == 0 || k == 0 {
		gather16Go(dst, stride, table, idx, rows, k)
		return
	}
	_ = dst[(rows-1)*stride+k*16-1]
	_ = idx[rows*k-1]
	tableRows := len(table) / 16
	for _, i := range idx[:rows*k] {
		if i < 0 || int(i) >= tableRows {
			panic("gather16: index out of range")
		}
	}
	gather16AVX2(&dst[0], stride, &table[0], &idx[0], rows, k)
}
