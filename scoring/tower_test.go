package scoring

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/internal/modeltest"
)

// referenceTower is the image tower by its definition, in float64 on the
// channel-first image: each layer a 3×3 convolution with zero padding 1
// (output channel o = bias + Σ over input channels and window), ReLU, the
// maximum of each 2×2 block; then each channel's mean and the projection.
func referenceTower(bu *bundle.Bundle, img []float32) []float64 {
	w := func(name string) []float32 { return bu.Weights[name].Data }
	s, cin := bu.Inputs.ImageSize, 3
	x := make([]float64, len(img))
	for i, v := range img {
		x[i] = float64(v)
	}
	for l, cout := range bu.Arch.Image.Channels {
		f, bias := w(fmt.Sprintf("image.conv%d.w", l)), w(fmt.Sprintf("image.conv%d.b", l))
		conv := make([]float64, cout*s*s)
		for o := range cout {
			for y := range s {
				for xx := range s {
					sum := float64(bias[o])
					for c := range cin {
						for ky := range 3 {
							for kx := range 3 {
								iy, ix := y+ky-1, xx+kx-1
								if iy < 0 || iy >= s || ix < 0 || ix >= s {
									continue
								}
								sum += float64(f[((o*cin+c)*3+ky)*3+kx]) * x[(c*s+iy)*s+ix]
							}
						}
					}
					conv[(o*s+y)*s+xx] = math.Max(sum, 0)
				}
			}
		}
		h := s / 2
		pooled := make([]float64, cout*h*h)
		for o := range cout {
			for y := range h {
				for xx := range h {
					m := math.Inf(-1)
					for dy := range 2 {
						for dx := range 2 {
							m = math.Max(m, conv[(o*s+2*y+dy)*s+2*xx+dx])
						}
					}
					pooled[(o*h+y)*h+xx] = m
				}
			}
		}
		x, s, cin = pooled, h, cout
	}
	e := bu.Arch.Image.Embedding
	pw, pb := w("image.proj.w"), w("image.proj.b")
	out := make([]float64, e)
	for j := range e {
		out[j] = float64(pb[j])
		for c := range cin {
			var mean float64
			for _, v := range x[c*s*s : (c+1)*s*s] {
				mean += v
			}
			out[j] += mean / float64(s*s) * float64(pw[c*e+j])
		}
	}
	return out
}

// TestTowerMatchesDefinition: the packed tower's embeddings are the
// definition's, and a model with image inputs scores what the reference
// forward pass gives the rows with those embeddings (the missing one for a
// row without an image).
func TestTowerMatchesDefinition(t *testing.T) {
	for _, tc := range []struct {
		kind     bundle.Kind
		dense    int
		cards    []int
		images   int
		size     int
		channels []int
		hidden   []int
	}{
		{bundle.WideDeep, 3, []int{5, 7}, 1, 16, []int{4, 8}, []int{8}},
		{bundle.Deep, 0, []int{4}, 2, 8, []int{6}, nil},
		{bundle.Wide, 2, nil, 1, 32, []int{3, 5, 7}, nil},
	} {
		t.Run(fmt.Sprintf("%s-%dimg-%dpx-%v", tc.kind, tc.images, tc.size, tc.channels), func(t *testing.T) {
			bu := modeltest.WithImages(modeltest.RandomBundle(tc.kind, tc.dense, tc.cards, 4, tc.hidden, 1),
				tc.images, tc.size, bundle.ImageTower{Channels: tc.channels, Embedding: 5}, 2)
			if err := bu.Validate(); err != nil {
				t.Fatal(err)
			}
			const u, n = 7, 40
			imgs := modeltest.RandomImages(u, tc.size, 3)
			tw, err := NewTower(bu)
			if err != nil {
				t.Fatal(err)
			}
			e, size := tw.Dim(), tw.InputSize()
			emb := make([]float32, u*e)
			tw.Embed(imgs, u, emb)
			ref := make([][]float64, u)
			for i := range u {
				ref[i] = referenceTower(bu, imgs[i*size:(i+1)*size])
				for j, want := range ref[i] {
					if got := float64(emb[i*e+j]); math.Abs(got-want) > 1e-5*(1+math.Abs(want)) {
						t.Fatalf("image %d: embedding[%d] = %g, definition %g", i, j, got, want)
					}
				}
			}

			b := modeltest.RandomBatch(n, bu.Inputs, 4)
			rng := rand.New(rand.NewPCG(5, 6))
			iw := tc.images * e
			b.ImageEmb = make([]float32, n*iw)
			for r := range n {
				for j := range tc.images {
					dst := b.ImageEmb[r*iw+j*e : r*iw+(j+1)*e]
					if k := rng.IntN(u + 1); k < u {
						for i, v := range ref[k] {
							dst[i] = float32(v)
						}
					} else {
						copy(dst, bu.Weights["image.missing"].Data)
					}
				}
			}
			m, err := NewModel(bu, 16)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = m.Close() }()
			got := make([]float32, n)
			if err := m.Score(b, got); err != nil {
				t.Fatal(err)
			}
			for r, want := range referenceScores(bu, b) {
				if math.Abs(float64(got[r])-want) > 1e-5 {
					t.Fatalf("row %d: score %g, reference %g", r, got[r], want)
				}
			}

			b.ImageEmb = b.ImageEmb[:len(b.ImageEmb)-1]
			if err := m.Score(b, got); err == nil {
				t.Fatal("a batch without its image embeddings was scored")
			}
		})
	}
}

// BenchmarkTower: images/s per core through the image tower alone
// (readers/images' BenchmarkLoad measures decoding and resizing), for the
// default tower (train.image: channels [8, 16], embedding 8) at 32 px and
// at 64 px, 64 images a call as the image stage makes them.
func BenchmarkTower(b *testing.B) {
	for _, size := range []int{32, 64} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			bu := modeltest.WithImages(modeltest.RandomBundle(bundle.WideDeep, 4, []int{10}, 8, []int{32, 16}, 1),
				1, size, bundle.ImageTower{Channels: []int{8, 16}, Embedding: 8}, 2)
			tw, err := NewTower(bu)
			if err != nil {
				b.Fatal(err)
			}
			const n = 64
			x := modeltest.RandomImages(n, size, 3)
			out := make([]float32, n*tw.Dim())
			b.ReportAllocs()
			for b.Loop() {
				tw.Embed(x, n, out)
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
