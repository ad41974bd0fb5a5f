package bundle

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// WeightShapes returns the name and shape of every tensor the architecture
// needs for the inputs, in a fixed order (see the package documentation).
func WeightShapes(a Architecture, in Inputs) ([]string, map[string][]int) {
	var names []string
	shapes := map[string][]int{}
	add := func(name string, shape ...int) {
		names = append(names, name)
		shapes[name] = shape
	}
	v, k, d := in.TotalCardinality(), in.K(), in.Dense
	// The image embeddings are inputs after the dense ones.
	d += a.ImageWidth(in)
	if t := a.Image; t != nil {
		cin := 3
		for i, c := range t.Channels {
			add(fmt.Sprintf("image.conv%d.w", i), c, cin, 3, 3)
			add(fmt.Sprintf("image.conv%d.b", i), c)
			cin = c
		}
		add("image.proj.w", cin, t.Embedding)
		add("image.proj.b", t.Embedding)
		add("image.missing", t.Embedding)
	}
	if a.HasWide() {
		if k > 0 {
			add("wide.emb", v, 1)
		}
		if d > 0 {
			add("wide.dense", d, 1)
		}
		add("wide.bias", 1)
	}
	if a.HasDeep() {
		if k > 0 {
			add("deep.emb", v, a.EmbeddingDim)
		}
		width := k*a.EmbeddingDim + d
		for i, h := range a.Hidden {
			add(fmt.Sprintf("deep.l%d.w", i), width, h)
			add(fmt.Sprintf("deep.l%d.b", i), h)
			width = h
		}
		add("deep.out.w", width, 1)
		add("deep.out.b", 1)
	}
	return names, shapes
}

// Validate checks that the bundle describes a model: a known architecture,
// sensible input widths, and every weight tensor present with the shape the
// architecture needs and no other. Errors wrap ErrInvalid and name the
// offending tensor.
func (bu *Bundle) Validate() error {
	if err := ValidateArch(bu.Arch, bu.Inputs); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	if bu.Arch.Kind == GraphKind {
		if err := bu.validateGraph(); err != nil {
			return err
		}
		names := make([]string, 0, len(bu.Weights))
		for name := range bu.Weights {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			p := bu.Weights[name]
			if i := firstNonFinite(p.Data); i >= 0 {
				return bad("tensor %q has a non-finite value %g at index %d (%v of shape %v)", name, p.Data[i], i, unravel(i, p.Shape), p.Shape)
			}
		}
		return bu.validateStats()
	}
	if bu.Graph != nil {
		return bad("a graph section is set for a %s model", bu.Arch.Kind)
	}
	names, shapes := WeightShapes(bu.Arch, bu.Inputs)
	for _, name := range names {
		p, ok := bu.Weights[name]
		if !ok || p == nil {
			return bad("missing tensor %q (shape %v)", name, shapes[name])
		}
		if !slices.Equal(p.Shape, shapes[name]) {
			return bad("tensor %q has shape %v, want %v", name, p.Shape, shapes[name])
		}
		if len(p.Data) != p.Size() {
			return bad("tensor %q has %d values, want %d for shape %v", name, len(p.Data), p.Size(), p.Shape)
		}
		if i := firstNonFinite(p.Data); i >= 0 {
			return bad("tensor %q has a non-finite value %g at index %d (%v of shape %v)", name, p.Data[i], i, unravel(i, p.Shape), p.Shape)
		}
	}
	if len(bu.Weights) != len(names) {
		var extra []string
		for name := range bu.Weights {
			if _, ok := shapes[name]; !ok {
				extra = append(extra, fmt.Sprintf("%q", name))
			}
		}
		sort.Strings(extra)
		return bad("unexpected tensor(s) %s for a %s model", strings.Join(extra, ", "), bu.Arch.Kind)
	}
	return bu.validateStats()
}

// validateStats checks the feature statistics that the feature transforms
// compute with: a mean or standard deviation that is not a finite number
// (or a negative deviation) would poison every score.
func (bu *Bundle) validateStats() error {
	names := make([]string, 0, len(bu.Stats.Numeric))
	for name := range bu.Stats.Numeric {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		st := bu.Stats.Numeric[name]
		if math.IsNaN(st.Mean) || math.IsInf(st.Mean, 0) {
			return fmt.Errorf("%w: stats.numeric[%q].mean is %g, want a finite number", ErrInvalid, name, st.Mean)
		}
		if math.IsNaN(st.Std) || math.IsInf(st.Std, 0) || st.Std < 0 {
			return fmt.Errorf("%w: stats.numeric[%q].std is %g, want a finite number >= 0", ErrInvalid, name, st.Std)
		}
	}
	return nil
}

