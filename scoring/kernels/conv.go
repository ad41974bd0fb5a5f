package kernels

// Conv2D is a 2-D convolution with square K×K filters over images laid out
// height × width × channels (HWC, row-major), computed as im2col and the
// packed dense kernel (Linear, whichever kernel the CPU runs): each output
// pixel's window (K rows of K pixels of Cin channels, zeros outside the
// image) becomes one row of a matrix, each filter one column of the
// weights, so the output comes out HWC too. Like a Linear it is read-only
// but for Forward's working memory: give each worker its own.
type Conv2D struct {
	cin, cout, k, stride, pad int
	lin                       *Linear
	col                       []float32 // one image's windows
}

// PackConv2D packs filters w given as [cout][cin][k][k] (the layout of
// ONNX's Conv and PyTorch's Conv2d) and bias b (cout) for Forward, with a
// stride and zero padding on every side.
func PackConv2D(w, b []float32, cin, cout, k, stride, pad int) *Conv2D {
	in := k * k * cin
	m := make([]float32, in*cout) // row (ky·k + kx)·cin + c, column o
	for o := range cout {
		for c := range cin {
			for ky := range k {
				for kx := range k {
					m[((ky*k+kx)*cin+c)*cout+o] = w[((o*cin+c)*k+ky)*k+kx]
				}
			}
		}
	}
	return &Conv2D{cin: cin, cout: cout, k: k, stride: stride, pad: pad, lin: PackLinear(m, b, in, cout)}
}

// OutSize is the height and width of the output of an h × w image.
func (c *Conv2D) OutSize(h, w int) (int, int) {
	return (h+2*c.pad-c.k)/c.stride + 1, (w+2*c.pad-c.k)/c.stride + 1
}

// Forward computes the convolution of n images x (each h × w × cin) into y
// (each OutSize × cout), then max(·, 0) if relu is set.
func (c *Conv2D) Forward(x []float32, n, h, w int, y []float32, relu bool) {
	oh, ow := c.OutSize(h, w)
	in := c.k * c.k * c.cin
	if cap(c.col) < oh*ow*in {
		c.col = make([]float32, oh*ow*in)
	}
	col := c.col[:oh*ow*in]
	for img := range n {
		src := x[img*h*w*c.cin : (img+1)*h*w*c.cin]
		c.im2col(src, h, w, oh, ow, col)
		c.lin.Forward(col, oh*ow, y[img*oh*ow*c.cout:(img+1)*oh*ow*c.cout], relu)
	}
}

// im2col writes the window of every output pixel of one image into col, a
// row each: for each filter row ky, k pixels of cin channels, contiguous
// in src where the window is inside the image.
func (c *Conv2D) im2col(src []float32, h, w, oh, ow int, col []float32) {
	k, cin := c.k, c.cin
	row := 0
	for oy := range oh {
		for ox := range ow {
			dst := col[row*k*k*cin : (row+1)*k*k*cin]
			row++
			x0 := ox*c.stride - c.pad
			for ky := range k {
				iy := oy*c.stride - c.pad + ky
				line := dst[ky*k*cin : (ky+1)*k*cin]
				if iy < 0 || iy >= h {
					clear(line)
					continue
				}
				if x0 >= 0 && x0+k <= w { // the whole window row is inside
					copy(line, src[(iy*w+x0)*cin:(iy*w+x0+k)*cin])
					continue
				}
				for kx := range k {
					ix := x0 + kx
					px := line[kx*cin : (kx+1)*cin]
					if ix < 0 || ix >= w {
						clear(px)
					} else {
						copy(px, src[(iy*w+ix)*cin:(iy*w+ix+1)*cin])
					}
				}
			}
		}
	}
}

// MaxPool2D takes the maximum of each k × k window (stride k, no padding)
// of n images x (h × w × ch, HWC) into y (h/k × w/k × ch); a last partial
// row or column of windows is dropped, as ONNX's MaxPool does without
// ceil_mode.
func MaxPool2D(x []float32, n, h, w, ch, k int, y []float32) {
	oh, ow := h/k, w/k
	for img := range n {
		src := x[img*h*w*ch:]
		dst := y[img*oh*ow*ch:]
		for oy := range oh {
			for ox := range ow {
				out := dst[(oy*ow+ox)*ch : (oy*ow+ox+1)*ch]
				copy(out, src[(oy*k*w+ox*k)*ch:(oy*k*w+ox*k+1)*ch])
				for ky := range k {
					for kx := range k {
						px := src[((oy*k+ky)*w+ox*k+kx)*ch : ((oy*k+ky)*w+ox*k+kx+1)*ch]
						for i, v := range px {
							out[i] = max(out[i], v)
						}
					}
				}
			}
		}
	}
}

// GlobalAvgPool averages each channel of n images x (h × w × ch, HWC) over
// its pixels into y (n × ch).
func GlobalAvgPool(x []float32, n, h, w, ch int, y []float32) {
	inv := 1 / float32(h*w)
	for img := range n {
		out := y[img*ch : (img+1)*ch]
		clear(out)
		for p := range h * w {
			for i, v := range x[(img*h*w+p)*ch : (img*h*w+p+1)*ch] {
				out[i] += v
			}
		}
		for i := range out {
			out[i] *= inv
		}
	}
}
