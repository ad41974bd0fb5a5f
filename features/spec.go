package features

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"go.yaml.in/yaml/v3"
)

// Kind is what a feature is computed from and what it becomes.
type Kind string

// The kinds of feature. Numeric features become columns of the dense input;
// an image feature's value is the URI of an image (Batch.Images), which the
// model's image tower turns into an embedding; every other kind becomes
// one int32 index into its own table (of Pipeline.Cardinalities entries),
// index 0 meaning "missing or unknown", except for a categorical of integer
// ids (Feature.IDs), whose index is the id itself.
const (
	Numeric     Kind = "numeric"
	Categorical Kind = "categorical"
	Cross       Kind = "cross"
	Timestamp   Kind = "timestamp"
	Image       Kind = "image"
)

// What an ids categorical does with an id outside 0..ids-1
// (Feature.OutOfRange).
const (
	OutOfRangeMissing = "missing" // the id becomes missing_id
	OutOfRangeReject  = "reject"  // the row is a bad row, refused by the reader
)

// Timestamp parts.
const (
	HourOfDay = "hour_of_day" // 1..24 for hours 0..23 (UTC)
	DayOfWeek = "day_of_week" // 1..7 for Monday..Sunday (ISO, UTC)
)

// Spec is the declarative feature spec: the one description of the model's
// inputs that training and scoring share. It is stored in the model bundle,
// so a model is always scored with the features it was trained on.
type Spec struct {
	// Label is the 0/1 click column; read by training only.
	Label string `yaml:"label,omitempty" json:"label,omitempty"`
	// Features in model input order.
	Features []Feature `yaml:"features" json:"features"`
}

// Feature is one entry of the spec.
type Feature struct {
	Name string `yaml:"name" json:"name"`
	Kind Kind   `yaml:"kind" json:"kind"`
	// Column is the input column (numeric, categorical, timestamp). Default:
	// Name.
	Column string `yaml:"column,omitempty" json:"column,omitempty"`

	// Numeric: Fill replaces a missing value (default 0); then Clip bounds
	// the value to [min, max]; then Log1p applies sign(x)*log(1+|x|); then
	// Standardize subtracts the training mean and divides by the training
	// standard deviation.
	Fill        *float64    `yaml:"fill,omitempty" json:"fill,omitempty"`
	Clip        *[2]float64 `yaml:"clip,omitempty" json:"clip,omitempty"`
	Log1p       bool        `yaml:"log1p,omitempty" json:"log1p,omitempty"`
	Standardize bool        `yaml:"standardize,omitempty" json:"standardize,omitempty"`

	// Categorical and Cross: HashBuckets > 0 hashes the value into
	// 1..HashBuckets (see Hash). Categorical only: Vocabulary learns the
	// most frequent values at training instead, or IDs > 0 says the column
	// (int64) already holds integer ids 0..IDs-1, which are the index as
	// they are (exactly one of the three).
	HashBuckets int        `yaml:"hash_buckets,omitempty" json:"hash_buckets,omitempty"`
	Vocabulary  *VocabSpec `yaml:"vocabulary,omitempty" json:"vocabulary,omitempty"`
	IDs         int        `yaml:"ids,omitempty" json:"ids,omitempty"`
	// IDs only: MissingID (default 0, in 0..IDs-1) is the index of a
	// missing value; OutOfRange (OutOfRangeMissing, the default, or
	// OutOfRangeReject) says what becomes of an id below 0 or >= IDs.
	MissingID  int    `yaml:"missing_id,omitempty" json:"missing_id,omitempty"`
	OutOfRange string `yaml:"out_of_range,omitempty" json:"out_of_range,omitempty"`
	// Cross: the names of the two categorical features to cross.
	Cross []string `yaml:"cross,omitempty" json:"cross,omitempty"`

	// Timestamp: which part (hour_of_day, day_of_week).
	Part string `yaml:"part,omitempty" json:"part,omitempty"`

	// Image: how the image is made a tensor (default: 32 × 32, values in
	// [0, 1]).
	Image *ImageSpec `yaml:"image,omitempty" json:"image,omitempty"`
}

// ImageSpec says how an image feature's image becomes the tower's input:
// resized to Size × Size (bilinear, antialiased, over white where it is
// transparent), its RGB values scaled to [0, 1], then (v - Mean) / Std per
// channel. Training and scoring read images the same way, from this spec.
type ImageSpec struct {
	Size int         `yaml:"size,omitempty" json:"size,omitempty"`
	Mean *[3]float32 `yaml:"mean,omitempty,flow" json:"mean,omitempty"`
	Std  *[3]float32 `yaml:"std,omitempty,flow" json:"std,omitempty"`
}

