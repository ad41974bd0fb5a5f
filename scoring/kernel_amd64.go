//go:build amd64 && !purego

package scoring

//go:noescape
func tile6x16AVX2(k int, a0, a1, a2, a3, a4, a5, b, c *float32, ldc int, bias *float32, relu int)

//go:noescape
func gather16AVX2(dst *float32, stride int, table *float32, idx *int32, rows, k int)

// gather16 copies 16-float table rows: dst[r*stride+c*16:][:16] =
// table[idx[r*k+c]*16:][:16] for r < rows, c < k. The indices must be in
// range.
func gather16(dst []float32, stride int, table []float32, idx []int32, rows, k int) {
	if !useAVX2 || rows == 0 || k == 0 {
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

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

func xgetbv() (eax, edx uint32)

// hasAVX2FMA reports whether the CPU and the OS support AVX2 and FMA3.
func hasAVX2FMA() bool {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const (
		fma     = 1 << 12
		osxsave = 1 << 27
		avx     = 1 << 28
	)
	if ecx1&(fma|osxsave|avx) != fma|osxsave|avx {
		return false
	}
	if xcr0, _ := xgetbv(); xcr0&6 != 6 { // XMM and YMM state saved by the OS
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	return ebx7&(1<<5) != 0 // AVX2
}

var useAVX2 = hasAVX2FMA()

// tile6x16 computes one 6×16 tile; see tile6x16Go for the contract.
func tile6x16(k int, a *[6]*float32, b []float32, c []float32, ldc int, bias []float32, relu bool) {
	if !useAVX2 || k == 0 {
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

func kernelName() string {
	if useAVX2 {
		return "avx2-fma"
	}
	return "go"
}
