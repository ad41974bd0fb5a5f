package scoring

import (
	"errors"
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// embedOp is a Gorgonia op that gathers rows of an embedding table by index,
// with a gradient (gorgonia's own ByIndices has none that works).
//
// Inputs: a table T of shape (V, E), float32 or float64, and indices I of
// shape (B, K), int32, each in [0, V). Output: O of shape (B, K·E) with
//
//	O[b, k·E+e] = T[I[b,k], e]
//
// so the K looked-up rows of one input row lie side by side. The gradient
// with respect to T is embedGradOp, a scatter-add of the output gradient into
// a zero table; the indices get no gradient. embedOp supports symbolic
// differentiation (SDOp, for gorgonia.Grad and the tape machine) and
// automatic differentiation (ADOp, for the lisp machine).
type embedOp struct {
	rows, dim int // V, E
}

// embed applies embedOp to a (V, E) table node and a (B, K) int32 index node.
func embed(table, idx *gorgonia.Node) (*gorgonia.Node, error) {
	ts := table.Shape()
	if len(ts) != 2 {
		return nil, fmt.Errorf("embed: table has shape %v, want (rows, dim)", ts)
	}
	n, err := gorgonia.ApplyOp(embedOp{rows: ts[0], dim: ts[1]}, table, idx)
	if err != nil {
		return nil, fmt.Errorf("embed %s: %w", table.Name(), err)
	}
	return n, nil
}

var (
	_ gorgonia.Op              = embedOp{}
	_ gorgonia.SDOp            = embedOp{}
	_ gorgonia.ADOp            = embedOp{}
	_ gorgonia.UsePreallocDoer = embedOp{}
	_ gorgonia.Op              = embedGradOp{}
	_ gorgonia.UsePreallocDoer = embedGradOp{}
)

func (op embedOp) Arity() int { return 2 }

// Type is Tensor-2 a → Tensor-2 int32 → Tensor-2 a.
func (op embedOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(
		gorgonia.TensorType{Dims: 2, Of: a},
		gorgonia.TensorType{Dims: 2, Of: tensor.Int32},
		gorgonia.TensorType{Dims: 2, Of: a},
	)
}

func (op embedOp) InferShape(in ...gorgonia.DimSizer) (tensor.Shape, error) {
	if len(in) != 2 {
		return nil, fmt.Errorf("%v: %d inputs, want 2", op, len(in))
	}
	ts, ok1 := in[0].(tensor.Shape)
	is, ok2 := in[1].(tensor.Shape)
	if !ok1 || !ok2 || len(ts) != 2 || len(is) != 2 {
		return nil, fmt.Errorf("%v: inputs of shapes %v and %v, want (rows, dim) and (batch, k)", op, in[0], in[1])
	}
	if ts[0] != op.rows || ts[1] != op.dim {
		return nil, fmt.Errorf("%v: table has shape %v", op, ts)
	}
	return tensor.Shape{is[0], is[1] * op.dim}, nil
}

func (op embedOp) Do(in ...gorgonia.Value) (gorgonia.Value, error) {
	table, idx, err := op.inputs(in)
	if err != nil {
		return nil, err
	}
	b, k := idx.Shape()[0], idx.Shape()[1]
	out := tensor.New(tensor.Of(table.Dtype()), tensor.WithShape(b, k*op.dim))
	return out, op.gather(out, table, idx)
}

func (op embedOp) UsePreallocDo(prealloc gorgonia.Value, in ...gorgonia.Value) (gorgonia.Value, error) {
	table, idx, err := op.inputs(in)
	if err != nil {
		return nil, err
	}
	out, ok := prealloc.(*tensor.Dense)
	b, k := idx.Shape()[0], idx.Shape()[1]
	if !ok || out.Dtype() != table.Dtype() || !out.Shape().Eq(tensor.Shape{b, k * op.dim}) || out.RequiresIterator() {
		return nil, fmt.Errorf("%v: unusable preallocated value %v", op, prealloc.Shape())
	}
	return out, op.gather(out, table, idx)
}

func (op embedOp) inputs(in []gorgonia.Value) (table, idx *tensor.Dense, err error) {
	if len(in) != 2 {
		return nil, nil, fmt.Errorf("%v: %d inputs, want 2", op, len(in))
	}
	if table, err = denseOf(in[0]); err != nil {
		return nil, nil, fmt.Errorf("%v: table: %w", op, err)
	}
	if idx, err = denseOf(in[1]); err != nil {
		return nil, nil, fmt.Errorf("%v: indices: %w", op, err)
	}
	if !table.Shape().Eq(tensor.Shape{op.rows, op.dim}) {
		return nil, nil, fmt.Errorf("%v: table has shape %v", op, table.Shape())
	}
	if idx.Dtype() != tensor.Int32 || idx.Dims() != 2 {
		return nil, nil, fmt.Errorf("%v: indices are %v %v, want a (batch, k) int32 matrix", op, idx.Dtype(), idx.Shape())
	}
	return table, idx, nil
}

func (op embedOp) gather(out, table, idx *tensor.Dense) error {
	switch table.Dtype() {
	case tensor.Float32:
		return gather(out.Float32s(), table.Float32s(), idx.Int32s(), op.rows, op.dim)
	case tensor.Float64:
		return gather(out.Float64s(), table.Float64s(), idx.Int32s(), op.rows, op.dim)
	default:
		return fmt.Errorf("%v: unsupported dtype %v", op, table.Dtype())
	}
}

func gather[T float32 | float64](out, table []T, idx []int32, rows, dim int) error {
	for j, i := range idx {
		if i < 0 || int(i) >= rows {
			return fmt.Errorf("embed: index %d out of range [0, %d)", i, rows)
		}
		copy(out[j*dim:(j+1)*dim], table[int(i)*dim:(int(i)+1)*dim])
	}
	return nil
}

func (op embedOp) ReturnsPtr() bool     { return false }
func (op embedOp) CallsExtern() bool    { return false }
func (op embedOp) OverwritesInput() int { return -1 }
func (op embedOp) String() string       { return fmt.Sprintf("Embed{%d×%d}", op.rows, op.dim) }

func (op embedOp) WriteHash(h hash.Hash) { _, _ = fmt.Fprint(h, op.String()) }

func (op embedOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

// DiffWRT: differentiable with respect to the table, not the indices.
func (op embedOp) DiffWRT(inputs int) []bool {
	if inputs != 2 {
		// The interface leaves no way to return an error; gorgonia only
		// asks with the op's arity.
		return make([]bool, inputs)
	}
	return []bool{true, false}
}

// SymDiff returns the table's gradient node, scatter-add(indices, grad).
func (op embedOp) SymDiff(inputs gorgonia.Nodes, _, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("%v: symdiff of %d inputs, want 2", op, len(inputs))
	}
	d, err := gorgonia.ApplyOp(embedGradOp{rows: op.rows, dim: op.dim, last: new(lastGrad)}, inputs[1], grad)
	if err != nil {
		return nil, fmt.Errorf("%v: symdiff: %w", op, err)
	}
	return gorgonia.Nodes{d, nil}, nil
}

// DoDiff adds the output's gradient, scattered by index, to the table's
// gradient (automatic differentiation, as the lisp machine does).
func (op embedOp) DoDiff(_ gorgonia.ExecutionContext, inputs gorgonia.Nodes, output *gorgonia.Node) error {
	if len(inputs) != 2 {
		return fmt.Errorf("%v: dodiff of %d inputs, want 2", op, len(inputs))
	}
	gv, err := output.Grad()
	if err != nil {
		return fmt.Errorf("%v: dodiff: output gradient: %w", op, err)
	}
	tv, err := inputs[0].Grad()
	if err != nil {
		return fmt.Errorf("%v: dodiff: table gradient: %w", op, err)
	}
	grad, err := denseOf(gv)
	if err != nil {
		return fmt.Errorf("%v: dodiff: output gradient: %w", op, err)
	}
	tgrad, ok := tv.(*tensor.Dense)
	if !ok || tgrad.RequiresIterator() {
		return fmt.Errorf("%v: dodiff: table gradient is %T", op, tv)
	}
	idx, err := denseOf(inputs[1].Value())
	if err != nil {
		return fmt.Errorf("%v: dodiff: indices: %w", op, err)
	}
	return embedGradOp{rows: op.rows, dim: op.dim}.scatter(tgrad, idx, grad, false)
}

// IsScatterGradient reports whether n is an embedding table's gradient
// computed by one scatter-add (embedOp's SymDiff): its value after a run
// of the tape machine is the whole gradient of that run, which training
// may read directly instead of binding it to the table (Gorgonia would add
// it into the table's gradient, a pass over the whole table). The value is
// reused by the next run, which zeroes the rows this one touched: a reader
// that changes it must leave it zero.
func IsScatterGradient(n *gorgonia.Node) bool {
	op, ok := n.Op().(embedGradOp)
	return ok && op.last != nil
}

// embedGradOp is the gradient of embedOp with respect to its table.
//
// Inputs: indices I (B, K) int32 and the output gradient G (B, K·E). Output:
// D of shape (V, E), zero but for D[I[b,k], :] += G[b, k·E:(k+1)·E].
type embedGradOp struct {
	rows, dim int
	// last, if set, is the output of the previous Do, handed out again
	// with only the rows that run touched zeroed: the table's gradient is
	// V×E (27M floats on the reference ctr-mlp) and a step touches B·K of
	// its rows, so a fresh zero tensor per step was most of a step's
	// memory traffic. Gorgonia's tape machine forgets the value at Reset
	// and adds it into the table's gradient, never keeping it.
	last *lastGrad
}

// lastGrad is embedGradOp's previous output and the indices it scattered.
type lastGrad struct {
	t       *tensor.Dense
	touched []int32
}

func (op embedGradOp) Arity() int { return 2 }

// Type is Tensor-2 int32 → Tensor-2 a → Tensor-2 a.
func (op embedGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(
		gorgonia.TensorType{Dims: 2, Of: tensor.Int32},
		gorgonia.TensorType{Dims: 2, Of: a},
		gorgonia.TensorType{Dims: 2, Of: a},
	)
}

func (op embedGradOp) InferShape(in ...gorgonia.DimSizer) (tensor.Shape, error) {
	if len(in) != 2 {
		return nil, fmt.Errorf("%v: %d inputs, want 2", op, len(in))
	}
	is, ok1 := in[0].(tensor.Shape)
	gs, ok2 := in[1].(tensor.Shape)
	if !ok1 || !ok2 || len(is) != 2 || len(gs) != 2 || gs[0] != is[0] || gs[1] != is[1]*op.dim {
		return nil, fmt.Errorf("%v: inputs of shapes %v and %v", op, in[0], in[1])
	}
	return tensor.Shape{op.rows, op.dim}, nil
}

func (op embedGradOp) Do(in ...gorgonia.Value) (gorgonia.Value, error) {
	idx, grad, err := op.inputs(in)
	if err != nil {
		return nil, err
	}
	if op.last == nil {
		out := tensor.New(tensor.Of(grad.Dtype()), tensor.WithShape(op.rows, op.dim))
		return out, op.scatter(out, idx, grad, false)
	}
	l := op.last
	if l.t == nil || l.t.Dtype() != grad.Dtype() {
		l.t, l.touched = tensor.New(tensor.Of(grad.Dtype()), tensor.WithShape(op.rows, op.dim)), l.touched[:0]
	}
	if err := op.zeroRows(l.t, l.touched); err != nil {
		return nil, err
	}
	if err := op.scatter(l.t, idx, grad, false); err != nil {
		l.t, l.touched = nil, l.touched[:0] // rows written, and not listed
		return nil, err
	}
	l.touched = append(l.touched[:0], idx.Int32s()...)
	return l.t, nil
}

// zeroRows zeroes the given rows of out (indices scatter has checked).
func (op embedGradOp) zeroRows(out *tensor.Dense, rows []int32) error {
	switch out.Dtype() {
	case tensor.Float32:
		clearRows(out.Float32s(), rows, op.dim)
	case tensor.Float64:
		clearRows(out.Float64s(), rows, op.dim)
	default:
		return fmt.Errorf("%v: unsupported dtype %v", op, out.Dtype())
	}
	return nil
}

func clearRows[T float32 | float64](out []T, rows []int32, dim int) {
	for _, i := range rows {
		clear(out[int(i)*dim : (int(i)+1)*dim])
	}
}

func (op embedGradOp) UsePreallocDo(prealloc gorgonia.Value, in ...gorgonia.Value) (gorgonia.Value, error) {
	idx, grad, err := op.inputs(in)
	if err != nil {
		return nil, err
	}
	out, ok := prealloc.(*tensor.Dense)
	if !ok || out.Dtype() != grad.Dtype() || !out.Shape().Eq(tensor.Shape{op.rows, op.dim}) || out.RequiresIterator() {
		return nil, fmt.Errorf("%v: unusable preallocated value %v", op, prealloc.Shape())
	}
	return out, op.scatter(out, idx, grad, true)
}

func (op embedGradOp) inputs(in []gorgonia.Value) (idx, grad *tensor.Dense, err error) {
	if len(in) != 2 {
		return nil, nil, fmt.Errorf("%v: %d inputs, want 2", op, len(in))
	}
	if idx, err = denseOf(in[0]); err != nil {
		return nil, nil, fmt.Errorf("%v: indices: %w", op, err)
	}
	if grad, err = denseOf(in[1]); err != nil {
		return nil, nil, fmt.Errorf("%v: gradient: %w", op, err)
	}
	if idx.Dtype() != tensor.Int32 || idx.Dims() != 2 {
		return nil, nil, fmt.Errorf("%v: indices are %v %v, want a (batch, k) int32 matrix", op, idx.Dtype(), idx.Shape())
	}
	if !grad.Shape().Eq(tensor.Shape{idx.Shape()[0], idx.Shape()[1] * op.dim}) {
		return nil, nil, fmt.Errorf("%v: gradient has shape %v for indices %v", op, grad.Shape(), idx.Shape())
	}
	return idx, grad, nil
}

// scatter adds grad's rows into out at the indexed rows, zeroing out first if
// zero is set.
func (op embedGradOp) scatter(out, idx, grad *tensor.Dense, zero bool) error {
	if zero {
		out.Zero()
	}
	switch grad.Dtype() {
	case tensor.Float32:
		return scatterAdd(out.Float32s(), grad.Float32s(), idx.Int32s(), op.rows, op.dim)
	case tensor.Float64:
		return scatterAdd(out.Float64s(), grad.Float64s(), idx.Int32s(), op.rows, op.dim)
	default:
		return fmt.Errorf("%v: unsupported dtype %v", op, grad.Dtype())
	}
}

func scatterAdd[T float32 | float64](out, grad []T, idx []int32, rows, dim int) error {
	for j, i := range idx {
		if i < 0 || int(i) >= rows {
			return fmt.Errorf("embed gradient: index %d out of range [0, %d)", i, rows)
		}
		dst := out[int(i)*dim : (int(i)+1)*dim]
		for e, g := range grad[j*dim : (j+1)*dim] {
			dst[e] += g
		}
	}
	return nil
}

func (op embedGradOp) ReturnsPtr() bool     { return false }
func (op embedGradOp) CallsExtern() bool    { return false }
func (op embedGradOp) OverwritesInput() int { return -1 }
func (op embedGradOp) String() string       { return fmt.Sprintf("EmbedGrad{%d×%d}", op.rows, op.dim) }

func (op embedGradOp) WriteHash(h hash.Hash) { _, _ = fmt.Fprint(h, op.String()) }

func (op embedGradOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

// denseOf returns a value as a contiguous *tensor.Dense, materialising views.
func denseOf(v gorgonia.Value) (*tensor.Dense, error) {
	t, ok := v.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("value is %T, want *tensor.Dense", v)
	}
	if t.RequiresIterator() {
		m, ok := t.Materialize().(*tensor.Dense)
		if !ok {
			return nil, errors.New("cannot materialise view")
		}
		return m, nil
	}
	return t, nil
}
