package scoring

import (
	"fmt"
	"slices"
	"strings"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/scoring/bundle"
)

// An imported model (arch kind graph) is compiled from its bundle.Graph,
// ONNX nodes, into the same kind of Gorgonia graph the built-in
// architectures compile into, run by the same plan:
//
//   - Constants are folded: a node whose inputs are all constants is
//     computed once, at compile time, with the same kernels (graph_kernels.go).
//   - Shapes are static: the batch dimension is the model's batch size,
//     every other dimension is fixed. Every runtime value keeps the batch as
//     its first dimension and no operator mixes rows: a graph that would
//     (a reshape that pins the batch size, a reduction over the batch) is
//     refused, so a row's score never depends on the other rows.
//   - Reshape, Flatten, Squeeze, Unsqueeze, Identity and integer Casts are
//     views: they compute nothing.
//   - The fused inference ops: MatMul or Gemm by a constant, with the Add of
//     a constant bias and a Relu after it, is one linearOp (the packed
//     matrix kernel the built-in models use); Gathers of embedding tables
//     feeding a Concat write straight into the Concat's output (the
//     assembly gather for 16-wide rows); the final Sigmoid is the probOp
//     that checks the logits as it does for the built-in models.
//
// Everything that can be refused is refused here, when the graph is
// compiled: an unsupported operator or attribute, a shape that does not
// fit, an index that a feature's cardinality lets exceed a table. `scorer
// import onnx` compiles the graph before writing the bundle, so a bundle
// that imported compiles at every run. Errors name the node, its operator
// and the opset, and wrap bundle.ErrInvalid.

// ImportedOps are the ONNX operators an imported graph may use (default
// domain, opsets MinOpset to MaxOpset).
var ImportedOps = []string{
	"Abs", "Add", "BatchNormalization", "Cast", "Clip", "Concat", "Constant", "Div", "Dropout",
	"Elu", "Erf", "Exp", "Flatten", "Gather", "Gemm", "HardSigmoid", "Identity", "LeakyRelu",
	"Log", "MatMul", "Mul", "Neg", "Pow", "ReduceMean", "ReduceSum", "Relu", "Reshape", "Shape",
	"Sigmoid", "Slice", "Softmax", "Softplus", "Split", "Sqrt", "Squeeze", "Sub", "Tanh", "Transpose",
	"Unsqueeze",
}

// unaryOps are the element-wise operators of one float32 input.
var unaryOps = map[string]int{
	"Relu": opRelu, "Sigmoid": opSigmoid, "Tanh": opTanh, "LeakyRelu": opLeakyRelu, "Elu": opElu,
	"Softplus": opSoftplus, "Exp": opExp, "Log": opLog, "Sqrt": opSqrt, "Neg": opNeg, "Abs": opAbs,
	"Erf": opErf, "HardSigmoid": opHardSigmoid, "Clip": opClip, "Pow": opPow,
}

// The opsets an imported graph may declare.
const (
	MinOpset = 13
	MaxOpset = 21
)

// gval is a value of the graph being compiled: a constant, or a tensor of
// the batch (rt).
type gval struct {
	shape []int // static; a runtime value's shape[0] is the batch size
	isInt bool
	// A constant: float32 or int64 values.
	cf []float32
	ci []int64
	// A runtime value.
	rt *rtensor
	// Bounds of an integer runtime value, per element of a row, and the
	// feature each element comes from; nil when unknown.
	lo, hi []int64
	src    []string
	// batch marks the elements of an integer constant that are the batch
	// size (a Shape of the batch, x.size(0) in PyTorch): a Reshape may take
	// one as its first dimension. nil: none.
	batch []bool
}

func (v *gval) konst() bool { return v.rt == nil }

// rowShape is a runtime value's shape after the batch dimension.
func (v *gval) rowShape() []int { return v.shape[1:] }

// rtensor is a runtime tensor: a Gorgonia node, or an operation not yet
// built because the next node may fuse it (pending).
type rtensor struct {
	node   *gorgonia.Node
	shared bool   // read by more than one node: cannot be fused away
	by     string // the node that computed it, for messages

	pending int // pendingNone, pendingLinear, pendingGather, pendingSigmoid
	name    string
	// pendingLinear: x·W + b (b may be nil), then ReLU.
	x       *gval
	w, b    []float32
	in, out int
	rows    int
	relu    bool
	// pendingGather: rows of table (tshape[0] rows of e floats) by idx;
	// inPlace: idx is pendingColumns that the lookup may read itself.
	table   []float32
	tshape  []int
	idx     *gval
	inPlace bool
	// pendingSigmoid: sigmoid(arg).
	arg *gval
	// softmaxOf is the input of the Softmax over the last axis that
	// computed this value (a binary classifier's two class logits).
	softmaxOf *gval
	// pendingColumns: columns cols of the (batch, width) integer tensor
	// src, plus offsets (per column; nil: none).
	src     *gval
	cols    []int
	offsets []int32
}

