package scoring

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"
	"slices"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/adtech/scorer/scoring/kernels"
)

// The fused inference ops of a scoring graph (see buildScoringNetwork).
// Each op instance belongs to one compiled Model and owns its output
// tensor: Do writes into it and returns it, so a run of the graph allocates
// nothing (the tape machine's Reset forgets its registers, but the ops keep
// their buffers). The value an op returns is overwritten by the next run.
// float32 only.

// fusedOp is what the four fused ops and the imported graphs' ops (graphOp)
// share: the Gorgonia op plumbing over an output buffer they own.
type fusedOp struct {
	name  string
	arity int
	out   *tensor.Dense // the output, (batch, width)
	fs    [][]float32   // the inputs' data, reused by slices
}

func newFusedOp(name string, arity, batch, width int) fusedOp {
	return fusedOp{name: name, arity: arity, out: tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(batch, width)), fs: make([][]float32, arity)}
}

func (op *fusedOp) Arity() int           { return op.arity }
func (op *fusedOp) ReturnsPtr() bool     { return false }
func (op *fusedOp) CallsExtern() bool    { return false }
func (op *fusedOp) OverwritesInput() int { return -1 }
func (op *fusedOp) String() string       { return op.name }

// WriteHash names the op and its output buffer: two ops are the same node
// only if they are the same instance.
func (op *fusedOp) WriteHash(h hash.Hash) {
	_, _ = fmt.Fprintf(h, "%s@%p", op.name, op.out)
}

