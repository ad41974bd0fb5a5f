package scoring

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
	"unsafe"

	"github.com/nlpodyssey/safetensors"
	"go.yaml.in/yaml/v3"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/readers/store"
)

// Object names inside a bundle folder.
const (
	ModelFile   = "model.yaml"
	WeightsFile = "weights.safetensors"
)

// bundleFormat is the version of the model.yaml layout written by Save.
const bundleFormat = 1

// ErrInvalidBundle marks a bundle that cannot be read or does not describe a
// model: a bad model.yaml, an unreadable weights file, a missing tensor or a
// tensor of the wrong shape. Test with errors.Is.
var ErrInvalidBundle = errors.New("invalid model bundle")

// Kind is a model architecture.
type Kind string

// The architectures. See the package documentation for what each computes.
const (
	Wide     Kind = "wide"
	Deep     Kind = "deep"
	WideDeep Kind = "wide_deep"
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
}

func (a Architecture) hasWide() bool { return a.Kind == Wide || a.Kind == WideDeep }
func (a Architecture) hasDeep() bool { return a.Kind == Deep || a.Kind == WideDeep }

// Inputs are the widths of the model input (features.Batch): Dense is D,
// Cardinalities has one entry per categorical column (K of them), each the
// size of that column's index space including index 0 (missing/unknown).
type Inputs struct {
	Dense         int   `yaml:"dense"`
	Cardinalities []int `yaml:"cardinalities,flow"`
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
	Data         string    `yaml:"data,omitempty"`
	Rows         int       `yaml:"rows,omitempty"`
	Command      string    `yaml:"command,omitempty"`
	Seed         int64     `yaml:"seed"`
	Epochs       int       `yaml:"epochs,omitempty"`
	BatchSize    int       `yaml:"batch_size,omitempty"`
	LearningRate float64   `yaml:"learning_rate,omitempty"`
	L2           float64   `yaml:"l2,omitempty"`
	TrainedAt    time.Time `yaml:"trained_at,omitempty"`
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

func newParam(shape ...int) *Param {
	p := &Param{Shape: shape}
	p.Data = make([]float32, p.Size())
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
	// Weights by tensor name; see the package documentation for the names
	// and shapes each architecture needs.
	Weights map[string]*Param `yaml:"-"`
}

// modelFile is the layout of model.yaml.
type modelFile struct {
	Format  int `yaml:"format"`
	*Bundle `yaml:",inline"`
}

// LoadBundle reads the bundle in the folder prefix of b (model.yaml and
// weights.safetensors) and validates it.
func LoadBundle(ctx context.Context, b store.Bucket, prefix string) (*Bundle, error) {
	modelKey := store.Join(prefix, ModelFile)
	data, err := store.ReadAll(ctx, b, modelKey)
	if err != nil {
		return nil, fmt.Errorf("load bundle: %w", err)
	}
	bu := &Bundle{}
	mf := modelFile{Bundle: bu}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&mf); err != nil {
		return nil, fmt.Errorf("load bundle: decode %s: %w: %w", b.URI(modelKey), ErrInvalidBundle, err)
	}
	if mf.Format != bundleFormat {
		return nil, fmt.Errorf("load bundle: %s: %w: format %d, want %d", b.URI(modelKey), ErrInvalidBundle, mf.Format, bundleFormat)
	}

	weightsKey := store.Join(prefix, WeightsFile)
	data, err = readSized(ctx, b, weightsKey)
	if err != nil {
		return nil, fmt.Errorf("load bundle: %w", err)
	}
	if bu.Weights, err = decodeWeights(data); err != nil {
		return nil, fmt.Errorf("load bundle: %s: %w", b.URI(weightsKey), err)
	}
	if err := bu.Validate(); err != nil {
		return nil, fmt.Errorf("load bundle %s: %w", b.URI(prefix), err)
	}
	return bu, nil
}

// readSized reads a whole object into one buffer of the size the store
// gives, instead of growing one while reading (io.ReadAll): for a 109 MB
// weights file, growing by doubling allocated several times its size at
// start-up, the highest memory of a whole scoring run. The weights are then
// used in place (decodeWeights).
func readSized(ctx context.Context, b store.Bucket, key string) ([]byte, error) {
	info, err := b.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	r, err := b.NewReader(ctx, key, info.Generation)
	if err != nil {
		return nil, err
	}
	defer func() { _ = r.Close() }()
	data := make([]byte, max(info.Size, 0))
	n, err := io.ReadFull(r, data)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return data[:n], nil // shorter than its info said; decodeWeights judges
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", b.URI(key), err)
	}
	// Longer than its info said (a store without generations): the rest.
	rest, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", b.URI(key), err)
	}
	return append(data, rest...), nil
}