// DefaultImageSize is the side of an image feature's tensor when its spec
// gives none.
const DefaultImageSize = 32

// ImageInput is an image feature as the pipeline reads it: the column of
// URIs and the tensor's geometry and normalisation, defaults applied.
type ImageInput struct {
	Name, Column string
	Size         int
	Mean, Std    [3]float32
}

// VocabSpec says how a vocabulary is learned at training: the MaxSize most
// frequent values seen at least MinCount times.
type VocabSpec struct {
	MaxSize  int `yaml:"max_size" json:"max_size"`
	MinCount int `yaml:"min_count,omitempty" json:"min_count,omitempty"`
}

// Stats are what training learned for the spec: per numeric feature the mean
// and standard deviation, per vocabulary feature its values. They are stored
// in the model bundle beside the spec.
type Stats struct {
	Numeric map[string]NumericStats `yaml:"numeric,omitempty" json:"numeric,omitempty"`
	Vocab   map[string][]string     `yaml:"vocab,omitempty" json:"vocab,omitempty"`
}

// NumericStats of one numeric feature after fill, clip and log1p.
type NumericStats struct {
	Mean float64 `yaml:"mean" json:"mean"`
	Std  float64 `yaml:"std" json:"std"`
}

// ErrSpec marks an invalid spec.
var ErrSpec = errors.New("invalid feature spec")

// LoadSpec reads and validates a YAML spec file.
func LoadSpec(path string) (Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, fmt.Errorf("read feature spec: %w", err)
	}
	s, err := ParseSpec(data)
	if err != nil {
		return Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseSpec decodes YAML strictly (unknown keys are errors), applies the
// defaults (SetDefaults) and validates.
func ParseSpec(data []byte) (Spec, error) {
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("%w: %w", ErrSpec, err)
	}
	s.SetDefaults()
	return s, s.Validate()
}

// SetDefaults fills in what a spec may leave out: a feature's column
// defaults to its name (but a cross's, which reads the columns of the
// features it crosses), an ids categorical's out_of_range to missing.
// ParseSpec applies it to a spec file; a spec decoded any other way (the
// copy in a model bundle) must go through it too before it is validated or
// used, so that it means what the same YAML means in a spec file.
func (s *Spec) SetDefaults() {
	for i := range s.Features {
		f := &s.Features[i]
		if f.Column == "" && f.Kind != Cross {
			f.Column = f.Name
		}
		if f.Kind == Categorical && f.IDs > 0 && f.OutOfRange == "" {
			f.OutOfRange = OutOfRangeMissing
		}
		if f.Kind == Image {
			if f.Image == nil {
				f.Image = &ImageSpec{}
			}
			if f.Image.Size == 0 {
				f.Image.Size = DefaultImageSize
			}
		}
	}
}

