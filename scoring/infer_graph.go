package scoring

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/adtech/scorer/scoring/bundle"
)

// buildScoringNetwork builds the forward graph that a Model runs: the same
// architecture and weights as buildNetwork (which training differentiates),
// expressed with the fused inference ops of infer_ops.go:
//
//	deep:  x = DeepInput(deep.emb, cat, dense)            one (B, K·E+D) buffer
//	       h = Linear+ReLU(h, deep.l{i}.w, deep.l{i}.b)    per hidden layer
//	       z = Linear(h, deep.out.w, deep.out.b)
//	wide:  z = Wide(wide.emb, cat, wide.dense, dense, wide.bias)
//	prob = SigmoidSum(z_wide, z_deep)
//
// Every op writes into a buffer it owns, so running the graph allocates no
// tensors. The returned Network's prob is the (B, 1) probability node; it
// has no params (nothing is trained through it).
func buildScoringNetwork(a bundle.Architecture, in bundle.Inputs, weights map[string]*bundle.Param, batch int) (*Network, error) {
	if batch < 1 {
		return nil, fmt.Errorf("build graph: batch size %d, want >= 1", batch)
	}
	g := gorgonia.NewGraph()
	n := &Network{g: g, batch: batch}
	k, d, v := in.K(), in.Dense, in.TotalCardinality()

	if d > 0 {
		n.denseT = tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(batch, d))
		n.dense = gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(batch, d), gorgonia.WithName("input.dense"), gorgonia.WithValue(n.denseT))
	}
	if k > 0 {
		n.catT = tensor.New(tensor.Of(tensor.Int32), tensor.WithShape(batch, k))
		n.cat = gorgonia.NewMatrix(g, tensor.Int32, gorgonia.WithShape(batch, k), gorgonia.WithName("input.cat"), gorgonia.WithValue(n.catT))
	}
	// param is a weight as a (rows, cols) matrix node over its data.
	param := func(name string, rows, cols int) *gorgonia.Node {
		t := tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(weights[name].Data))
		return gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(rows, cols), gorgonia.WithName(name), gorgonia.WithValue(t))
	}
	apply := func(op gorgonia.Op, children ...*gorgonia.Node) (*gorgonia.Node, error) {
		node, err := gorgonia.ApplyOp(op, children...)
		if err != nil {
			return nil, fmt.Errorf("build graph: %v: %w", op, err)
		}
		return node, nil
	}

	var logits []*gorgonia.Node
	if a.HasWide() {
		var children []*gorgonia.Node
		if k > 0 {
			children = append(children, param("wide.emb", v, 1), n.cat)
		}
		if d > 0 {
			children = append(children, param("wide.dense", d, 1), n.dense)
		}
		children = append(children, param("wide.bias", 1, 1))
		z, err := apply(newWideOp(v, k, d, batch), children...)
		if err != nil {
			return nil, err
		}
		logits = append(logits, z)
	}
	if a.HasDeep() {
		e := a.EmbeddingDim
		h := n.dense
		if k > 0 {
			children := []*gorgonia.Node{param("deep.emb", v, e), n.cat}
			if d > 0 {
				children = append(children, n.dense)
			}
			var err error
			if h, err = apply(newDeepInputOp(v, k, e, d, batch), children...); err != nil {
				return nil, err
			}
		}
		width := k*e + d
		widths := append(append([]int(nil), a.Hidden...), 1)
		for i, out := range widths {
			wName, bName, relu := fmt.Sprintf("deep.l%d.w", i), fmt.Sprintf("deep.l%d.b", i), true
			if i == len(widths)-1 {
				wName, bName, relu = "deep.out.w", "deep.out.b", false
			}
			var err error
			h, err = apply(newLinearOp(wName, width, out, batch, relu), h, param(wName, width, out), param(bName, 1, out))
			if err != nil {
				return nil, err
			}
			width = out
		}
		logits = append(logits, h)
	}
	if len(logits) == 0 {
		return nil, fmt.Errorf("build graph: %w: unknown architecture kind %q", bundle.ErrInvalid, a.Kind)
	}
	var err error
	if n.prob, err = apply(newProbOp(len(logits), batch), logits...); err != nil {
		return nil, err
	}
	n.logit = logits[0]
	return n, nil
}
