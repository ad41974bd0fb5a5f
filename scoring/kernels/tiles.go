package kernels

// panelMatrix is a k×n matrix packed in panels of 16 columns as PackLinear
// packs it (panels × k × 16 floats, the last panel padded with zeros), with
// its bias (panels × 16 floats, or nil for none).
type panelMatrix struct {
	w            []float32
	k, n, panels int
	bias         []float32
}

// zeroBias is the bias of a panelMatrix without one. It is read a pair of
// panels at a time.
var zeroBias [2 * tileCols]float32

// tileWork is the working memory of a tiled product: the rows of x of one
// 6-row tile and one tile of y at the edges. It lives with its caller (a
// Linear, a pooled gemmBufs) rather than on the stack because a pointer
// passed to a kernel through a function value escapes.
type tileWork struct {
	rowPtrs [tileRows]*float32
	scratch [tallRows * 2 * tileCols]float32
}

// product writes y[i*ly+j] = act(bias[j] + Σ_{p<k} x[i*lx+p]·W[p][j]) for
// i < m, j < n, with the tiles of kn: its tall tile over every whole block of
// 14 rows and pair of panels, if it has one; its wide tile over the other
// pairs of panels, if it has one; its 6×16 tile over the rest. act is
// max(·, 0) if relu is set, the identity otherwise. Tiles at the edges of y
// are computed into scratch and copied. Each element is the same sequence
// of operations whichever tile computes it, so the results do not depend
// on m or on a row's neighbours. The helpers take mat by pointer: a copy
// by value, read with 16-byte loads from the caller's 8-byte stores, could
// not be forwarded and waited for the previous tile's output stores to
// reach the cache (docs/performance.md, "A tile call no longer waits").
func (t *tileWork) product(kn *impl, mat panelMatrix, x []float32, lx, m int, y []float32, ly int, relu bool) {
	i, pairs := 0, 0
	if kn.tall != nil {
		pairs = mat.panels &^ 1
		for ; pairs > 0 && i+tallRows <= m; i += tallRows {
			a := x[i*lx : (i+tallRows-1)*lx+mat.k]
			for panel := 0; panel < pairs; panel += 2 {
				t.tallAt(kn.tall, &mat, a, lx, panel, y, i, ly, relu)
			}
		}
	}
	if pairs < mat.panels {
		// The last panel of an odd count, over the rows the tall tile did.
		t.rowTiles(kn, &mat, x, lx, 0, i, pairs, y, ly, relu)
	}
	t.rowTiles(kn, &mat, x, lx, i, m, 0, y, ly, relu)
}

// rowTiles runs 6-row tiles over rows [from, to) and the panels from panel
// on: the wide tile over pairs of panels if kn has one, the 6×16 tile over
// the others. A short last tile repeats its last row; those results are
// dropped.
func (t *tileWork) rowTiles(kn *impl, mat *panelMatrix, x []float32, lx, from, to, panel int, y []float32, ly int, relu bool) {
	a := &t.rowPtrs
	for i := from; i < to; i += tileRows {
		rows := min(tileRows, to-i)
		for r := range tileRows {
			a[r] = &x[(i+min(r, rows-1))*lx]
		}
		p := panel
		if kn.wide != nil {
			for ; p+2 <= mat.panels; p += 2 {
				t.tileAt(kn.wide, 2, mat, a, p, rows, y, i, ly, relu)
			}
		}
		for ; p < mat.panels; p++ {
			t.tileAt(kn.tile, 1, mat, a, p, rows, y, i, ly, relu)
		}
	}
}

// panelsAt returns the weights and the bias of the width panels from panel on.
func (mat *panelMatrix) panelsAt(panel, width int) (w, bias []float32) {
	w = mat.w[panel*mat.k*tileCols : (panel+width)*mat.k*tileCols]
	if mat.bias == nil {
		return w, zeroBias[:width*tileCols]
	}
	return w, mat.bias[panel*tileCols : (panel+width)*tileCols]
}

// tileAt runs tile over the width panels from panel on and the rows of a,
// the rows i… of y (rows of them), directly into y if the tile fits there,
// else through scratch.
func (t *tileWork) tileAt(tile tileFunc, width int, mat *panelMatrix, a *[tileRows]*float32, panel, rows int, y []float32, i, ly int, relu bool) {
	w, bias := mat.panelsAt(panel, width)
	j, tc := panel*tileCols, width*tileCols
	cols := min(tc, mat.n-j)
	if rows == tileRows && cols == tc {
		tile(mat.k, a, w, y[i*ly+j:], ly, bias, relu)
		return
	}
	scratch := t.scratch[:tileRows*tc]
	tile(mat.k, a, w, scratch, tc, bias, relu)
	for r := range rows {
		copy(y[(i+r)*ly+j:(i+r)*ly+j+cols], scratch[r*tc:r*tc+cols])
	}
}

// tallAt runs tall over the two panels from panel on and the 14 rows of a
// (lda floats apart), the rows i… of y, directly into y if the tile fits
// there, else through scratch.
func (t *tileWork) tallAt(tall tallFunc, mat *panelMatrix, a []float32, lda, panel int, y []float32, i, ly int, relu bool) {
	w, bias := mat.panelsAt(panel, 2)
	const tc = 2 * tileCols
	j := panel * tileCols
	cols := min(tc, mat.n-j)
	if cols == tc {
		tall(mat.k, a, lda, w, y[i*ly+j:], ly, bias, relu)
		return
	}
	scratch := t.scratch[:]
	tall(mat.k, a, lda, w, scratch, tc, bias, relu)
	for r := range tallRows {
		copy(y[(i+r)*ly+j:(i+r)*ly+j+cols], scratch[r*tc:r*tc+cols])
	}
}
