package scoring

import (
	"fmt"

	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/kernels"
)

// Tower is a bundle's image tower (arch.image) compiled for the packed
// kernels: it turns images, as readers/images makes them (3 × S × S
// float32, RGB channel first), into embeddings of E values. At scoring the
// tower runs apart from the tabular graph, once per distinct image (its
// output is cached by the image's content, ImageStage), and its embeddings
// are the model inputs after the dense features; training differentiates
// the same computation inside the model's Gorgonia graph
// (NewTrainingNetwork), and a test holds the two to the same numbers.
//
// A Tower shares the bundle's weights read-only but for its working memory:
// it is not safe for concurrent use.
type Tower struct {
	size    int // S
	chans   []int
	convs   []*kernels.Conv2D
	proj    *kernels.Linear
	missing []float32
	dim     int       // E
	a, b    []float32 // one image's activations, HWC
	pooled  []float32 // n × C of the last layer
}

// NewTower compiles the image tower of a validated bundle with image
// inputs.
func NewTower(bu *bundle.Bundle) (*Tower, error) {
	t := bu.Arch.Image
	if t == nil || bu.Inputs.Images == 0 {
		return nil, fmt.Errorf("image tower: model %s %s has no image inputs", bu.Name, bu.Version)
	}
	tw := &Tower{size: bu.Inputs.ImageSize, chans: t.Channels, dim: t.Embedding}
	w := func(name string) []float32 { return bu.Weights[name].Data }
	cin := 3
	for i, c := range t.Channels {
		tw.convs = append(tw.convs, kernels.PackConv2D(w(fmt.Sprintf("image.conv%d.w", i)), w(fmt.Sprintf("image.conv%d.b", i)), cin, c, 3, 1, 1))
		cin = c
	}
	tw.proj = kernels.PackLinear(w("image.proj.w"), w("image.proj.b"), cin, t.Embedding)
	tw.missing = w("image.missing")
	s := tw.size
	largest := 3 * s * s
	for _, c := range t.Channels {
		largest = max(largest, c*s*s)
		s /= 2
	}
	tw.a, tw.b = make([]float32, largest), make([]float32, largest)
	return tw, nil
}

// Dim is E, the number of values of one embedding.
func (tw *Tower) Dim() int { return tw.dim }

// InputSize is the number of values of one image: 3 × S × S.
func (tw *Tower) InputSize() int { return 3 * tw.size * tw.size }

// Missing is the learned embedding of a row without a usable image
// (image.missing); the caller must not modify it.
func (tw *Tower) Missing() []float32 { return tw.missing }

// Embed computes the embeddings of n images x (n × InputSize, each channel
// first) into out (n × Dim).
func (tw *Tower) Embed(x []float32, n int, out []float32) {
	last := tw.chans[len(tw.chans)-1]
	if cap(tw.pooled) < n*last {
		tw.pooled = make([]float32, n*last)
	}
	pooled := tw.pooled[:n*last]
	plane := tw.size * tw.size
	for img := range n {
		src := x[img*3*plane : (img+1)*3*plane]
		// Channel first to channel last, the kernels' layout.
		a := tw.a[:3*plane]
		for c := range 3 {
			for p, v := range src[c*plane : (c+1)*plane] {
				a[p*3+c] = v
			}
		}
		s, cin := tw.size, 3
		for i, conv := range tw.convs {
			c := tw.chans[i]
			conv.Forward(tw.a[:s*s*cin], 1, s, s, tw.b[:s*s*c], true)
			kernels.MaxPool2D(tw.b[:s*s*c], 1, s, s, c, 2, tw.a[:(s/2)*(s/2)*c])
			s, cin = s/2, c
		}
		kernels.GlobalAvgPool(tw.a[:s*s*cin], 1, s, s, cin, pooled[img*cin:(img+1)*cin])
	}
	tw.proj.Forward(pooled, n, out[:n*tw.dim], false)
}