// Validate checks the spec on its own (not against any data).
func (s Spec) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrSpec, fmt.Sprintf(format, a...))
	}
	if len(s.Features) == 0 {
		return bad("no features")
	}
	names := map[string]Feature{}
	columns := map[string]Feature{} // the first feature to read each input column
	var first *Feature              // the first image feature
	for i, f := range s.Features {
		if f.Name == "" {
			return bad("feature %d has no name", i+1)
		}
		if _, dup := names[f.Name]; dup {
			return bad("feature %q is declared twice", f.Name)
		}
		names[f.Name] = f
		if f.IDs != 0 && f.Kind != Categorical {
			return bad("feature %q: ids is for categoricals only", f.Name)
		}
		if f.Image != nil && f.Kind != Image {
			return bad("feature %q: image is for image features only", f.Name)
		}
		if (f.MissingID != 0 || f.OutOfRange != "") && (f.Kind != Categorical || f.IDs == 0) {
			return bad("feature %q: missing_id and out_of_range are for categoricals of ids only", f.Name)
		}
		if t := f.inputType(); t != nil {
			// InputSchema reads each column once, with one type.
			if g, ok := columns[f.Column]; ok && !arrow.TypeEqual(g.inputType(), t) {
				return bad("feature %q reads column %q as %s, feature %q as %s", f.Name, f.Column, t, g.Name, g.inputType())
			}
			if _, ok := columns[f.Column]; !ok {
				columns[f.Column] = f
			}
		}
		switch f.Kind {
		case Numeric:
			// A NaN would reach the model as a NaN input: fill must be a
			// number, clip bounds may be infinite (one-sided) but not NaN.
			if f.Fill != nil && (math.IsNaN(*f.Fill) || math.IsInf(*f.Fill, 0)) {
				return bad("feature %q: fill %g is not finite", f.Name, *f.Fill)
			}
			if f.Clip != nil && (math.IsNaN(f.Clip[0]) || math.IsNaN(f.Clip[1])) {
				return bad("feature %q: clip %g has a NaN bound", f.Name, *f.Clip)
			}
			if f.Clip != nil && f.Clip[0] > f.Clip[1] {
				return bad("feature %q: clip min %g > max %g", f.Name, f.Clip[0], f.Clip[1])
			}
		case Categorical:
			n := 0
			for _, set := range []bool{f.HashBuckets != 0, f.Vocabulary != nil, f.IDs != 0} {
				if set {
					n++
				}
			}
			if n != 1 {
				return bad("feature %q: a categorical needs exactly one of hash_buckets, vocabulary or ids", f.Name)
			}
			if f.HashBuckets < 0 {
				return bad("feature %q: hash_buckets must be > 0", f.Name)
			}
			if f.Vocabulary != nil && f.Vocabulary.MaxSize <= 0 {
				return bad("feature %q: vocabulary.max_size must be > 0", f.Name)
			}
			if f.IDs != 0 {
				if f.IDs < 0 || f.IDs > math.MaxInt32 {
					return bad("feature %q: ids must be in [1, %d], not %d", f.Name, math.MaxInt32, f.IDs)
				}
				if f.MissingID < 0 || f.MissingID >= f.IDs {
					return bad("feature %q: missing_id %d is not an id in [0, %d)", f.Name, f.MissingID, f.IDs)
				}
				switch f.OutOfRange {
				case "", OutOfRangeMissing, OutOfRangeReject:
				default:
					return bad("feature %q: out_of_range must be %s or %s, not %q", f.Name, OutOfRangeMissing, OutOfRangeReject, f.OutOfRange)
				}
			}
		case Cross:
			if len(f.Cross) != 2 {
				return bad("feature %q: cross needs two categorical feature names", f.Name)
			}
			for _, c := range f.Cross {
				if names[c].Kind != Categorical {
					return bad("feature %q: %q is not a categorical feature declared before it", f.Name, c)
				}
				if names[c].IDs > 0 {
					return bad("feature %q: %q is a categorical of ids; a cross needs hashed or vocabulary categoricals", f.Name, c)
				}
			}
			if f.HashBuckets <= 0 {
				return bad("feature %q: cross needs hash_buckets > 0", f.Name)
			}
		case Timestamp:
			if f.Part != HourOfDay && f.Part != DayOfWeek {
				return bad("feature %q: part must be %s or %s, not %q", f.Name, HourOfDay, DayOfWeek, f.Part)
			}
		case Image:
			if f.Image != nil && (f.Image.Size < 1 || f.Image.Size > MaxImageSize) {
				return bad("feature %q: image.size must be in [1, %d], not %d", f.Name, MaxImageSize, f.Image.Size)
			}
			if f.Image != nil && f.Image.Std != nil {
				for c, v := range f.Image.Std {
					if !(v > 0) || math.IsInf(float64(v), 0) {
						return bad("feature %q: image.std[%d] is %g, want a positive number", f.Name, c, v)
					}
				}
			}
			if f.Image != nil && f.Image.Mean != nil {
				for c, v := range f.Image.Mean {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						return bad("feature %q: image.mean[%d] is %g, want a number", f.Name, c, v)
					}
				}
			}
			if f.HashBuckets != 0 || f.Vocabulary != nil || f.Cross != nil || f.Part != "" || f.Fill != nil || f.Clip != nil || f.Log1p || f.Standardize {
				return bad("feature %q: an image feature takes only column and image", f.Name)
			}
			// One tower embeds every image feature: one way to read them.
			if first == nil {
				first = &f
			} else if imageNorm(f) != imageNorm(*first) {
				return bad("feature %q: image differs from feature %q's (one image tower reads every image feature: give them the same size, mean and std)", f.Name, first.Name)
			}
		default:
			return bad("feature %q: unknown kind %q (numeric, categorical, cross, timestamp, image)", f.Name, f.Kind)
		}
	}
	if g, ok := columns[s.Label]; ok && s.Label != "" && g.Kind != Numeric {
		return bad("label %q is a column that feature %q reads as %s, not a number", s.Label, g.Name, g.inputType())
	}
	return nil
}

// inputType is the Arrow type of the input column f reads, nil for a
// cross (which reads the columns of the features it crosses).
func (f Feature) inputType() arrow.DataType {
	switch f.Kind {
	case Numeric:
		return arrow.PrimitiveTypes.Float64
	case Categorical:
		if f.IDs > 0 {
			return arrow.PrimitiveTypes.Int64
		}
		return arrow.BinaryTypes.String
	case Timestamp:
		return arrow.FixedWidthTypes.Timestamp_us
	case Image:
		return arrow.BinaryTypes.String
	}
	return nil
}