// firstNonFinite is the index of the first NaN or infinity in data, or -1.
// It reads the exponent bits (all ones for NaN and ±Inf): one pass over the
// weights at load, about as fast as memory.
func firstNonFinite(data []float32) int {
	const exp = 0x7f800000
	for i, v := range data {
		if math.Float32bits(v)&exp == exp {
			return i
		}
	}
	return -1
}

// unravel turns a row-major flat index into per-dimension indices.
func unravel(i int, shape []int) []int {
	idx := make([]int, len(shape))
	for d := len(shape) - 1; d >= 0; d-- {
		if shape[d] > 0 {
			idx[d] = i % shape[d]
			i /= shape[d]
		}
	}
	return idx
}

// MaxImageChannels bounds an image tower layer's channels.
const MaxImageChannels = 1024

// validateImages checks the image tower against the image inputs.
func validateImages(a Architecture, in Inputs) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	switch {
	case in.Images < 0:
		return bad("inputs.images is %d", in.Images)
	case in.Images == 0 && a.Image != nil:
		return bad("arch.image is set but the model has no image inputs")
	case in.Images == 0:
		return nil
	case a.Kind == GraphKind:
		return bad("image inputs need a built-in architecture with arch.image, not an imported graph")
	case a.Image == nil:
		return bad("%d image input(s) need arch.image (the tower that embeds them)", in.Images)
	case len(a.Image.Channels) == 0:
		return bad("arch.image.channels is empty, want at least one conv layer")
	case len(a.Image.Channels) > 10:
		return bad("arch.image has %d conv layers, at most 10", len(a.Image.Channels))
	case a.Image.Embedding < 1 || a.Image.Embedding > MaxImageChannels:
		return bad("arch.image.embedding is %d, want in [1, %d]", a.Image.Embedding, MaxImageChannels)
	}
	for i, c := range a.Image.Channels {
		if c < 1 || c > MaxImageChannels {
			return bad("arch.image.channels[%d] is %d, want in [1, %d]", i, c, MaxImageChannels)
		}
	}
	if n := len(a.Image.Channels); in.ImageSize < 1 || in.ImageSize%(1<<n) != 0 {
		return bad("inputs.image_size %d is not a positive multiple of %d (%d conv layers, each halving the side)", in.ImageSize, 1<<n, n)
	}
	return nil
}

// ValidateArch checks an architecture and input widths on their own, as
// Validate does before it checks the weights. Errors wrap ErrInvalid.
func ValidateArch(a Architecture, in Inputs) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	switch a.Kind {
	case Wide, Deep, WideDeep:
	case GraphKind:
		if a.EmbeddingDim != 0 || len(a.Hidden) > 0 {
			return bad("arch.embedding_dim and arch.hidden are not for a graph model (its graph says its layers)")
		}
	default:
		return bad("unknown architecture kind %q (wide, deep, wide_deep, graph)", a.Kind)
	}
	if in.Dense < 0 {
		return bad("inputs.dense is %d", in.Dense)
	}
	for i, c := range in.Cardinalities {
		if c < 1 {
			return bad("inputs.cardinalities[%d] is %d, want >= 1", i, c)
		}
	}
	if uint64(in.TotalCardinality()) > math.MaxInt32 {
		return bad("total cardinality %d does not fit int32 indices", in.TotalCardinality())
	}
	if in.Dense == 0 && in.K() == 0 && in.Images == 0 {
		return bad("model has no inputs")
	}
	if err := validateImages(a, in); err != nil {
		return err
	}
	if a.HasDeep() {
		if in.K() > 0 && a.EmbeddingDim < 1 {
			return bad("arch.embedding_dim is %d, want >= 1 for %s with categorical inputs", a.EmbeddingDim, a.Kind)
		}
		if a.EmbeddingDim < 0 {
			return bad("arch.embedding_dim is %d", a.EmbeddingDim)
		}
		for i, h := range a.Hidden {
			if h < 1 {
				return bad("arch.hidden[%d] is %d, want >= 1", i, h)
			}
		}
	} else if len(a.Hidden) > 0 {
		return bad("arch.hidden is set for a %s model", a.Kind)
	}
	return nil
}