const (
	pendingNone = iota
	pendingLinear
	pendingGather
	pendingSigmoid
	pendingColumns
)

// feed fills one graph input from the feature batch: per row, the dense
// (or index) columns cols of features.Batch, in order.
type feed struct {
	t    *tensor.Dense
	cols []int
	cat  bool
}

type graphCompiler struct {
	bu    *bundle.Bundle
	gr    *bundle.Graph
	g     *gorgonia.ExprGraph
	batch int
	vals  map[string]*gval
	uses  map[string]int
	node  bundle.Node // the node being compiled, for messages
}

// compileGraph builds the scoring network of a graph bundle for batches of
// batch rows.
func compileGraph(bu *bundle.Bundle, batch int) (*Network, error) {
	if batch < 1 {
		return nil, fmt.Errorf("build graph: batch size %d, want >= 1", batch)
	}
	gr := bu.Graph
	if gr == nil {
		return nil, fmt.Errorf("build graph: %w: a graph model needs a graph section", bundle.ErrInvalid)
	}
	if gr.Opset < MinOpset || gr.Opset > MaxOpset {
		return nil, fmt.Errorf("build graph: %w: opset %d is not supported (%d to %d)", bundle.ErrInvalid, gr.Opset, MinOpset, MaxOpset)
	}
	c := &graphCompiler{bu: bu, gr: gr, g: gorgonia.NewGraph(), batch: batch, vals: map[string]*gval{}, uses: map[string]int{}}
	net := &Network{g: c.g, batch: batch}
	for _, n := range gr.Nodes {
		if n.Op == "Shape" { // reads the static shape, not the values: fusions stay open
			continue
		}
		for _, in := range n.Inputs {
			c.uses[in]++
		}
	}
	c.uses[gr.Output.Name]++
	for name, p := range bu.Weights {
		if len(p.Shape) > maxRank {
			return nil, fmt.Errorf("build graph: %w: weight %q has rank %d, more than %d", bundle.ErrInvalid, name, len(p.Shape), maxRank)
		}
		c.vals[name] = &gval{shape: p.Shape, cf: p.Data}
	}
	for name, k := range gr.Constants {
		if len(k.Shape) > maxRank {
			return nil, fmt.Errorf("build graph: %w: constant %q has rank %d, more than %d", bundle.ErrInvalid, name, len(k.Shape), maxRank)
		}
		c.vals[name] = &gval{shape: k.Shape, isInt: true, ci: k.Values}
	}
	if err := c.inputs(net); err != nil {
		return nil, fmt.Errorf("build graph: %w", err)
	}
	for _, n := range gr.Nodes {
		c.node = n
		if err := c.compileNode(n); err != nil {
			return nil, fmt.Errorf("build graph: %w: %s: %w", bundle.ErrInvalid, n.Describe(gr.Opset), err)
		}
	}
	c.node = bundle.Node{}
	logit, err := c.logit()
	if err != nil {
		return nil, fmt.Errorf("build graph: %w: output %q: %w", bundle.ErrInvalid, gr.Output.Name, err)
	}
	if net.prob, err = gorgonia.ApplyOp(newProbOp(1, batch), logit); err != nil {
		return nil, fmt.Errorf("build graph: %w", err)
	}
	net.logit = logit
	return net, nil
}

