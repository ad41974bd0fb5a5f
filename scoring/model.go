package scoring

import (
	"errors"
	"fmt"
	"math"

	"gorgonia.org/gorgonia"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/kernels"
)

// ErrInput marks a batch that does not fit the model: other widths than the
// bundle's inputs, or a categorical index outside its cardinality. Test with
// errors.Is.
var ErrInput = errors.New("input does not fit the model")

// ErrModel marks a score that a model may not publish although its inputs
// are finite: a logit that is not a finite number, or beyond the limit set
// with WithMaxAbsLogit. The bundle (its weights or feature statistics) is
// at fault. Errors wrapping it are *LogitError. Test with errors.Is.
var ErrModel = errors.New("model gives an unusable score")

// LogitError is a logit that Score refused: not finite, or beyond the
// limit on its magnitude. It wraps ErrModel, or ErrInput when the row's
// model inputs were not all finite (the input, not the model, is then at
// fault).
type LogitError struct {
	// Row is the row of the batch given to Score; Run reports the row of
	// the input record and sets IDs.
	Row int
	// IDs are the row's id columns, as name="value" pairs, where known.
	IDs   string
	Logit float32
	// MaxAbs is the limit on |logit| (WithMaxAbsLogit), 0 if none.
	MaxAbs float64
	// Input: the row's model inputs were not all finite.
	Input bool
}

func (e *LogitError) Error() string {
	where := fmt.Sprintf("row %d", e.Row)
	if e.IDs != "" {
		where = fmt.Sprintf("row %s (row %d of its batch)", e.IDs, e.Row)
	}
	what := fmt.Sprintf("logit %g is not finite", e.Logit)
	if !math.IsNaN(float64(e.Logit)) && !math.IsInf(float64(e.Logit), 0) {
		what = fmt.Sprintf("logit %g is beyond ±%g (max_abs_logit)", e.Logit, e.MaxAbs)
	}
	cause := "its model inputs are finite, so the model (weights or feature statistics) is at fault"
	if e.Input {
		cause = "its model inputs are not all finite, so the input is at fault"
	}
	return fmt.Sprintf("%v: %s: %s; %s", e.Unwrap(), where, what, cause)
}

// Unwrap is ErrInput if the inputs were at fault, ErrModel otherwise.
func (e *LogitError) Unwrap() error {
	if e.Input {
		return ErrInput
	}
	return ErrModel
}

// RowError is a row that an imported graph cannot score although it fits
// the model's inputs: an index the graph computes beyond its table, an
// integer division by zero. It wraps ErrInput: the row's values are at
// fault.
type RowError struct {
	// Row is the row of the batch given to Score; Run reports the row of
	// the input record and sets IDs.
	Row int
	IDs string
	Err error
}

func (e *RowError) Error() string {
	where := fmt.Sprintf("row %d", e.Row)
	if e.IDs != "" {
		where = fmt.Sprintf("row %s (row %d of its batch)", e.IDs, e.Row)
	}
	return fmt.Sprintf("%v: %s: %v", ErrInput, where, e.Err)
}

func (e *RowError) Unwrap() []error { return []error{ErrInput, e.Err} }

// ModelOption configures NewModel.
type ModelOption func(*Model)

// WithMaxAbsLogit makes Score refuse a logit whose magnitude is above
// limit (an absurd model: a poisoned bias, weights blown up in training)
// with a *LogitError wrapping ErrModel. 0 (the default) sets no limit;
// logits that are not finite are refused either way.
func WithMaxAbsLogit(limit float64) ModelOption {
	return func(m *Model) {
		m.maxAbs = limit
		m.logitLimit = math.MaxFloat32
		if limit > 0 && limit < math.MaxFloat32 {
			m.logitLimit = float32(limit)
		}
	}
}

// Model is a bundle compiled into a Gorgonia graph for a fixed batch size,
// with the buffers of one forward pass. A Model is not safe for concurrent
// use: give each worker its own (they may share one bundle.Bundle).
type Model struct {
	net    *Network
	plan   *plan          // nil once closed
	prob   *gorgonia.Node // (B, 1) sigmoid of the logit
	inputs bundle.Inputs
	// imageWidth is I·E, the image embeddings of a row (Batch.ImageEmb).
	imageWidth int
	// index offsets and checks the categorical indices (fill).
	index   *kernels.Offsets
	catName []string // names of the categorical columns, where known
	probOp  *probOp  // computes prob; holds the logits of the last run
	// logitLimit bounds |logit| (math.MaxFloat32: only finite); maxAbs is
	// the limit as set, for messages.
	logitLimit float32
	maxAbs     float64
}

