package scoring

import (
	"errors"
	"fmt"
	"math"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The kernels of an imported graph (graph_compile.go): ONNX operators on
// row-major tensors of static shape. Each is written once, generic over the
// element type, and serves twice: on the graph's constants at compile time
// (folding: int64 and float32) and on the batch at run time (int32 indices
// and float32 values), inside a graphOp.

// number is what the arithmetic kernels compute on.
type number interface {
	~float32 | ~int32 | ~int64
}

// index is the element type of indices.
type index interface{ ~int32 | ~int64 }

// maxRank bounds the rank of an imported graph's tensors.
const maxRank = 8

func size(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// gatherK is ONNX Gather: out[o, j, i] = data[o, idx[j], i] with o over
// the dimensions of data before axis, j over idx's elements and i over
// data's dimensions after axis. Negative indices count from the end.
func gatherK[T any, I index](out, data []T, dshape []int, axis int, idx []I) error {
	outer, inner, dim := size(dshape[:axis]), size(dshape[axis+1:]), dshape[axis]
	n := len(idx)
	for o := range outer {
		src := data[o*dim*inner : (o+1)*dim*inner]
		dst := out[o*n*inner : (o+1)*n*inner]
		for j, v := range idx {
			i := int(v)
			if i < 0 {
				i += dim
			}
			if i < 0 || i >= dim {
				return &flatError{pos: j, err: fmt.Errorf("index %d out of range [%d, %d)", v, -dim, dim)}
			}
			copy(dst[j*inner:(j+1)*inner], src[i*inner:(i+1)*inner])
		}
	}
	return nil
}

// concatK is ONNX Concat along axis: per slice o of the dimensions before
// axis, each part's chunk in order.
func concatK[T any](out []T, parts [][]T, shapes [][]int, axis int) {
	outer := size(shapes[0][:axis])
	pos := 0
	for o := range outer {
		for p, part := range parts {
			chunk := size(shapes[p][axis:])
			pos += copy(out[pos:], part[o*chunk:(o+1)*chunk])
		}
	}
}

// broadcastShape is numpy's broadcast of two shapes, or an error.
func broadcastShape(a, b []int) ([]int, error) {
	r := max(len(a), len(b))
	out := make([]int, r)
	for i := range r {
		da, db := 1, 1
		if j := len(a) - r + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - r + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db || db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
}

// broadcastStrides are the element strides of shape read as the
// (broadcast) shape out: 0 along the dimensions it repeats.
func broadcastStrides(shape, out []int) []int {
	st := make([]int, len(out))
	s := 1
	for i := len(out) - 1; i >= 0; i-- {
		j := len(shape) - len(out) + i
		if j >= 0 && shape[j] != 1 {
			st[i] = s
			s *= shape[j]
		}
	}
	return st
}

// flatError is a kernel's failure at a flat position of its output (binary
// ops) or of its indices (gather): the caller knows which row that is.
type flatError struct {
	pos int
	err error
}

func (e *flatError) Error() string { return e.err.Error() }

// rowError turns a kernel's error into a *RowError of the row holding flat
// position pos, perRow positions a row; other errors pass.
func rowError(err error, perRow int) error {
	if err == nil { // the common case, before errors.As (whose target would be allocated)
		return nil
	}
	var fe *flatError
	if errors.As(err, &fe) && perRow > 0 {
		return &RowError{Row: fe.pos / perRow, Err: fe.err}
	}
	return err
}

// Element-wise binary operators.
const (
	opAdd = iota
	opSub
	opMul
	opDiv
)

// binaryK computes out = a op b with broadcasting, out of shape shape and
// the operands read with strides as and bs (broadcastStrides). The last
// dimension is the inner loop.
func binaryK[T number](op int, out, a []T, as []int, b []T, bs []int, shape []int) error {
	r := len(shape)
	if r == 0 {
		v, err := apply(op, a[0], b[0])
		out[0] = v
		if err != nil {
			return &flatError{pos: 0, err: err}
		}
		return nil
	}
	last := shape[r-1]
	sa, sb := as[r-1], bs[r-1]
	var buf [maxRank]int
	pos := buf[:r-1]
	rows := size(shape[:r-1])
	for row := range rows {
		oa, ob := 0, 0
		for i, p := range pos {
			oa += p * as[i]
			ob += p * bs[i]
		}
		dst := out[row*last : (row+1)*last]
		switch {
		case sa == 1 && sb == 1:
			x, y := a[oa:oa+last], b[ob:ob+last]
			switch op {
			case opAdd:
				for i := range dst {
					dst[i] = x[i] + y[i]
				}
			case opMul:
				for i := range dst {
					dst[i] = x[i] * y[i]
				}
			default:
				for i := range dst {
					v, err := apply(op, x[i], y[i])
					if err != nil {
						return &flatError{pos: row*last + i, err: err}
					}
					dst[i] = v
				}
			}
		default:
			for i := range dst {
				v, err := apply(op, a[oa+i*sa], b[ob+i*sb])
				if err != nil {
					return &flatError{pos: row*last + i, err: err}
				}
				dst[i] = v
			}
		}
		for i := len(pos) - 1; i >= 0; i-- { // the next row's position
			pos[i]++
			if pos[i] < shape[i] {
				break
			}
			pos[i] = 0
		}
	}
	return nil
}

func apply[T number](op int, x, y T) (T, error) {
	switch op {
	case opAdd:
		return x + y, nil
	case opSub:
		return x - y, nil
	case opMul:
		return x * y, nil
	}
	var zero T
	if y == zero {
		if _, isFloat := any(zero).(float32); !isFloat {
			return zero, fmt.Errorf("integer division by zero")
		}
	}
	return x / y, nil
}

// Element-wise unary operators (float32). alpha and beta are the
// operator's attributes where it has them (LeakyRelu, Elu, HardSigmoid) or
// Clip's bounds.
const (
	opRelu = iota
	opSigmoid
	opTanh
	opLeakyRelu
	opElu
	opSoftplus
	opExp
	opLog
	opSqrt
	opNeg
	opAbs
	opErf
	opHardSigmoid
	opClip
	opPow
)

func unaryK(op int, out, x []float32, alpha, beta float32) {
	f := func(g func(float64) float64) {
		for i, v := range x {
			out[i] = float32(g(float64(v)))
		}
	}
	switch op {
	case opRelu:
		for i, v := range x {
			out[i] = max(v, 0)
		}
	case opSigmoid:
		f(func(v float64) float64 { return 1 / (1 + math.Exp(-v)) })
	case opTanh:
		f(math.Tanh)
	case opLeakyRelu:
		for i, v := range x {
			if v < 0 {
				v *= alpha
			}
			out[i] = v
		}
	case opElu:
		f(func(v float64) float64 {
			if v < 0 {
				return float64(alpha) * math.Expm1(v)
			}
			return v
		})
	case opSoftplus:
		f(func(v float64) float64 { return max(v, 0) + math.Log1p(math.Exp(-math.Abs(v))) })
	case opExp:
		f(math.Exp)
	case opLog:
		f(math.Log)
	case opSqrt:
		f(math.Sqrt)
	case opNeg:
		for i, v := range x {
			out[i] = -v
		}
	case opAbs:
		for i, v := range x {
			out[i] = float32(math.Abs(float64(v)))
		}
	case opErf:
		f(math.Erf)
	case opHardSigmoid:
		for i, v := range x {
			out[i] = min(max(alpha*v+beta, 0), 1)
		}
	case opClip:
		for i, v := range x {
			out[i] = min(max(v, alpha), beta)
		}
	case opPow:
		if alpha == 2 { // the usual square, exactly
			for i, v := range x {
				out[i] = v * v
			}
			return
		}
		f(func(v float64) float64 { return math.Pow(v, float64(alpha)) })
	}
}

// bmmK multiplies mats pairs of row-major matrices: out_i (m×n) = a_i
// (m×k) · b_i (k×n), summing in float32 in order of k.
func bmmK(out, a, b []float32, mats, m, k, n int) {
	for t := range mats {
		A, B, C := a[t*m*k:(t+1)*m*k], b[t*k*n:(t+1)*k*n], out[t*m*n:(t+1)*m*n]
		clear(C)
		for i := range m {
			row := C[i*n : (i+1)*n]
			for p := range k {
				av := A[i*k+p]
				for j, bv := range B[p*n : (p+1)*n] {
					row[j] += av * bv
				}
			}
		}
	}
}

// softmaxK is softmax over groups of n consecutive values... of shape
// (outer, n, inner): each of the inner positions of each outer block.
func softmaxK(out, x []float32, outer, n, inner int) {
	for o := range outer {
		for i := range inner {
			base := o*n*inner + i
			m := math.Inf(-1)
			for j := range n {
				m = max(m, float64(x[base+j*inner]))
			}
			sum := 0.0
			for j := range n {
				sum += math.Exp(float64(x[base+j*inner]) - m)
			}
			for j := range n {
				out[base+j*inner] = float32(math.Exp(float64(x[base+j*inner])-m) / sum)
			}
		}
	}
}

// mapRowsK copies, per row of rows, the elements of the source row (width
// in) at positions idx into the output row (width len(idx)): Slice and
// Transpose, which rearrange a row and never mix rows.
func mapRowsK[T any](out, x []T, in int, idx []int32, rows int) {
	w := len(idx)
	for r := range rows {
		src, dst := x[r*in:(r+1)*in], out[r*w:(r+1)*w]
		for j, p := range idx {
			dst[j] = src[p]
		}
	}
}

// reduceStrides are, for reducing a tensor of shape shape over the
// dimensions marked in axes, the strides of each input position in the
// output, and how many inputs each output sums.
func reduceStrides(shape []int, axes []bool) (st []int, count int) {
	outShape := make([]int, len(shape))
	count = 1
	for i, d := range shape {
		outShape[i] = d
		if axes[i] {
			outShape[i] = 1
			count *= d
		}
	}
	return broadcastStrides(outShape, shape), count
}

// reduceK sums (or averages, mean: divides by count) x of shape shape
// into out, input position p adding to out[Σ p_i·st_i] (reduceStrides),
// in float64 (acc, len(out) of scratch).
func reduceK[T number](out, x []T, shape, st []int, count int, mean bool, acc []float64) {
	clear(acc)
	var buf [maxRank]int
	pos := buf[:len(shape)]
	for _, v := range x {
		o := 0
		for i, p := range pos {
			o += p * st[i]
		}
		acc[o] += float64(v)
		for i := len(pos) - 1; i >= 0; i-- {
			pos[i]++
			if pos[i] < shape[i] {
				break
			}
			pos[i] = 0
		}
	}
	for i, v := range acc {
		if mean && count > 0 {
			v /= float64(count)
		}
		out[i] = T(v)
	}
}

// castK converts element by element; float to integer truncates toward
// zero, as ONNX's Cast does.
func castK[From, To number](out []To, x []From) {
	for i, v := range x {
		out[i] = To(v)
	}
}

// graphOp runs one kernel of an imported graph on the batch: a Gorgonia op
// over (rows, width) tensors of float32 or int32 that owns its output, so a
// run of the graph allocates nothing. The op plumbing (arity, hashing,
// shape) is the fused ops' (fusedOp); only the element types differ.
type graphOp struct {
	fusedOp
	in   []tensor.Dtype
	run  func(in []*tensor.Dense, out *tensor.Dense) error
	args []*tensor.Dense
}

func newGraphOp(name string, in []tensor.Dtype, out tensor.Dtype, rows, width int, run func(in []*tensor.Dense, out *tensor.Dense) error) *graphOp {
	return &graphOp{
		fusedOp: fusedOp{name: name, arity: len(in), out: tensor.New(tensor.Of(out), tensor.WithShape(rows, width))},
		in:      in, run: run, args: make([]*tensor.Dense, len(in)),
	}
}

func (op *graphOp) Type() hm.Type {
	ts := make([]hm.Type, len(op.in)+1)
	for i, dt := range op.in {
		ts[i] = gorgonia.TensorType{Dims: 2, Of: dt}
	}
	ts[len(op.in)] = gorgonia.TensorType{Dims: 2, Of: op.out.Dtype()}
	return hm.NewFnType(ts...)
}

func (op *graphOp) Do(in ...gorgonia.Value) (gorgonia.Value, error) {
	if len(in) != len(op.in) {
		return nil, fmt.Errorf("%v: %d inputs, want %d", op.name, len(in), len(op.in))
	}
	for i, v := range in {
		t, ok := v.(*tensor.Dense)
		if !ok || t.RequiresIterator() || t.Dtype() != op.in[i] {
			return nil, fmt.Errorf("%v: input %d is %T, want a dense %v tensor", op.name, i, v, op.in[i])
		}
		op.args[i] = t
	}
	if err := op.run(op.args, op.out); err != nil {
		return nil, err // the plan names the op
	}
	return op.out, nil
}