// inputs binds each graph input to a tensor filled from the features.
func (c *graphCompiler) inputs(net *Network) error {
	dense, cat := map[string]int{}, map[string]int{}
	for _, f := range c.bu.Features.Features {
		if f.Kind == features.Numeric {
			dense[f.Name] = len(dense)
		} else {
			cat[f.Name] = len(cat)
		}
	}
	for _, in := range c.gr.Inputs {
		width := size(in.Dims)
		if len(in.Dims)+1 > maxRank {
			return fmt.Errorf("%w: input %q has rank %d, more than %d", bundle.ErrInvalid, in.Name, len(in.Dims)+1, maxRank)
		}
		if width != len(in.Features) {
			return fmt.Errorf("%w: input %q has %d values per row (dims %v) but is bound to %d features", bundle.ErrInvalid, in.Name, width, in.Dims, len(in.Features))
		}
		isInt := in.DType != bundle.Float32
		f := feed{cat: isInt}
		v := &gval{shape: append([]int{c.batch}, in.Dims...), isInt: isInt}
		for _, name := range in.Features {
			col, ok := dense[name]
			if isInt {
				col, ok = cat[name]
			}
			if !ok {
				what := "a float32 input takes numeric features"
				if isInt {
					what = "an integer input takes index features (categorical, cross, timestamp)"
				}
				return fmt.Errorf("%w: input %q (%s) is bound to feature %q: %s", bundle.ErrInvalid, in.Name, in.DType, name, what)
			}
			if isInt && col >= len(c.bu.Inputs.Cardinalities) || !isInt && col >= c.bu.Inputs.Dense {
				return fmt.Errorf("%w: inputs (dense %d, %d cardinalities) do not cover the feature spec", bundle.ErrInvalid, c.bu.Inputs.Dense, len(c.bu.Inputs.Cardinalities))
			}
			f.cols = append(f.cols, col)
			if isInt {
				v.lo = append(v.lo, 0)
				v.hi = append(v.hi, int64(c.bu.Inputs.Cardinalities[col]-1))
				v.src = append(v.src, fmt.Sprintf("feature %q", name))
			}
		}
		dt := tensor.Float32
		if isInt {
			dt = tensor.Int32
		}
		f.t = tensor.New(tensor.Of(dt), tensor.WithShape(c.batch, width))
		node := gorgonia.NewMatrix(c.g, dt, gorgonia.WithShape(c.batch, width), gorgonia.WithName("input."+in.Name), gorgonia.WithValue(f.t))
		v.rt = &rtensor{node: node}
		c.vals[in.Name] = v
		net.feeds = append(net.feeds, f)
	}
	return nil
}

// logit is the node of the graph's logit: the output, or the input of
// the Sigmoid that computes it.
func (c *graphCompiler) logit() (*gorgonia.Node, error) {
	v, ok := c.vals[c.gr.Output.Name]
	switch {
	case !ok:
		return nil, fmt.Errorf("not computed")
	case v.konst():
		return nil, fmt.Errorf("is a constant: the graph does not depend on its inputs")
	case v.isInt:
		return nil, fmt.Errorf("is an integer tensor, want float32")
	case size(v.rowShape()) == 2 && v.shape[len(v.shape)-1] == 2:
		return c.twoClassLogit(v)
	case size(v.rowShape()) != 1:
		return nil, fmt.Errorf("has shape %v: want one score per row ([batch] or [batch, 1]), or the two classes of a binary classifier ([batch, 2])", v.shape)
	}
	sigmoid := v.rt.pending == pendingSigmoid
	switch {
	case c.gr.Output.Kind == bundle.OutputProbability && !sigmoid:
		return nil, fmt.Errorf("is computed by %s, not by a Sigmoid: scorer computes the probability from the logit itself; if the output is a logit, import with --output-kind logit", v.rt.by)
	case c.gr.Output.Kind == bundle.OutputLogit && sigmoid:
		return nil, fmt.Errorf("is computed by %s: it is a probability, not a logit; import without --output-kind logit", v.rt.by)
	case sigmoid:
		v = v.rt.arg
	}
	return c.materialize(v)
}

