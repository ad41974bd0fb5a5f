package bundle

import (
	"slices"
	"time"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/hugepage"
)

// Kind is a model architecture.
type Kind string

// The architectures. See the package documentation for their tensors and
// package scoring for what each computes.
const (
	Wide     Kind = "wide"
	Deep     Kind = "deep"
	WideDeep Kind = "wide_deep"
	// GraphKind is an imported model: its computation is the bundle's
	// Graph (scorer import onnx), not one of the built-in architectures.
	GraphKind Kind = "graph"
)

// Architecture is the shape of the network.
type Architecture struct {
	Kind Kind `yaml:"kind"`
	// EmbeddingDim is E, the width of the deep part's embeddings; needed by
	// deep and wide_deep when there are categorical inputs.
	EmbeddingDim int `yaml:"embedding_dim,omitempty"`
	// Hidden are the widths of the deep part's ReLU layers, input side first.
	// It may be empty: the deep part is then linear in its input.
	Hidden []int `yaml:"hidden,omitempty,flow"`
	// Image is the image tower, which turns each image feature's image
	// into an embedding of Image.Embedding values; needed with image
	// inputs, and only then.
	Image *ImageTower `yaml:"image,omitempty"`
}

// ImageTower is a small convolutional network: each entry of Channels is
// a 3×3 convolution (stride 1, padding 1) to that many channels, ReLU and
// a 2×2 max pooling (stride 2); then the global average of each channel
// and a linear projection to Embedding values. One tower embeds every
// image feature; its embeddings are model inputs after the dense ones,
// read by the wide part and by the deep part's first layer.
type ImageTower struct {
	Channels  []int `yaml:"channels,flow"`
	Embedding int   `yaml:"embedding"`
}

// ImageWidth is I·E: the model inputs the image features give (0 without
// image features).
func (a Architecture) ImageWidth(in Inputs) int {
	if a.Image == nil {
		return 0
	}
	return in.Images * a.Image.Embedding
}

// HasWide reports whether the architecture has the wide part (wide.*
// tensors).
func (a Architecture) HasWide() bool { return a.Kind == Wide || a.Kind == WideDeep }

// HasDeep reports whether the architecture has the deep part (deep.*
// tensors).
func (a Architecture) HasDeep() bool { return a.Kind == Deep || a.Kind == WideDeep }

// Inputs are the widths of the model input (features.Batch): Dense is D,
// Cardinalities has one entry per categorical column (K of them), each the
// size of that column's index space including index 0 (missing/unknown).
type Inputs struct {
	Dense         int   `yaml:"dense"`
	Cardinalities []int `yaml:"cardinalities,flow"`
	// Images is the number of image features (I), ImageSize the side of
	// their tensors (3 × ImageSize × ImageSize values each).
	Images    int `yaml:"images,omitempty"`
	ImageSize int `yaml:"image_size,omitempty"`
}

// InputsOf are the inputs the pipeline computes.
func InputsOf(p *features.Pipeline) Inputs {
	in := Inputs{Dense: p.Dense(), Cardinalities: p.Cardinalities()}
	if im := p.Images(); len(im) > 0 {
		in.Images, in.ImageSize = len(im), im[0].Size
	}
	return in
}

// Equal reports whether two inputs are the same widths.
func (in Inputs) Equal(o Inputs) bool {
	return in.Dense == o.Dense && slices.Equal(in.Cardinalities, o.Cardinalities) &&
		in.Images == o.Images && in.ImageSize == o.ImageSize
}

// K is the number of categorical columns.
func (in Inputs) K() int { return len(in.Cardinalities) }

// TotalCardinality is the number of rows of the concatenated embedding
// tables: the sum of the cardinalities.
func (in Inputs) TotalCardinality() int {
	n := 0
	for _, c := range in.Cardinalities {
		n += c
	}
	return n
}

