package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// naiveGemm is alpha·op(A)·op(B) + beta·C in float64, and for each element
// the sum of the magnitudes of its terms (the scale of its rounding error).
func naiveGemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) (want, scale []float64) {
	at := func(i, p int) float64 {
		if tA == blas.NoTrans {
			return float64(a[i*lda+p])
		}
		return float64(a[p*lda+i])
	}
	bt := func(p, j int) float64 {
		if tB == blas.NoTrans {
			return float64(b[p*ldb+j])
		}
		return float64(b[j*ldb+p])
	}
	want, scale = make([]float64, m*n), make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s, abs float64
			for p := range k {
				s += at(i, p) * bt(p, j)
				abs += math.Abs(at(i, p) * bt(p, j))
			}
			v := float64(alpha) * s
			abs *= math.Abs(float64(alpha))
			if beta != 0 {
				v += float64(beta) * float64(c[i*ldc+j])
				abs += math.Abs(float64(beta) * float64(c[i*ldc+j]))
			}
			want[i*n+j], scale[i*n+j] = v, abs
		}
	}
	return want, scale
}

// Training's Sgemm, on every kernel this build and CPU support, computes
// what BLAS defines, for every transposition, leading dimensions wider than
// the matrices, alpha and beta, edges of every size; it leaves the rest of
// C alone, does not read C when beta is 0 (a NaN there stays out), and every
// kernel gives the same bits.
func TestTrainingSgemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	trans := []blas.Transpose{blas.NoTrans, blas.Trans}
	for _, sz := range []struct{ m, n, k int }{{256, 32, 118}, {7, 17, 33}, {13, 64, 5}, {6, 33, 40}, {118, 32, 256}, {1, 100, 50}, {30, 49, 20}, {29, 48, 7}} {
		for _, tA := range trans {
			for _, tB := range trans {
				for _, ab := range [][2]float32{{1, 0}, {1, 1}, {-0.5, 0}, {2, -0.25}} {
					m, n, k := sz.m, sz.n, sz.k
					ar, ac := m, k
					if tA != blas.NoTrans {
						ar, ac = k, m
					}
					br, bc := k, n
					if tB != blas.NoTrans {
						br, bc = n, k
					}
					lda, ldb, ldc := ac+3, bc+1, n+5
					a, b := randomFloats(rng, ar*lda), randomFloats(rng, br*ldb)
					c0 := randomFloats(rng, m*ldc)
					if ab[1] == 0 {
						for i := range c0 {
							if i%ldc < n {
								c0[i] = float32(math.NaN())
							}
						}
					}
					want, scale := naiveGemm(tA, tB, m, n, k, ab[0], a, lda, b, ldb, ab[1], c0, ldc)
					name := fmt.Sprintf("%dx%dx%d/tA=%c/tB=%c/alpha=%g/beta=%g", m, n, k, tA, tB, ab[0], ab[1])
					var first []float32
					for _, kn := range impls() {
						c := slices.Clone(c0)
						sgemm(kn, tA, tB, m, n, k, ab[0], a, lda, b, ldb, ab[1], c, ldc)
						for i := range m {
							for j := range ldc {
								got := c[i*ldc+j]
								if j >= n {
									if math.Float32bits(got) != math.Float32bits(c0[i*ldc+j]) {
										t.Fatalf("%s/%s: C[%d,%d] beyond n changed", name, kn.name, i, j)
									}
									continue
								}
								if d := math.Abs(float64(got) - want[i*n+j]); !(d <= 1e-6*scale[i*n+j]+1e-30) {
									t.Fatalf("%s/%s: C[%d,%d] = %g, want %g (scale %g)", name, kn.name, i, j, got, want[i*n+j], scale[i*n+j])
								}
							}
						}
						if first == nil {
							first = c
						} else if !slices.EqualFunc(first, c, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) }) {
							t.Fatalf("%s: %s differs from %s in some bits", name, kn.name, impls()[0].name)
						}
					}
				}
			}
		}
	}
}

// The exported Sgemm agrees with gonum's within float32 rounding, sends
// what it does not handle to gonum (small products, alpha 0), and panics
// as gonum does on bad arguments.
func TestTrainingSgemmAgainstGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	m, n, k := 64, 48, 96
	a, b := randomFloats(rng, m*k), randomFloats(rng, k*n)
	for _, alpha := range []float32{1, 0} {
		got, ref := randomFloats(rng, m*n), make([]float32, m*n)
		copy(ref, got)
		Training{}.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, alpha, a, k, b, n, 0.5, got, n)
		gonum.Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, alpha, a, k, b, n, 0.5, ref, n)
		for i := range got {
			if d := math.Abs(float64(got[i] - ref[i])); d > 1e-4*(1+math.Abs(float64(ref[i]))) {
				t.Fatalf("alpha %g: C[%d] = %g, gonum %g", alpha, i, got[i], ref[i])
			}
		}
	}
	for _, bad := range []func(){
		func() {
			Training{}.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a[:10], k, b, n, 0, make([]float32, m*n), n)
		},
		func() {
			Training{}.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a, k-1, b, n, 0, make([]float32, m*n), n)
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("bad arguments: no panic")
				}
			}()
			bad()
		}()
	}
}