// twoClassLogit is the logit of class 1 of a binary classifier's [batch,
// 2] output: l1 - l0 of its two logits (softmax(l)[1] = sigmoid(l1 - l0)),
// the logits being the output itself (kind logit) or the input of the
// Softmax that computes it (kind probability).
func (c *graphCompiler) twoClassLogit(v *gval) (*gorgonia.Node, error) {
	switch {
	case v.rt.pending == pendingSigmoid:
		return nil, fmt.Errorf("has two values a row computed by %s: two independent probabilities, not a binary classifier's two classes", v.rt.by)
	case c.gr.Output.Kind == bundle.OutputProbability && v.rt.softmaxOf == nil:
		return nil, fmt.Errorf("has two values a row, computed by %s, not by a Softmax over them: if they are logits, import with --output-kind logit", v.rt.by)
	case c.gr.Output.Kind == bundle.OutputLogit && v.rt.softmaxOf != nil:
		return nil, fmt.Errorf("is computed by %s: probabilities, not logits; import without --output-kind logit", v.rt.by)
	case v.rt.softmaxOf != nil:
		v = v.rt.softmaxOf
	}
	out, err := c.runtimeOp(bundle.Node{Op: "Sub", Name: "class 1 - class 0"}, []*gval{v}, []int{c.batch, 1}, false, func(in []*tensor.Dense, out *tensor.Dense) error {
		x, z := in[0].Float32s(), out.Float32s()
		for r := range z {
			z[r] = x[2*r+1] - x[2*r]
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out.rt.node, nil
}

func (c *graphCompiler) in(n bundle.Node, i int) (*gval, error) {
	if i >= len(n.Inputs) || n.Inputs[i] == "" {
		return nil, fmt.Errorf("input %d is missing", i)
	}
	v, ok := c.vals[n.Inputs[i]]
	if !ok {
		return nil, fmt.Errorf("input %q is not defined", n.Inputs[i])
	}
	return v, nil
}

// in2 are the node's first two inputs.
func (c *graphCompiler) in2(n bundle.Node) (*gval, *gval, error) {
	a, err := c.in(n, 0)
	if err != nil {
		return nil, nil, err
	}
	b, err := c.in(n, 1)
	if err != nil {
		return nil, nil, err
	}
	return a, b, nil
}

// optIn is input i, or nil when the node does not give it.
func (c *graphCompiler) optIn(n bundle.Node, i int) (*gval, error) {
	if i >= len(n.Inputs) || n.Inputs[i] == "" {
		return nil, nil
	}
	return c.in(n, i)
}

func (c *graphCompiler) set(n bundle.Node, v *gval) error {
	if len(n.Outputs) != 1 {
		return fmt.Errorf("has %d outputs, want 1", len(n.Outputs))
	}
	if len(v.shape) > maxRank {
		return fmt.Errorf("its output has rank %d, more than %d", len(v.shape), maxRank)
	}
	if !v.konst() && (len(v.shape) == 0 || v.shape[0] != c.batch) {
		return fmt.Errorf("its output has shape %v for a batch of %d rows: the batch must stay the first dimension (rows must not mix); a reshape to a fixed batch size, or an operation along the batch dimension, cannot be compiled", v.shape, c.batch)
	}
	if !v.konst() && size(v.shape[1:]) == 0 {
		return fmt.Errorf("its output has shape %v: no values per row", v.shape)
	}
	if !v.konst() && v.rt.by == "" {
		v.rt.by = n.Describe(c.gr.Opset)
	}
	c.vals[n.Outputs[0]] = v
	return nil
}

// fusible reports whether the runtime value read as node input i may be
// fused into the node: nothing else reads it.
func (c *graphCompiler) fusible(n bundle.Node, i int, v *gval) bool {
	return !v.konst() && !v.rt.shared && c.uses[n.Inputs[i]] == 1
}

// view is v with another shape (same data): Reshape and its kin.
func (c *graphCompiler) view(n bundle.Node, v *gval, shape []int) error {
	if size(shape) != size(v.shape) {
		return fmt.Errorf("cannot view %v (%d values) as %v", v.shape, size(v.shape), shape)
	}
	out := *v
	out.shape = shape
	if !v.konst() && c.uses[n.Inputs[0]] > 1 {
		v.rt.shared = true
	}
	return c.set(n, &out)
}

func (c *graphCompiler) compileNode(n bundle.Node) error {
	if !slices.Contains(ImportedOps, n.Op) {
		return fmt.Errorf("operator %s is not supported (supported: %s)", n.Op, strings.Join(ImportedOps, ", "))
	}
	for i, in := range n.Inputs {
		if v := c.vals[in]; v != nil && slices.Contains(v.batch, true) && !keepsBatchMarks(n, i) {
			return fmt.Errorf("uses the batch size (read by Shape) as a value: its scores would depend on how many rows are scored at once; only a Reshape's first dimension may be the batch size")
		}
	}
	if _, ok := unaryOps[n.Op]; ok {
		return c.unary(n)
	}
	switch n.Op {
	case "Constant":
		return c.constant(n)
	case "Identity":
		x, err := c.in(n, 0)
		if err != nil {
			return err
		}
		return c.view(n, x, x.shape)
	case "Dropout":
		return c.dropout(n)
	case "Shape":
		return c.shapeOf(n)
	case "BatchNormalization":
		return c.batchNorm(n)
	case "Reshape":
		return c.reshape(n)
	case "Flatten":
		return c.flatten(n)
	case "Squeeze", "Unsqueeze":
		return c.squeeze(n)
	case "Cast":
		return c.cast(n)
	case "Add", "Sub", "Mul", "Div":
		return c.binary(n)
	case "Softmax":
		return c.softmax(n)
	case "Slice":
		return c.slice(n)
	case "Split":
		return c.split(n)
	case "Transpose":
		return c.transpose(n)
	case "Gather":
		return c.gather(n)
	case "Concat":
		return c.concat(n)
	case "MatMul", "Gemm":
		return c.matmul(n)
	default: // "ReduceSum", "ReduceMean"
		return c.reduce(n)
	}
}

// ONNX TensorProto data types scorer computes with.
const (
	onnxFloat = 1
	onnxInt32 = 6
	onnxInt64 = 7
)

// runtimeOp adds a graphOp over the runtime values ins (materialized) with
// an output of the given shape and type.
func (c *graphCompiler) runtimeOp(n bundle.Node, ins []*gval, shape []int, isInt bool, run func(in []*tensor.Dense, out *tensor.Dense) error) (*gval, error) {
	if len(shape) == 0 || shape[0] != c.batch {
		return nil, fmt.Errorf("its output has shape %v for a batch of %d rows: the batch must stay the first dimension (rows must not mix)", shape, c.batch)
	}
	children := make([]*gorgonia.Node, len(ins))
	dts := make([]tensor.Dtype, len(ins))
	for i, v := range ins {
		node, err := c.materialize(v)
		if err != nil {
			return nil, err
		}
		children[i] = node
		dts[i] = tensor.Float32
		if v.isInt {
			dts[i] = tensor.Int32
		}
	}
	dt := tensor.Float32
	if isInt {
		dt = tensor.Int32
	}
	name := fmt.Sprintf("%s{%s}", n.Op, n.Name)
	op := newGraphOp(name, dts, dt, c.batch, size(shape[1:]), run)
	node, err := gorgonia.ApplyOp(op, children...)
	if err != nil {
		return nil, err
	}
	return &gval{shape: shape, isInt: isInt, rt: &rtensor{node: node}}, nil
}

// materialize builds the Gorgonia node of a runtime value.
func (c *graphCompiler) materialize(v *gval) (*gorgonia.Node, error) {
	r := v.rt
	if r.node != nil {
		return r.node, nil
	}
	var err error
	switch r.pending {
	case pendingLinear:
		x, xerr := c.materialize(r.x)
		if xerr != nil {
			return nil, xerr
		}
		w := tensor.New(tensor.WithShape(r.in, r.out), tensor.WithBacking(r.w))
		b := r.b
		if b == nil {
			b = make([]float32, r.out)
		}
		bt := tensor.New(tensor.WithShape(1, r.out), tensor.WithBacking(b))
		wn := gorgonia.NewMatrix(c.g, tensor.Float32, gorgonia.WithShape(r.in, r.out), gorgonia.WithName(r.name+".W"), gorgonia.WithValue(w))
		bn := gorgonia.NewMatrix(c.g, tensor.Float32, gorgonia.WithShape(1, r.out), gorgonia.WithName(r.name+".b"), gorgonia.WithValue(bt))
		r.node, err = gorgonia.ApplyOp(newLinearOp(r.name, r.in, r.out, r.rows, r.relu), x, wn, bn)
	case pendingGather:
		table, tshape := r.table, r.tshape
		var out *gval
		out, err = c.runtimeOp(bundle.Node{Op: "Gather", Name: r.name}, []*gval{r.idx}, v.shape, false, func(in []*tensor.Dense, out *tensor.Dense) error {
			return rowError(gatherK(out.Float32s(), table, tshape, 0, in[0].Int32s()), size(r.idx.rowShape()))
		})
		if err == nil {
			r.node = out.rt.node
		}
	case pendingColumns:
		var out *gval
		src, cols, offsets := r.src, r.cols, r.offsets
		out, err = c.runtimeOp(bundle.Node{Op: "Gather", Name: r.name}, []*gval{src}, v.shape, true, func(in []*tensor.Dense, out *tensor.Dense) error {
			pickColumns(out.Int32s(), in[0].Int32s(), size(src.rowShape()), cols, offsets, 0, c.batch)
			return nil
		})
		if err == nil {
			r.node = out.rt.node
		}
	case pendingSigmoid:
		var out *gval
		out, err = c.runtimeOp(bundle.Node{Op: "Sigmoid", Name: r.name}, []*gval{r.arg}, v.shape, false, func(in []*tensor.Dense, out *tensor.Dense) error {
			unaryK(opSigmoid, out.Float32s(), in[0].Float32s(), 0, 0)
			return nil
		})
		if err == nil {
			r.node = out.rt.node
		}
	default:
		return nil, fmt.Errorf("runtime value has no node")
	}
	if err != nil {
		return nil, err
	}
	r.pending = pendingNone
	return r.node, nil
}