// NewModel validates the bundle and compiles it for batches of up to
// batchSize rows. The model shares the bundle's weight data, read-only.
func NewModel(bu *bundle.Bundle, batchSize int, opts ...ModelOption) (*Model, error) {
	if err := bu.Validate(); err != nil {
		return nil, fmt.Errorf("new model: %w", err)
	}
	return compileModel(bu, batchSize, opts...)
}

// compileModel is NewModel for a bundle already validated (Validate reads
// every weight: Run does it once, not once per worker).
func compileModel(bu *bundle.Bundle, batchSize int, opts ...ModelOption) (*Model, error) {
	if batchSize < 1 {
		return nil, fmt.Errorf("new model: batch size %d, want >= 1", batchSize)
	}
	var net *Network
	var err error
	if bu.Arch.Kind == bundle.GraphKind {
		net, err = compileGraph(bu, batchSize)
	} else {
		// The image embeddings are dense inputs after the numeric ones
		// (Batch.ImageEmb, filled by the image stage).
		in := bu.Inputs
		in.Dense += bu.Arch.ImageWidth(in)
		in.Images, in.ImageSize = 0, 0
		net, err = buildScoringNetwork(bu.Arch, in, bu.Weights, batchSize)
	}
	if err != nil {
		return nil, fmt.Errorf("new model: %w", err)
	}
	po, ok := net.prob.Op().(*probOp)
	if !ok {
		return nil, fmt.Errorf("new model: output op is %T, want a sigmoid", net.prob.Op())
	}
	m := &Model{
		net:        net,
		prob:       net.prob,
		imageWidth: bu.Arch.ImageWidth(bu.Inputs),
		catName:    categoricalNames(bu),
		probOp:     po,
		logitLimit: math.MaxFloat32,
	}
	for _, o := range opts {
		o(m)
	}
	m.indexInputs(bu.Inputs)
	if m.plan, err = compilePlan(net.g); err != nil {
		return nil, fmt.Errorf("new model: %w", err)
	}
	return m, nil
}

// indexInputs sets the offsets of the categorical columns and the kernel
// that applies and checks them.
func (m *Model) indexInputs(in bundle.Inputs) {
	m.inputs = in
	var off []int32
	var card []uint32
	for i, o := range in.Offsets() {
		off = append(off, int32(o))
		card = append(card, uint32(in.Cardinalities[i]))
	}
	m.index = kernels.NewOffsets(off, card)
}

// categoricalNames are the names of the spec's non-numeric features, in
// order, if the spec matches the inputs; nil otherwise.
func categoricalNames(bu *bundle.Bundle) []string {
	var names []string
	for _, f := range bu.Features.Features {
		if f.Kind != features.Numeric && f.Kind != features.Image {
			names = append(names, f.Name)
		}
	}
	if len(names) != bu.Inputs.K() {
		return nil
	}
	return names
}

// BatchSize is the number of rows the graph computes at once.
func (m *Model) BatchSize() int { return m.net.batch }

// Inputs are the input widths the model expects.
func (m *Model) Inputs() bundle.Inputs { return m.inputs }

// Score writes the click probabilities of b's N rows to out[:N]. Any N is
// accepted: batches are padded or split to the model's batch size, and a
// row's score does not depend on the other rows. It returns an error
// wrapping ErrInput if b does not fit the model (out's contents are then
// unspecified), and a *LogitError if a row's logit is not finite or beyond
// the model's limit (WithMaxAbsLogit). Scores are in (0, 1).
func (m *Model) Score(b *features.Batch, out []float32) error {
	if m.plan == nil {
		return errors.New("score: model is closed")
	}
	if err := m.check(b); err != nil {
		return fmt.Errorf("score: %w", err)
	}
	if len(out) < b.N {
		return fmt.Errorf("score: output has room for %d scores, batch has %d rows", len(out), b.N)
	}
	for start := 0; start < b.N; start += m.net.batch {
		end := min(start+m.net.batch, b.N)
		if err := m.fill(b, start, end); err != nil {
			return fmt.Errorf("score: %w", err)
		}
		v, err := m.plan.run()
		if err == nil {
			err = read(v, out[start:end])
		}
		if err != nil {
			if re := (*RowError)(nil); errors.As(err, &re) {
				re.Row += start
				return err
			}
			return fmt.Errorf("score: run graph: %w", err)
		}
		if r := firstBadLogit(m.probOp.z[:end-start], m.logitLimit); r >= 0 {
			return m.logitError(b, start+r, m.probOp.z[r]) // says what it is
		}
	}
	return nil
}

// firstBadLogit is the first row whose logit is not within [-limit, limit],
// NaN included (every comparison with NaN is false), or -1. One pass over
// the batch's logits: nothing next to the layers that computed them.
func firstBadLogit(z []float32, limit float32) int {
	for r, v := range z {
		if !(v >= -limit && v <= limit) {
			return r
		}
	}
	return -1
}

