package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"
)

// Every kernel's AdamUpdate gives adamGo's results bit for bit, for every
// length (the vector part and the tail), with and without L2, over steps
// whose gradients are sparse, tiny and large; and zeroes the gradient.
func TestAdamKernels(t *testing.T) {
	// adam_amd64.s reads the constants at these offsets.
	if unsafe.Offsetof(Adam{}.L2) != 32 || unsafe.Offsetof(Adam{}.L2Used) != 36 {
		t.Fatalf("Adam's layout changed: L2 at %d, L2Used at %d; update adam_amd64.s", unsafe.Offsetof(Adam{}.L2), unsafe.Offsetof(Adam{}.L2Used))
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for _, kn := range impls() {
		for _, n := range []int{1, 7, 8, 9, 64, 1001} {
			for _, l2 := range []bool{false, true} {
				w := randomFloats(rng, n)
				m, v := make([]float32, n), make([]float32, n)
				ref := [3][]float32{slices.Clone(w), slices.Clone(m), slices.Clone(v)}
				for step := 1; step <= 5; step++ {
					k := Adam{
						Beta1: 0.9, Beta2: 0.999, OneMinusBeta1: 1 - float32(0.9), OneMinusBeta2: 1 - float32(0.999),
						InvCorrection1: 1 / float32(1-math.Pow(0.9, float64(step))),
						InvCorrection2: 1 / float32(1-math.Pow(0.999, float64(step))),
						Eps:            1e-8, NegEta: -0.01, L2: 1e-3, L2Used: l2,
					}
					g := make([]float32, n)
					for i := range g {
						if rng.IntN(3) > 0 {
							g[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(8)-5)))
						}
					}
					gref := slices.Clone(g)
					done := 0
					if kn.adam != nil {
						done = kn.adam(w, g, m, v, &k)
					}
					adamGo(w[done:], g[done:], m[done:], v[done:], &k)
					adamGo(ref[0], gref, ref[1], ref[2], &k)
					for i := range w {
						if math.Float32bits(w[i]) != math.Float32bits(ref[0][i]) || math.Float32bits(m[i]) != math.Float32bits(ref[1][i]) ||
							math.Float32bits(v[i]) != math.Float32bits(ref[2][i]) || g[i] != 0 {
							t.Fatalf("%s, n %d, l2 %v, step %d, element %d: w m v g = %g %g %g %g, want %g %g %g 0",
								kn.name, n, l2, step, i, w[i], m[i], v[i], g[i], ref[0][i], ref[1][i], ref[2][i])
						}
					}
				}
			}
		}
	}
}
