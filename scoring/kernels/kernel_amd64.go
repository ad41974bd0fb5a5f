//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

//go:noescape
func tile6x16AVX2(k int, a0, a1, a2, a3, a4, a5, b, c *float32, ldc int, bias *float32, relu int)

//go:noescape
func dot8AVX(x, w *float32, n int, sums *[8]float32)

//go:noescape
func gather16AVX2(dst *float32, stride int, table *float32, idx *int32, rows, k int)

//go:noescape
func tile6x32AVX512(k int, a0, a1, a2, a3, a4, a5, b *float32, ldb int, c *float32, ldc int, bias *float32, relu int)

//go:noescape
func tile14x32AVX512(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, bias *float32, relu int)

// avx2FMA is the Go assembly of kernel_amd64.s, for CPUs (and OSes that save
// the YMM state) with AVX2 and FMA3.
var avx2FMA = &impl{name: "avx2-fma", tile: tile6x16AVX2Go, dot: dot8AVXGo, gather: gather16AVX2Go, adam: adamAVXGo, offsets: offsetsAVX2Go}

// avx512 is the Go assembly of kernel_avx512_amd64.s (AVX-512F), for CPUs
// (and OSes that save the ZMM and opmask state) with AVX-512F, AVX2 and
// FMA3: the 14×32 tile over whole blocks of 14 rows and pairs of panels,
// the 6×32 tile over the rows left, the AVX2 tile over the last panel of an
// odd count, and the AVX2 gather (one 64-byte move per row instead of two
// 32-byte ones measured no faster: the gather waits on cache misses).
var avx512 = &impl{name: "avx512", tile: tile6x16AVX2Go, wide: tile6x32AVX512Go, tall: tile14x32AVX512Go, dot: dot8AVXGo, gather: gather16AVX2Go, adam: adamAVXGo, offsets: offsetsAVX2Go}

// impls lists the implementations this build and CPU support, best first.
func impls() []*impl {
	// x/sys/cpu reports AVX2 only if the OS saves the YMM state (OSXSAVE
	// and XCR0 bits 1–2), and AVX-512F only if it also saves the opmask
	// and ZMM state (XCR0 bits 5–7).
	if !cpu.X86.HasAVX2 || !cpu.X86.HasFMA {
		return []*impl{pureGo}
	}
	if cpu.X86.HasAVX512F {
		return []*impl{avx512, avx2FMA, pureGo}
	}
	return []*impl{avx2FMA, pureGo}
}

// tile6x16AVX2Go calls the assembly tile; see tile6x16Go for the contract.
func tile6x16AVX2Go(k int, a *[tileRows]*float32, b []float32, c []float32, ldc int, bias []float32, relu bool) {
	if k == 0 {
		tile6x16Go(k, a, b, c, ldc, bias, relu)
		return
	}
	// The assembly reads b[:16k], bias[:16] and writes c[i*ldc:i*ldc+16].
	if ldc < tileCols {
		panic("tile6x16: ldc < 16")
	}
	_ = b[16*k-1]
	_ = c[5*ldc+15]
	_ = bias[15]
	tile6x16AVX2(k, a[0], a[1], a[2], a[3], a[4], a[5], &b[0], &c[0], ldc, &bias[0], flag(relu))
}

// tile6x32AVX512Go calls the assembly wide tile; see tile6x32Go for the
// contract.
func tile6x32AVX512Go(k int, a *[tileRows]*float32, b []float32, c []float32, ldc int, bias []float32, relu bool) {
	if k == 0 {
		tile6x32Go(k, a, b, c, ldc, bias, relu)
		return
	}
	// The assembly reads b[:32k], bias[:32] and writes c[i*ldc:i*ldc+32].
	if ldc < 2*tileCols {
		panic("tile6x32: ldc < 32")
	}
	_ = b[32*k-1]
	_ = c[5*ldc+31]
	_ = bias[31]
	tile6x32AVX512(k, a[0], a[1], a[2], a[3], a[4], a[5], &b[0], k*tileCols, &c[0], ldc, &bias[0], flag(relu))
}

// tile14x32AVX512Go calls the assembly tall tile; see tile14x32Go for the
// contract.
func tile14x32AVX512Go(k int, a []float32, lda int, b []float32, c []float32, ldc int, bias []float32, relu bool) {
	if k == 0 {
		tile14x32Go(k, a, lda, b, c, ldc, bias, relu)
		return
	}
	// The assembly reads a[i*lda : i*lda+k] for i < 14, b[:32k], bias[:32]
	// and writes c[i*ldc:i*ldc+32].
	if lda < k || ldc < 2*tileCols {
		panic("tile14x32: lda < k or ldc < 32")
	}
	_ = a[(tallRows-1)*lda+k-1]
	_ = b[32*k-1]
	_ = c[(tallRows-1)*ldc+31]
	_ = bias[31]
	tile14x32AVX512(k, &a[0], lda, &b[0], k*tileCols, &c[0], ldc, &bias[0], flag(relu))
}

// dot8AVXGo calls the assembly dot product; see dot8Go for the contract.
func dot8AVXGo(x, w []float32) (sums [8]float32) {
	n := len(x)
	if n == 0 {
		return sums
	}
	if n%8 != 0 || len(w) < n {
		panic("dot8: length not a multiple of 8, or w too short")
	}
	dot8AVX(&x[0], &w[0], n, &sums)
	return sums
}

// adamAVX is the assembly of adam_amd64.s; see AdamUpdate.
//
//go:noescape
func adamAVX(w, grad, m, v *float32, n int, k *Adam)

// adamAVXGo runs adamAVX over the largest multiple of 8 elements and
// returns how many it did.
func adamAVXGo(w, g, m, v []float32, k *Adam) int {
	n := len(w) &^ 7
	if n == 0 {
		return 0
	}
	_, _, _ = g[n-1], m[n-1], v[n-1]
	adamAVX(&w[0], &g[0], &m[0], &v[0], n, k)
	return n
}

// offsetsAVX2 is the assembly of kernel_amd64.s; see Offsets.Apply.
//
//go:noescape
func offsetsAVX2(dst, src *int32, n int, off *int32, lim *uint32, period int) (bad bool)

// offsetsAVX2Go runs offsetsAVX2 over the largest multiple of 8 elements
// of src, the patterns holding 8 periods of the columns; it returns how
// many it did and whether one was out of range.
func offsetsAVX2Go(dst, src, offPat []int32, limPat []uint32) (int, bool) {
	n := len(src) &^ 7
	if n == 0 {
		return 0, false
	}
	_ = dst[n-1]
	_ = limPat[len(offPat)-1]
	return n, offsetsAVX2(&dst[0], &src[0], n, &offPat[0], &limPat[0], len(offPat))
}

// flag is 1 for true, 0 for false.
func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

// gather16AVX2Go calls the assembly gather after checking the indices and
// the bounds; see gather16Go for the contract.
func gather16AVX2Go(dst []float32, stride int, table []float32, idx []int32, rows, k int) int {
	if rows == 0 || k == 0 {
		return gather16Go(dst, stride, table, idx, rows, k)
	}
	if rows > 1 && stride < k*16 {
		panic("gather16: stride < 16k")
	}
	_ = dst[(rows-1)*stride+k*16-1]
	_ = idx[rows*k-1]
	if at := badIndex(idx[:rows*k], len(table)/16); at >= 0 {
		return at
	}
	gather16AVX2(&dst[0], stride, &table[0], &idx[0], rows, k)
	return -1
}
