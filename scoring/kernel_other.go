//go:build !amd64 || purego

package scoring

// tile6x16 computes one 6×16 tile; see tile6x16Go.
func tile6x16(k int, a *[6]*float32, b []float32, c []float32, ldc int, bias []float32, relu bool) {
	tile6x16Go(k, a, b, c, ldc, bias, relu)
}

func kernelName() string { return "go" }

// gather16 copies 16-float table rows; see gather16Go.
func gather16(dst []float32, stride int, table []float32, idx []int32, rows, k int) {
	gather16Go(dst, stride, table, idx, rows, k)
}
