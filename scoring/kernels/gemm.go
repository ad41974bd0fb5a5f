package kernels

import (
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Training is the BLAS that the training graph's matrix products run on
// (gorgonia.Use): gonum's, with Sgemm on this package's tile kernels for
// products large enough to gain from them. Training calls Sgemm with every
// transposition (x·W forward, dY·Wᵀ and xᵀ·dY backward); op(B) is packed
// into panels and a transposed A copied to rows per call, both linear in
// the operands against the product's cubic cost.
//
// Results are the tile kernels' (one FMA per term, in order of p), not
// gonum's (a multiply and an add): the two differ in the last bits, and
// each is the same from run to run.
type Training struct {
	gonum.Implementation
}

var _ BLAS = Training{}

// gemmMinWork is the smallest m·n·k that goes to the tile kernels; smaller
// products stay with gonum, where packing would cost more than it saves.
const gemmMinWork = 16 * 16 * 16

// gemmBufs are the per-call working memory of Sgemm: the packed panels of
// op(B), the rows of op(A) when A is transposed, and op(A)·op(B) when
// alpha or beta ask for more than a store.
type gemmBufs struct {
	panels, rows, prod []float32
	work               tileWork
}

var gemmPool = sync.Pool{New: func() any { return new(gemmBufs) }}

// grow returns buf resized to n, reallocated only when too small.
func grow(buf []float32, n int) []float32 {
	if cap(buf) < n {
		return make([]float32, n)
	}
	return buf[:n]
}

// Sgemm computes C = alpha·op(A)·op(B) + beta·C, op(A) m×k, op(B) k×n, all
// row-major with leading dimensions lda, ldb, ldc, as BLAS defines it (C is
// not read when beta is 0).
func (t Training) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m*n*k < gemmMinWork || alpha == 0 || !validGemm(tA, tB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc) {
		// gonum's: the small, the degenerate, and the argument errors
		// (it panics with BLAS's messages).
		t.Implementation.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	sgemm(current(), tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// sgemm is Sgemm on kernel kn, for valid arguments with m, n, k > 0.
func sgemm(kn *impl, tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	bufs := gemmPool.Get().(*gemmBufs)
	defer gemmPool.Put(bufs)

	// op(B) into panels of 16 columns, the last one padded with zeros.
	panels := (n + tileCols - 1) / tileCols
	bufs.panels = grow(bufs.panels, panels*k*tileCols)
	w := bufs.panels
	clear(w[len(w)-k*tileCols:])
	if tB == blas.NoTrans {
		for p := range k { // B's rows in order: reads in sequence
			for j, v := range b[p*ldb : p*ldb+n] {
				w[(j/tileCols)*k*tileCols+p*tileCols+j%tileCols] = v
			}
		}
	} else {
		for j := range n { // op(B)'s column j is B's row j
			dst := w[(j/tileCols)*k*tileCols+j%tileCols:]
			for p, v := range b[j*ldb : j*ldb+k] {
				dst[p*tileCols] = v
			}
		}
	}

	// The rows of op(A): A's own rows, or Aᵀ's copied out.
	rows, lr := a, lda
	if tA != blas.NoTrans {
		bufs.rows = grow(bufs.rows, m*k)
		rows, lr = bufs.rows, k
		for p := range k {
			src := a[p*lda : p*lda+m]
			for i, v := range src {
				rows[i*k+p] = v
			}
		}
	}

	// op(A)·op(B) straight into C, or into prod to combine with C.
	y, ly := c, ldc
	direct := alpha == 1 && beta == 0
	if !direct {
		bufs.prod = grow(bufs.prod, m*n)
		y, ly = bufs.prod, n
	}
	bufs.work.product(kn, panelMatrix{w: w, k: k, n: n, panels: panels}, rows, lr, m, y, ly, false)
	if direct {
		return
	}
	for i := range m {
		ci, pi := c[i*ldc:i*ldc+n], y[i*n:i*n+n]
		if beta == 0 {
			for j, v := range pi {
				ci[j] = alpha * v
			}
			continue
		}
		for j, v := range pi {
			ci[j] = alpha*v + beta*ci[j]
		}
	}
}

// validGemm reports whether Sgemm's arguments are in range (as gonum
// checks them); if not, gonum's Sgemm panics with the reason.
func validGemm(tA, tB blas.Transpose, m, n, k, la, lda, lb, ldb, lc, ldc int) bool {
	okT := func(t blas.Transpose) bool { return t == blas.NoTrans || t == blas.Trans || t == blas.ConjTrans }
	if !okT(tA) || !okT(tB) || m <= 0 || n <= 0 || k <= 0 {
		return false
	}
	ar, ac := m, k // A as stored
	if tA != blas.NoTrans {
		ar, ac = k, m
	}
	br, bc := k, n
	if tB != blas.NoTrans {
		br, bc = n, k
	}
	return lda >= max(1, ac) && ldb >= max(1, bc) && ldc >= max(1, n) &&
		la >= lda*(ar-1)+ac && lb >= ldb*(br-1)+bc && lc >= ldc*(m-1)+n
}
