package scoring

import (
	"errors"
	"fmt"

	"gorgonia.org/gorgonia"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/scoring/bundle"
)

// ErrInput marks a batch that does not fit the model: other widths than the
// bundle's inputs, or a categorical index outside its cardinality. Test with
// errors.Is.
var ErrInput = errors.New("input does not fit the model")

// Model is a bundle compiled into a Gorgonia graph for a fixed batch size,
// with the buffers of one forward pass. A Model is not safe for concurrent
// use: give each worker its own (they may share one bundle.Bundle).
type Model struct {
	net     *Network
	plan    *plan          // nil once closed
	prob    *gorgonia.Node // (B, 1) sigmoid of the logit
	inputs  bundle.Inputs
	offsets []int32
	catName []string // names of the categorical columns, where known
}

// NewModel validates the bundle and compiles it for batches of up to
// batchSize rows. The model shares the bundle's weight data, read-only.
func NewModel(bu *bundle.Bundle, batchSize int) (*Model, error) {
	if err := bu.Validate(); err != nil {
		return nil, fmt.Errorf("new model: %w", err)
	}
	if batchSize < 1 {
		return nil, fmt.Errorf("new model: batch size %d, want >= 1", batchSize)
	}
	net, err := buildScoringNetwork(bu.Arch, bu.Inputs, bu.Weights, batchSize)
	if err != nil {
		return nil, fmt.Errorf("new model: %w", err)
	}
	m := &Model{
		net:     net,
		prob:    net.prob,
		inputs:  bu.Inputs,
		catName: categoricalNames(bu),
	}
	for _, o := range bu.Inputs.Offsets() {
		m.offsets = append(m.offsets, int32(o))
	}
	if m.plan, err = compilePlan(net.g); err != nil {
		return nil, fmt.Errorf("new model: %w", err)
	}
	return m, nil
}

// categoricalNames are the names of the spec's non-numeric features, in
// order, if the spec matches the inputs; nil otherwise.
func categoricalNames(bu *bundle.Bundle) []string {
	var names []string
	for _, f := range bu.Features.Features {
		if f.Kind != features.Numeric {
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
// unspecified).
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
			return fmt.Errorf("score: run graph: %w", err)
		}
	}
	return nil
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
	}
	return nil
}

// fill copies rows [start, end) of b into the input tensors, padding the
// rest with zeros (index 0 is valid for every column), and checks the
// categorical indices on the way.
func (m *Model) fill(b *features.Batch, start, end int) error {
	n := end - start
	if m.net.denseT != nil {
		dst := m.net.denseT.Float32s()
		copy(dst, b.Dense[start*b.D:end*b.D])
		clear(dst[n*b.D:])
	}
	if m.net.catT != nil {
		k := b.K
		dst := m.net.catT.Int32s()
		for r := 0; r < n; r++ {
			row := b.Cat[(start+r)*k : (start+r+1)*k]
			for c, v := range row {
				if v < 0 || int(v) >= m.inputs.Cardinalities[c] {
					return m.indexError(start+r, c, v)
				}
				dst[r*k+c] = m.offsets[c] + v
			}
		}
		pad := dst[n*k:]
		for i := range pad {
			pad[i] = m.offsets[i%k]
		}
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
