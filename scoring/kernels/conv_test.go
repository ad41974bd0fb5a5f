package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Conv2D against the convolution written out in float64 from the filters
// as given ([cout][cin][k][k]) over HWC images: strides, padding, 1×1 and
// 5×5 filters, widths the tiles do not divide, with and without ReLU.
func TestConv2DAgainstTheDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct{ cin, cout, k, stride, pad, h, w int }{
		{3, 16, 3, 1, 1, 8, 8},
		{3, 5, 3, 2, 0, 9, 7},
		{16, 32, 3, 1, 1, 6, 5},
		{4, 20, 1, 1, 0, 4, 4},
		{2, 33, 5, 2, 2, 11, 13},
		{1, 1, 3, 1, 1, 3, 3},
	} {
		t.Run(fmt.Sprintf("%+v", c), func(t *testing.T) {
			const n = 2
			w := randomFloats(rng, c.cout*c.cin*c.k*c.k)
			b := randomFloats(rng, c.cout)
			x := randomFloats(rng, n*c.h*c.w*c.cin)
			conv := PackConv2D(w, b, c.cin, c.cout, c.k, c.stride, c.pad)
			oh, ow := conv.OutSize(c.h, c.w)
			if want := (c.h+2*c.pad-c.k)/c.stride + 1; oh != want {
				t.Fatalf("out height %d, want %d", oh, want)
			}
			for _, relu := range []bool{false, true} {
				y := make([]float32, n*oh*ow*c.cout)
				conv.Forward(x, n, c.h, c.w, y, relu)
				for img := range n {
					for oy := range oh {
						for ox := range ow {
							for o := range c.cout {
								want := float64(b[o])
								for ci := range c.cin {
									for ky := range c.k {
										for kx := range c.k {
											iy, ix := oy*c.stride-c.pad+ky, ox*c.stride-c.pad+kx
											if iy < 0 || iy >= c.h || ix < 0 || ix >= c.w {
												continue
											}
											want += float64(w[((o*c.cin+ci)*c.k+ky)*c.k+kx]) *
												float64(x[((img*c.h+iy)*c.w+ix)*c.cin+ci])
										}
									}
								}
								if relu {
									want = max(want, 0)
								}
								got := y[((img*oh+oy)*ow+ox)*c.cout+o]
								if math.Abs(float64(got)-want) > 1e-4*(1+math.Abs(want)) {
									t.Fatalf("relu %v: image %d pixel (%d, %d) filter %d: %g, want %g", relu, img, oy, ox, o, got, want)
								}
							}
						}
					}
				}
			}
		})
	}
}

// The pools against their definitions, on a 5 × 7 image whose last row
// and column of 2 × 2 windows are partial (and dropped).
func TestPools(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const n, h, w, ch = 2, 5, 7, 3
	x := randomFloats(rng, n*h*w*ch)
	y := make([]float32, n*2*3*ch)
	MaxPool2D(x, n, h, w, ch, 2, y)
	avg := make([]float32, n*ch)
	GlobalAvgPool(x, n, h, w, ch, avg)
	for img := range n {
		for c := range ch {
			at := func(iy, ix int) float32 { return x[((img*h+iy)*w+ix)*ch+c] }
			for oy := range 2 {
				for ox := range 3 {
					want := max(at(2*oy, 2*ox), at(2*oy, 2*ox+1), at(2*oy+1, 2*ox), at(2*oy+1, 2*ox+1))
					if got := y[((img*2+oy)*3+ox)*ch+c]; got != want {
						t.Errorf("max pool image %d (%d, %d) channel %d: %g, want %g", img, oy, ox, c, got, want)
					}
				}
			}
			var sum float64
			for iy := range h {
				for ix := range w {
					sum += float64(at(iy, ix))
				}
			}
			if got := avg[img*ch+c]; math.Abs(float64(got)-sum/(h*w)) > 1e-5 {
				t.Errorf("average image %d channel %d: %g, want %g", img, c, got, sum/(h*w))
			}
		}
	}
}

// BenchmarkConvTower runs a small image tower on 64 × 64 RGB images, one
// worker: conv 3×3 3→16, ReLU, max pool 2, conv 3×3 16→32, ReLU, max pool
// 2, conv 3×3 32→64, ReLU, global average pool (22 MFLOP an image).
// It reports images/s per core with the kernel the CPU runs (make bench).
func BenchmarkConvTower(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	const n = 16
	layers := []struct{ cin, cout int }{{3, 16}, {16, 32}, {32, 64}}
	convs := make([]*Conv2D, len(layers))
	for i, l := range layers {
		convs[i] = PackConv2D(randomFloats(rng, l.cout*l.cin*9), randomFloats(rng, l.cout), l.cin, l.cout, 3, 1, 1)
	}
	x := randomFloats(rng, n*64*64*3)
	a := make([]float32, n*64*64*16)
	p := make([]float32, n*32*32*16)
	out := make([]float32, n*64)
	b.ReportAllocs()
	for b.Loop() {
		convs[0].Forward(x, n, 64, 64, a, true)
		MaxPool2D(a, n, 64, 64, 16, 2, p)
		convs[1].Forward(p, n, 32, 32, a, true)
		MaxPool2D(a, n, 32, 32, 32, 2, p)
		convs[2].Forward(p, n, 16, 16, a, true)
		GlobalAvgPool(a, n, 16, 16, 64, out)
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "images/s")
}
