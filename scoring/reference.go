package scoring

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/scoring/bundle"
)

// ReferenceScoreTolerance is how far a reference row's recomputed score may
// be from the recorded one. Features must match bit for bit: the transforms
// are scalar float64 arithmetic rounded once to float32, the same on every
// CPU. Scores may not: the matrix kernels sum in a different order on
// AVX-512, AVX2 + FMA and the portable Go tile (and OpenBLAS), so a score
// computed on one machine and recomputed on another can differ in its last
// float32 bits (a few 1e-8 for a probability). 1e-5 is far above that and
// far below any change a person would want to hear about: a changed weight
// or kernel moves scores by much more.
const ReferenceScoreTolerance = 1e-5

// ErrSkew marks the errors of the skew guard (CheckReference): a reference
// row that a bundle no longer reproduces, the features or the model
// computing differently from when the rows were recorded
// (training/serving skew), is a *SkewError; rows that cannot be computed at
// all wrap it too.
var ErrSkew = errors.New("skew guard")

// SkewError is the first difference the skew guard found.
type SkewError struct {
	// Model is the bundle's name and version.
	Model string
	// Row is the reference row, numbered from 1 in reference.json's order.
	Row int
	// Feature names the model input that differs; "" for the score.
	Feature string
	// Index: the feature is an index input (Expected and Computed are
	// indices); otherwise a dense float32 value.
	Index              bool
	Expected, Computed float64
	// Tower: the image tower's embedding of ProbeImage differs, in value
	// Value (Row is then 0).
	Tower bool
	Value int
}

func (e *SkewError) Error() string {
	where := fmt.Sprintf("%v: model %s: reference row %d", ErrSkew, e.Model, e.Row)
	switch {
	case e.Tower:
		return fmt.Sprintf("%v: model %s: image tower: probe embedding value %d is %s, computed %s (off by %.3g, more than %g relative): the image tower computes differently since training (its weights or the scoring code changed)",
			ErrSkew, e.Model, e.Value, f32(e.Expected), f32(e.Computed), math.Abs(e.Computed-e.Expected), ImageProbeTolerance)
	case e.Feature == "":
		return fmt.Sprintf("%s: score %s, computed %s (off by %.3g, more than %g): the model computes differently since training (its weights or the scoring code changed)",
			where, f32(e.Expected), f32(e.Computed), math.Abs(e.Computed-e.Expected), ReferenceScoreTolerance)
	case e.Index:
		return fmt.Sprintf("%s: feature %q index %d, computed %d: the feature transform changed since training", where, e.Feature, int64(e.Expected), int64(e.Computed))
	default:
		return fmt.Sprintf("%s: feature %q value %s (float32 bits 0x%08x), computed %s (0x%08x): the feature transform changed since training",
			where, e.Feature, f32(e.Expected), math.Float32bits(float32(e.Expected)), f32(e.Computed), math.Float32bits(float32(e.Computed)))
	}
}

// f32 writes a float32 value (held in a float64) as its shortest decimal,
// as reference.json has it.
func f32(v float64) string { return strconv.FormatFloat(v, 'g', -1, 32) }

// Unwrap is ErrSkew.
func (e *SkewError) Unwrap() error { return ErrSkew }