// Save validates the bundle and writes it to the folder prefix of b, weights
// first, so that a model.yaml is only ever seen beside its weights once both
// writes have succeeded.
func (bu *Bundle) Save(ctx context.Context, b store.Bucket, prefix string) error {
	if err := bu.Validate(); err != nil {
		return fmt.Errorf("save bundle: %w", err)
	}
	weights, err := bu.encodeWeights()
	if err != nil {
		return fmt.Errorf("save bundle: %w", err)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(modelFile{Format: bundleFormat, Bundle: bu}); err != nil {
		return fmt.Errorf("save bundle: encode %s: %w", ModelFile, err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("save bundle: encode %s: %w", ModelFile, err)
	}
	opts := store.WriteOptions{ContentType: "application/octet-stream"}
	if err := store.WriteAll(ctx, b, store.Join(prefix, WeightsFile), weights, opts); err != nil {
		return fmt.Errorf("save bundle: %w", err)
	}
	opts.ContentType = "application/yaml"
	if err := store.WriteAll(ctx, b, store.Join(prefix, ModelFile), buf.Bytes(), opts); err != nil {
		return fmt.Errorf("save bundle: %w", err)
	}
	return nil
}

// weightShapes returns the name and shape of every tensor the architecture
// needs, in a fixed order.
func weightShapes(a Architecture, in Inputs) ([]string, map[string][]int) {
	var names []string
	shapes := map[string][]int{}
	add := func(name string, shape ...int) {
		names = append(names, name)
		shapes[name] = shape
	}
	v, k, d := in.TotalCardinality(), in.K(), in.Dense
	if a.hasWide() {
		if k > 0 {
			add("wide.emb", v, 1)
		}
		if d > 0 {
			add("wide.dense", d, 1)
		}
		add("wide.bias", 1)
	}
	if a.hasDeep() {
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
// architecture needs and no other. Errors wrap ErrInvalidBundle and name the
// offending tensor.
func (bu *Bundle) Validate() error {
	if err := validateArch(bu.Arch, bu.Inputs); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidBundle, fmt.Sprintf(format, args...))
	}
	names, shapes := weightShapes(bu.Arch, bu.Inputs)
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
	return nil
}

// validateArch checks an architecture and input widths, before weights.
func validateArch(a Architecture, in Inputs) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidBundle, fmt.Sprintf(format, args...))
	}
	switch a.Kind {
	case Wide, Deep, WideDeep:
	default:
		return bad("unknown architecture kind %q (wide, deep, wide_deep)", a.Kind)
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
	if in.Dense == 0 && in.K() == 0 {
		return bad("model has no inputs")
	}
	if a.hasDeep() {
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

// encodeWeights serialises the weights as little-endian F32 safetensors.
func (bu *Bundle) encodeWeights() ([]byte, error) {
	views := make(map[string]safetensors.TensorView, len(bu.Weights))
	for name, p := range bu.Weights {
		data := make([]byte, 4*len(p.Data))
		for i, v := range p.Data {
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
		}
		shape := make([]uint64, len(p.Shape))
		for i, d := range p.Shape {
			shape[i] = uint64(d)
		}
		tv, err := safetensors.NewTensorView(safetensors.F32, shape, data)
		if err != nil {
			return nil, fmt.Errorf("encode tensor %q: %w", name, err)
		}
		views[name] = tv
	}
	meta := map[string]string{"format": "scorer", "name": bu.Name, "version": bu.Version}
	out, err := safetensors.Serialize(views, meta)
	if err != nil {
		return nil, fmt.Errorf("encode weights: %w", err)
	}
	return out, nil
}

// decodeWeights parses a safetensors file of F32 tensors.
func decodeWeights(data []byte) (map[string]*Param, error) {
	st, err := safetensors.Deserialize(data)
	if err != nil {
		return nil, fmt.Errorf("%w: not a safetensors file: %w", ErrInvalidBundle, err)
	}
	out := make(map[string]*Param, st.Len())
	for _, nt := range st.Tensors() {
		tv := nt.TensorView
		if tv.DType() != safetensors.F32 {
			return nil, fmt.Errorf("%w: tensor %q has dtype %s, want F32", ErrInvalidBundle, nt.Name, tv.DType())
		}
		p := &Param{Shape: make([]int, len(tv.Shape()))}
		for i, d := range tv.Shape() {
			if d > math.MaxInt32 {
				return nil, fmt.Errorf("%w: tensor %q has shape %v", ErrInvalidBundle, nt.Name, tv.Shape())
			}
			p.Shape[i] = int(d)
		}
		raw := tv.Data()
		if len(raw) != 4*p.Size() {
			return nil, fmt.Errorf("%w: tensor %q has %d bytes, want %d for shape %v", ErrInvalidBundle, nt.Name, len(raw), 4*p.Size(), p.Shape)
		}
		p.Data = float32View(raw)
		if p.Data == nil {
			p.Data = make([]float32, p.Size())
			for i := range p.Data {
				p.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
		}
		out[nt.Name] = p
	}
	return out, nil
}

// float32View returns the little-endian float32 values in b without copying
// them, on a little-endian machine when b is 4-byte aligned; nil otherwise.
// Loading a bundle then holds its weights once, in the file's own buffer,
// not twice (a copy would double the peak memory of a run: ctr-mlp's
// embeddings are 109 MB).
func float32View(b []byte) []float32 {
	if len(b) == 0 || len(b)%4 != 0 || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%4 != 0 {
		return nil
	}
	var probe uint32 = 1
	if *(*byte)(unsafe.Pointer(&probe)) != 1 { // big-endian
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4)
}