// Offsets are the first rows of each categorical column in the concatenated
// embedding tables (prefix sums of the cardinalities).
func (in Inputs) Offsets() []int {
	off := make([]int, len(in.Cardinalities))
	n := 0
	for i, c := range in.Cardinalities {
		off[i] = n
		n += c
	}
	return off
}

// TrainingInfo records how a bundle was trained.
type TrainingInfo struct {
	Data    string `yaml:"data,omitempty"`
	Rows    int    `yaml:"rows,omitempty"`
	Command string `yaml:"command,omitempty"`
	Seed    int64  `yaml:"seed"`
	// Epochs run; with a validation split, BestEpoch is the epoch whose
	// weights were kept (lowest validation log loss) and Patience the
	// early-stopping patience. Refit: the weights were then retrained on
	// every row (validation rows included) for BestEpoch epochs.
	Epochs    int  `yaml:"epochs,omitempty"`
	BestEpoch int  `yaml:"best_epoch,omitempty"`
	Patience  int  `yaml:"patience,omitempty"`
	Refit     bool `yaml:"refit,omitempty"`
	// Split is how the validation rows were chosen: time:<column> (the
	// latest rows by that column), order (the last rows in input order),
	// random; ValidationFraction how many.
	Split              string    `yaml:"split,omitempty"`
	ValidationFraction float64   `yaml:"validation_fraction,omitempty"`
	BatchSize          int       `yaml:"batch_size,omitempty"`
	LearningRate       float64   `yaml:"learning_rate,omitempty"`
	L2                 float64   `yaml:"l2,omitempty"`
	TrainedAt          time.Time `yaml:"trained_at,omitempty"`
	// ImageTower says where an imported image tower came from and whether
	// training kept it (frozen) or trained it further (fine-tuned).
	ImageTower string `yaml:"image_tower,omitempty"`
}

// Param is one weight tensor: row-major float32 data of the given shape.
type Param struct {
	Shape []int
	Data  []float32
}

// Size is the number of elements the shape holds.
func (p *Param) Size() int {
	n := 1
	for _, d := range p.Shape {
		n *= d
	}
	return n
}

// NewParam returns a zero tensor of the given shape.
func NewParam(shape ...int) *Param {
	p := &Param{Shape: shape}
	p.Data = hugepage.Float32s(p.Size()) // an embedding table is read at random
	return p
}

// Bundle is a trained model: its description (model.yaml) and its weights
// (weights.safetensors). A Bundle is not modified by the models compiled from
// it, which share its weight data read-only; do not change its weights while
// such models are in use.
type Bundle struct {
	Name     string             `yaml:"name"`
	Version  string             `yaml:"version"`
	Arch     Architecture       `yaml:"arch"`
	Inputs   Inputs             `yaml:"inputs"`
	Features features.Spec      `yaml:"features,omitempty"`
	Stats    features.Stats     `yaml:"stats,omitempty"`
	Metrics  map[string]float64 `yaml:"metrics,omitempty"`
	Training TrainingInfo       `yaml:"training"`
	// Graph is the computation of a graph model (arch kind graph); nil
	// for the built-in architectures.
	Graph *Graph `yaml:"graph,omitempty"`
	// Profile is the profile of the training data (profile.json): the
	// reference a scoring run's drift is measured against; nil for a
	// bundle made without one.
	Profile *features.Profile `yaml:"-"`
	// Weights by tensor name; see the package documentation for the names
	// and shapes each architecture needs (WeightShapes).
	Weights map[string]*Param `yaml:"-"`
	// Reference are the bundle's reference rows (reference.json): rows of
	// its training data with the features and score computed then, which
	// the skew guard recomputes at load. None in a bundle made before.
	Reference []ReferenceRow `yaml:"-"`
	// ImageProbe is the image tower's embedding of scoring.ProbeImage when
	// the reference rows were recorded (reference.json), for the skew
	// guard to check the tower; nil without image inputs.
	ImageProbe []float32 `yaml:"-"`
}
