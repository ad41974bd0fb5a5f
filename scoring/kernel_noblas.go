//go:build !openblas || !cgo

package scoring

const useOpenBLAS = false

func (p *packedLinear) forwardBLAS(x []float32, n int, y []float32, relu bool) {
	panic("scoring: built without the openblas tag")
}