// CheckReference is the skew guard: it recomputes every reference row of
// the bundle from its raw values, through the code that scores input
// records (the bundle's features.Pipeline, then its compiled Model), and
// compares with what was recorded: each dense feature bit for bit, each
// index exactly, the score within ReferenceScoreTolerance. It returns the
// number of rows checked (0 for a bundle without reference rows) and, at
// the first difference, a *SkewError. Every error wraps ErrSkew; those of
// rows that cannot be computed (values the spec cannot read, a model that
// does not compile) also wrap their cause (bundle.ErrInvalid, the feature
// pipeline's or the model's).
func CheckReference(bu *bundle.Bundle) (int, error) {
	n := len(bu.Reference)
	if n == 0 {
		return 0, nil
	}
	model := bu.Name + " " + bu.Version
	fx, err := features.NewPipeline(bu.Features, bu.Stats)
	if err != nil {
		return 0, fmt.Errorf("%w: model %s: %w", ErrSkew, model, err)
	}
	rec, err := bu.ReferenceRecord(memory.DefaultAllocator)
	if err != nil {
		return 0, fmt.Errorf("%w: model %s: %w", ErrSkew, model, err)
	}
	defer rec.Release()
	var b features.Batch
	if err := fx.Transform(rec, &b); err != nil {
		return 0, fmt.Errorf("%w: model %s: compute the features of the reference rows: %w", ErrSkew, model, err)
	}
	var denseNames, catNames []string
	for _, f := range bu.Features.Features {
		switch f.Kind {
		case features.Numeric:
			denseNames = append(denseNames, f.Name)
		case features.Image:
		default:
			catNames = append(catNames, f.Name)
		}
	}
	if err := checkImageProbe(bu, model); err != nil {
		return 0, err
	}
	// The rows' images are not at hand: they are scored with the
	// embeddings recorded with them (the tower is checked on the probe).
	if w := bu.Arch.ImageWidth(bu.Inputs); w > 0 {
		b.ImageEmb = make([]float32, 0, n*w)
		for _, r := range bu.Reference {
			if len(r.ImageEmb) != w {
				return 0, fmt.Errorf("%w: model %s: a reference row has %d image embedding values, want %d", ErrSkew, model, len(r.ImageEmb), w)
			}
			b.ImageEmb = append(b.ImageEmb, r.ImageEmb...)
		}
	}
	for i, r := range bu.Reference {
		if len(r.Dense) != b.D || len(r.Cat) != b.K {
			return 0, fmt.Errorf("%w: model %s: reference row %d has %d dense and %d index inputs, the feature spec computes %d and %d",
				ErrSkew, model, i+1, len(r.Dense), len(r.Cat), b.D, b.K)
		}
		for j, want := range r.Dense {
			if got := b.Dense[i*b.D+j]; math.Float32bits(got) != math.Float32bits(want) {
				return 0, &SkewError{Model: model, Row: i + 1, Feature: denseNames[j], Expected: float64(want), Computed: float64(got)}
			}
		}
		for j, want := range r.Cat {
			if got := b.Cat[i*b.K+j]; got != want {
				return 0, &SkewError{Model: model, Row: i + 1, Feature: catNames[j], Index: true, Expected: float64(want), Computed: float64(got)}
			}
		}
	}
	m, err := NewModel(bu, n)
	if err != nil {
		return 0, fmt.Errorf("%w: model %s: %w", ErrSkew, model, err)
	}
	defer func() { _ = m.Close() }() // never fails
	scores := make([]float32, n)
	if err := m.Score(&b, scores); err != nil {
		return 0, fmt.Errorf("%w: model %s: score the reference rows: %w", ErrSkew, model, err)
	}
	for i, r := range bu.Reference {
		if d := math.Abs(float64(scores[i]) - float64(r.Score)); !(d <= ReferenceScoreTolerance) {
			return 0, &SkewError{Model: model, Row: i + 1, Expected: float64(r.Score), Computed: float64(scores[i])}
		}
	}
	return n, nil
}

// ProbeImage is the image the skew guard runs the image tower on: size ×
// size pixels of a fixed pattern of values in [0, 1], channel first, the
// same on every machine.
func ProbeImage(size int) []float32 {
	x := make([]float32, 3*size*size)
	for c := range 3 {
		for y := range size {
			for xx := range size {
				x[(c*size+y)*size+xx] = float32((xx*7+y*13+c*29)%17) / 16
			}
		}
	}
	return x
}

// ImageProbeTolerance is how far a recomputed probe embedding value may be
// from the recorded one, relative to 1 + |recorded|: the tower's sums run
// in another order on another kernel (see ReferenceScoreTolerance).
const ImageProbeTolerance = 1e-5

// checkImageProbe recomputes the bundle's image tower on ProbeImage and
// compares it with the recorded embedding (a model without image inputs,
// or a bundle recorded without a probe, has nothing to check).
func checkImageProbe(bu *bundle.Bundle, model string) error {
	if bu.Arch.ImageWidth(bu.Inputs) == 0 || len(bu.ImageProbe) == 0 {
		return nil
	}
	tw, err := NewTower(bu)
	if err != nil {
		return fmt.Errorf("%w: model %s: %w", ErrSkew, model, err)
	}
	got := make([]float32, tw.Dim())
	tw.Embed(ProbeImage(bu.Inputs.ImageSize), 1, got)
	for j, want := range bu.ImageProbe {
		if d := math.Abs(float64(got[j]) - float64(want)); !(d <= ImageProbeTolerance*(1+math.Abs(float64(want)))) {
			return &SkewError{Model: model, Tower: true, Value: j, Expected: float64(want), Computed: float64(got[j])}
		}
	}
	return nil
}