func (op *fusedOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

// fnType is a function type of float32 matrices, but for the int32 index
// inputs at the given positions.
func (op *fusedOp) fnType(intInputs ...int) hm.Type {
	ts := make([]hm.Type, op.arity+1)
	for i := range ts {
		ts[i] = gorgonia.TensorType{Dims: 2, Of: tensor.Float32}
	}
	for _, i := range intInputs {
		ts[i] = gorgonia.TensorType{Dims: 2, Of: tensor.Int32}
	}
	return hm.NewFnType(ts...)
}

func (op *fusedOp) InferShape(in ...gorgonia.DimSizer) (tensor.Shape, error) {
	if len(in) != op.arity {
		return nil, fmt.Errorf("%v: %d inputs, want %d", op.name, len(in), op.arity)
	}
	return op.out.Shape().Clone(), nil
}

// slices returns the inputs' data, checking their types and sizes.
func (op *fusedOp) slices(in []gorgonia.Value, sizes []int, intInputs ...int) ([][]float32, []int32, error) {
	if len(in) != op.arity {
		return nil, nil, fmt.Errorf("%v: %d inputs, want %d", op.name, len(in), op.arity)
	}
	fs := op.fs
	clear(fs)
	var idx []int32
	for i, v := range in {
		t, ok := v.(*tensor.Dense)
		if !ok || t.RequiresIterator() {
			return nil, nil, fmt.Errorf("%v: input %d is %T, want a dense tensor", op.name, i, v)
		}
		isInt := false
		for _, j := range intInputs {
			isInt = isInt || i == j
		}
		switch {
		case isInt && t.Dtype() == tensor.Int32:
			idx = t.Int32s()
		case !isInt && t.Dtype() == tensor.Float32:
			fs[i] = t.Float32s()
		default:
			return nil, nil, fmt.Errorf("%v: input %d is %v", op.name, i, t.Dtype())
		}
		if t.Shape().TotalSize() != sizes[i] {
			return nil, nil, fmt.Errorf("%v: input %d has shape %v, %d values wanted", op.name, i, t.Shape(), sizes[i])
		}
	}
	return fs, idx, nil
}

// deepInputOp is the deep part's input row: the K looked-up embeddings side
// by side, then the D dense features, written into one reused (B, K·E+D)
// buffer (the gather and the concatenation in one pass).
//
// Inputs: the table (V, E), the indices (B, K) int32 into it, and the dense
// features (B, D) if D > 0.
type deepInputOp struct {
	fusedOp
	rows, k, e, d, batch int
}

func newDeepInputOp(rows, k, e, d, batch int) *deepInputOp {
	arity := 2
	if d > 0 {
		arity = 3
	}
	return &deepInputOp{fusedOp: newFusedOp(fmt.Sprintf("DeepInput{%d×%d,k=%d,d=%d}", rows, e, k, d), arity, batch, k*e+d), rows: rows, k: k, e: e, d: d, batch: batch}
}

func (op *deepInputOp) Type() hm.Type { return op.fnType(1) }

func (op *deepInputOp) Do(in ...gorgonia.Value) (gorgonia.Value, error) {
	fs, idx, err := op.slices(in, []int{op.rows * op.e, op.batch * op.k, op.batch * op.d}[:op.arity], 1)
	if err != nil {
		return nil, err
	}
	table, out := fs[0], op.out.Float32s()
	var dense []float32
	if op.d > 0 {
		dense = fs[2]
	}
	k, e, d := op.k, op.e, op.d
	w := k*e + d
	idx = idx[:op.batch*k]
	// bad is the position of the first index outside the table, or -1.
	var bad int
	if e == 16 { // the usual width: the assembly gather, with prefetching, which checks the indices
		bad = kernels.Gather16(out, w, table, idx, op.batch, k)
	} else {
		bad = slices.IndexFunc(idx, func(i int32) bool { return i < 0 || int(i) >= op.rows })
	}
	if bad >= 0 {
		return nil, fmt.Errorf("%v: index %d out of range [0, %d)", op.name, idx[bad], op.rows)
	}
	for r := range op.batch {
		dst := out[r*w : (r+1)*w]
		if e != 16 {
			for c, i := range idx[r*k : (r+1)*k] {
				copy(dst[c*e:(c+1)*e], table[int(i)*e:(int(i)+1)*e])
			}
		}
		copy(dst[k*e:], dense[r*d:(r+1)*d])
	}
	return op.out, nil
}

// linearOp is a dense layer with its activation: y = act(x·W + b), over
// the weights packed once (kernels.PackLinear) and the tile kernel, the bias
// and the ReLU applied in registers.
//
// Inputs: x (B, in), W (in, out), b (1, out). If W's data is not what was
// packed (another tensor was bound), it is packed again.
type linearOp struct {
	fusedOp
	in, width, batch int
	relu             bool
	packed           *kernels.Linear
}

func newLinearOp(name string, in, out, batch int, relu bool) *linearOp {
	act := ""
	if relu {
		act = "+ReLU"
	}
	return &linearOp{
		fusedOp: newFusedOp(fmt.Sprintf("Linear%s{%s %d×%d}", act, name, in, out), 3, batch, out),
		in:      in, width: out, batch: batch, relu: relu,
	}
}

func (op *linearOp) Type() hm.Type { return op.fnType() }

func (op *linearOp) Do(in ...gorgonia.Value) (gorgonia.Value, error) {
	fs, _, err := op.slices(in, []int{op.batch * op.in, op.in * op.width, op.width})
	if err != nil {
		return nil, err
	}
	x, w, b := fs[0], fs[1], fs[2]
	if op.packed == nil || !op.packed.PackedFrom(w, b) {
		op.packed = kernels.PackLinear(w, b, op.in, op.width)
	}
	op.packed.Forward(x, op.batch, op.out.Float32s(), op.relu)
	return op.out, nil
}

// wideOp is the wide part's logit: bias + Σ_k T[I[b,k]] + x·w.
//
// Inputs: the table (V, 1) and the indices (B, K) int32 if K > 0, the
// weights (D, 1) and the dense features (B, D) if D > 0, the bias (1, 1).
type wideOp struct {
	fusedOp
	rows, k, d, batch int
	// check finds an index outside the table (Model.fill has checked
	// each column's already: this keeps the op safe on its own) with the
	// vector kernel, into scratch; a loop of compares was a fifth of a
	// wide model's time.
	check   *kernels.Offsets
	scratch []int32
}

func newWideOp(rows, k, d, batch int) *wideOp {
	arity := 1
	if k > 0 {
		arity += 2
	}
	if d > 0 {
		arity += 2
	}
	return &wideOp{
		fusedOp: newFusedOp(fmt.Sprintf("Wide{%d,k=%d,d=%d}", rows, k, d), arity, batch, 1), rows: rows, k: k, d: d, batch: batch,
		check: kernels.NewOffsets([]int32{0}, []uint32{uint32(rows)}), scratch: make([]int32, batch*k),
	}
}

func (op *wideOp) Type() hm.Type {
	if op.k > 0 {
		return op.fnType(1)
	}
	return op.fnType()
}

func (op *wideOp) Do(in ...gorgonia.Value) (gorgonia.Value, error) {
	var buf [5]int
	sizes := buf[:0]
	ints := []int(nil)
	if op.k > 0 {
		sizes = append(sizes, op.rows, op.batch*op.k)
		ints = intInput1[:]
	}
	if op.d > 0 {
		sizes = append(sizes, op.d, op.batch*op.d)
	}
	sizes = append(sizes, 1)
	fs, idx, err := op.slices(in, sizes, ints...)
	if err != nil {
		return nil, err
	}
	var table, w, x []float32
	next := 0
	if op.k > 0 {
		table = fs[0]
		next = 2
	}
	if op.d > 0 {
		w, x = fs[next], fs[next+1]
		next += 2
	}
	bias := fs[next][0]
	out := op.out.Float32s()
	k, d := op.k, op.d
	if at := op.check.Apply(op.scratch, idx); at >= 0 {
		return nil, fmt.Errorf("%v: index %d out of range [0, %d)", op.name, idx[at], op.rows)
	}
	// Four rows at a time, each summed in its own register: one row's
	// sum is a chain of dependent adds, four chains keep the adder busy.
	// Each row's sum is still bias, then the table values in column
	// order, then the dense terms in order: the same float32 operations
	// as one row at a time, so the same bits.
	r := 0
	for ; r+4 <= op.batch; r += 4 {
		i0 := idx[r*k : r*k+k]
		i1, i2, i3 := idx[(r+1)*k:(r+1)*k+k], idx[(r+2)*k:(r+2)*k+k], idx[(r+3)*k:(r+3)*k+k]
		s0, s1, s2, s3 := bias, bias, bias, bias
		for c := range i0 {
			s0 += table[i0[c]]
			s1 += table[i1[c]]
			s2 += table[i2[c]]
			s3 += table[i3[c]]
		}
		x0 := x[r*d : r*d+d]
		x1, x2, x3 := x[(r+1)*d:(r+1)*d+d], x[(r+2)*d:(r+2)*d+d], x[(r+3)*d:(r+3)*d+d]
		for j, wj := range w[:d] {
			s0 += x0[j] * wj
			s1 += x1[j] * wj
			s2 += x2[j] * wj
			s3 += x3[j] * wj
		}
		out[r], out[r+1], out[r+2], out[r+3] = s0, s1, s2, s3
	}
	for ; r < op.batch; r++ {
		s := bias
		for _, i := range idx[r*k : r*k+k] {
			s += table[i]
		}
		for j, v := range x[r*d : r*d+d] {
			s += v * w[j]
		}
		out[r] = s
	}
	return op.out, nil
}

// intInput1 says that input 1 is the int32 one.
var intInput1 = [1]int{1}

// probOp is the click probability: sigmoid of the sum of its inputs (the
// wide and the deep logits), each (B, 1). It keeps the summed logits in z,
// which Model.Score checks once per run (see Model.checkLogits).
//
// A probability is rounded into the open interval (0, 1): float32 has no
// value between 1-2⁻²⁴ and 1, so sigmoid(z) for z above about 17 would
// round to exactly 1 (and below about -103 to exactly 0); it is given the
// nearest float32 inside the interval instead, an error below float32's
// resolution there. Scores are then always in (0, 1) as docs/store.md
// promises, whatever the logit.
type probOp struct {
	fusedOp
	batch int
	z     []float32 // the summed logits of the last run
}

// The bounds a probability is kept within.
const (
	minProb = math.SmallestNonzeroFloat32 // the smallest float32 above 0
	maxProb = float32(1 - 1.0/(1<<24))    // the largest float32 below 1
)

func newProbOp(inputs, batch int) *probOp {
	return &probOp{fusedOp: newFusedOp(fmt.Sprintf("SigmoidSum{%d}", inputs), inputs, batch, 1), batch: batch, z: make([]float32, batch)}
}

func (op *probOp) Type() hm.Type { return op.fnType() }

func (op *probOp) Do(in ...gorgonia.Value) (gorgonia.Value, error) {
	sizes := [3]int{op.batch, op.batch, op.batch}
	fs, _, err := op.slices(in, sizes[:op.arity])
	if err != nil {
		return nil, err
	}
	z := op.z
	copy(z, fs[0])
	for _, f := range fs[1:] {
		for r, v := range f {
			z[r] += v
		}
	}
	out := op.out.Float32s()
	for r, v := range z {
		p := float32(1 / (1 + math.Exp(-float64(v))))
		out[r] = min(max(p, minProb), maxProb) // NaN stays NaN; Score refuses it
	}
	return op.out, nil
}