// imageSize is an image feature's side, default applied.
func (f Feature) imageSize() int {
	if f.Image != nil && f.Image.Size > 0 {
		return f.Image.Size
	}
	return DefaultImageSize
}

// imageNorm is an image feature's size, mean and std, defaults applied.
func imageNorm(f Feature) ImageInput {
	in := ImageInput{Size: f.imageSize(), Std: [3]float32{1, 1, 1}}
	if f.Image != nil && f.Image.Mean != nil {
		in.Mean = *f.Image.Mean
	}
	if f.Image != nil && f.Image.Std != nil {
		in.Std = *f.Image.Std
	}
	return in
}

// MaxImageSize bounds an image feature's side: a 1024 × 1024 tensor is
// 12 MiB of float32 per image.
const MaxImageSize = 1024

// ImageInputs are the spec's image features in spec order, defaults
// applied (the spec must have been through SetDefaults).
func (s Spec) ImageInputs() []ImageInput {
	var out []ImageInput
	for _, f := range s.Features {
		if f.Kind != Image {
			continue
		}
		in := imageNorm(f)
		in.Name, in.Column = f.Name, f.Column
		out = append(out, in)
	}
	return out
}

// InputSchema is the Arrow schema the readers must produce for this spec:
// the passthrough id columns (utf8, required), every input column the
// features read (float64 for numeric, utf8 for hashed and vocabulary
// categoricals, int64 for categoricals of ids, timestamp[us, UTC] for
// timestamp), and, if withLabel, the label (float64). Columns read by
// several features appear once.
func (s Spec) InputSchema(ids []string, withLabel bool) *arrow.Schema {
	var fields []arrow.Field
	seen := map[string]bool{}
	add := func(name string, t arrow.DataType, nullable bool) {
		if seen[name] {
			return
		}
		seen[name] = true
		fields = append(fields, arrow.Field{Name: name, Type: t, Nullable: nullable})
	}
	for _, id := range ids {
		add(id, arrow.BinaryTypes.String, false)
	}
	for _, f := range s.Features {
		if t := f.inputType(); t != nil {
			add(f.Column, t, true)
		}
	}
	if withLabel && s.Label != "" {
		add(s.Label, arrow.PrimitiveTypes.Float64, false)
	}
	return arrow.NewSchema(fields, nil)
}

// IDRange is the range of an ids categorical with out_of_range: reject:
// its input column's values must be ids in [0, IDs); a row with any other
// value is a bad row. The readers refuse such rows as they read them
// (readers.Options.Ranges), so that they are counted and sent to the
// rejects table with their file, row and column like any other bad row;
// Pipeline.Transform refuses them too, should one reach it.
type IDRange struct {
	Feature, Column string
	IDs             int64
}

// RejectRanges are the ranges of the spec's ids categoricals with
// out_of_range: reject, in spec order.
func (s Spec) RejectRanges() []IDRange {
	var out []IDRange
	for _, f := range s.Features {
		if f.Kind == Categorical && f.IDs > 0 && f.OutOfRange == OutOfRangeReject {
			out = append(out, IDRange{Feature: f.Name, Column: f.Column, IDs: int64(f.IDs)})
		}
	}
	return out
}

// Batch holds the model's input tensors for N rows, row-major:
// Dense is N×D float32 (the numeric features in spec order) and Cat is N×K
// int32 (the other features in spec order, each an index below its
// cardinality). The buffers are reused from batch to batch.
type Batch struct {
	N, D, K int
	Dense   []float32
	Cat     []int32
	// I is the number of image features and Images their URIs, N×I
	// row-major ("" where the row has none). Transform's strings alias
	// the record's memory: they are valid while the record is.
	I      int
	Images []string
	// ImageEmb are the image embeddings of the rows, N × I·E row-major
	// (E: the model's image tower's width): not computed by Transform but
	// filled from Images by package scoring's image stage (or training)
	// for the model about to score the batch.
	ImageEmb []float32
	// Profile, if set, profiles every record transformed into the batch
	// (Pipeline.NewProfiler).
	Profile *Profiler

	hashes []uint64  // Transform's scratch: a column's hashes (hashValues)
	filled []float64 // Transform's scratch: a numeric column's values, filled (fillValues)
}

// Reset sizes the batch for n rows, reusing its buffers.
func (b *Batch) Reset(n, d, k int) {
	b.N, b.D, b.K = n, d, k
	b.Dense = slices.Grow(b.Dense[:0], n*d)[:n*d]
	b.Cat = slices.Grow(b.Cat[:0], n*k)[:n*k]
}