// logitError describes row's refused logit, judging from the row's dense
// inputs whether the input or the model is at fault (categorical inputs
// are indices, checked in fill).
func (m *Model) logitError(b *features.Batch, row int, z float32) *LogitError {
	e := &LogitError{Row: row, Logit: z, MaxAbs: m.maxAbs}
	for _, x := range b.Dense[row*b.D : (row+1)*b.D] {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			e.Input = true
		}
	}
	return e
}

func (m *Model) check(b *features.Batch) error {
	d, k := m.inputs.Dense, m.inputs.K()
	switch {
	case b == nil:
		return fmt.Errorf("%w: nil batch", ErrInput)
	case b.N < 0:
		return fmt.Errorf("%w: batch has %d rows", ErrInput, b.N)
	case b.D != d:
		return fmt.Errorf("%w: batch has %d dense features, model has %d", ErrInput, b.D, d)
	case b.K != k:
		return fmt.Errorf("%w: batch has %d categorical features, model has %d", ErrInput, b.K, k)
	case len(b.Dense) != b.N*d:
		return fmt.Errorf("%w: batch has %d dense values, want %d rows × %d", ErrInput, len(b.Dense), b.N, d)
	case len(b.Cat) != b.N*k:
		return fmt.Errorf("%w: batch has %d categorical values, want %d rows × %d", ErrInput, len(b.Cat), b.N, k)
	case len(b.ImageEmb) != b.N*m.imageWidth && m.imageWidth > 0:
		return fmt.Errorf("%w: batch has %d image embedding values, want %d rows × %d (image stage not run?)", ErrInput, len(b.ImageEmb), b.N, m.imageWidth)
	}
	return nil
}

// fill copies rows [start, end) of b into the input tensors, padding the
// rest with zeros (index 0 is valid for every column), and checks the
// categorical indices on the way.
func (m *Model) fill(b *features.Batch, start, end int) error {
	n := end - start
	if m.net.feeds != nil {
		return m.fillFeeds(b, start, end)
	}
	if m.net.denseT != nil && m.imageWidth > 0 {
		d, iw := b.D, m.imageWidth
		w := d + iw
		dst := m.net.denseT.Float32s()
		for r := range n {
			copy(dst[r*w:r*w+d], b.Dense[(start+r)*d:(start+r+1)*d])
			copy(dst[r*w+d:(r+1)*w], b.ImageEmb[(start+r)*iw:(start+r+1)*iw])
		}
		clear(dst[n*w:])
	} else if m.net.denseT != nil {
		dst := m.net.denseT.Float32s()
		copy(dst, b.Dense[start*b.D:end*b.D])
		clear(dst[n*b.D:])
	}
	if m.net.catT != nil {
		k := b.K
		dst := m.net.catT.Int32s()
		if at := m.index.Apply(dst[:n*k], b.Cat[start*k:end*k]); at >= 0 {
			return m.indexError(start+at/k, at%k, b.Cat[start*k+at])
		}
		m.index.Zero(dst[n*k:]) // padding rows: index 0 in every column
	}
	return nil
}

// fillFeeds is fill for an imported graph: each input's columns, gathered
// from the dense or index features; padding rows are zeros.
func (m *Model) fillFeeds(b *features.Batch, start, end int) error {
	n := end - start
	for _, f := range m.net.feeds {
		w := len(f.cols)
		if !f.cat {
			dst := f.t.Float32s()
			for r := range n {
				row := b.Dense[(start+r)*b.D : (start+r+1)*b.D]
				for j, c := range f.cols {
					dst[r*w+j] = row[c]
				}
			}
			clear(dst[n*w:])
			continue
		}
		dst := f.t.Int32s()
		for r := range n {
			row := b.Cat[(start+r)*b.K : (start+r+1)*b.K]
			for j, c := range f.cols {
				v := row[c]
				if v < 0 || int(v) >= m.inputs.Cardinalities[c] {
					return m.indexError(start+r, c, v)
				}
				dst[r*w+j] = v
			}
		}
		clear(dst[n*w:])
	}
	return nil
}

func (m *Model) indexError(row, col int, v int32) error {
	name := ""
	if m.catName != nil {
		name = fmt.Sprintf(" (%q)", m.catName[col])
	}
	return fmt.Errorf("%w: row %d: categorical feature %d%s: index %d out of range [0, %d)",
		ErrInput, row, col, name, v, m.inputs.Cardinalities[col])
}

// read copies the first len(out) probabilities of the graph's output.
func read(v gorgonia.Value, out []float32) error {
	t, err := denseOf(v)
	if err != nil {
		return fmt.Errorf("output: %w", err)
	}
	copy(out, t.Float32s()[:len(out)])
	return nil
}

// Close releases the model's buffers. The model cannot score afterwards.
func (m *Model) Close() error {
	m.plan = nil
	return nil
}
