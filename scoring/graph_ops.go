package scoring

import (
	"fmt"
	"math"
	"slices"

	"gorgonia.org/tensor"

	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/kernels"
)

// The operators of an imported graph, one compile function each (see
// graph_compile.go for the compiler they belong to): each folds its node
// when every input is a constant, or adds the runtime op (or a pending
// value that the next node may fuse), refusing what it cannot compile.

// normAxis is axis a of a tensor of rank rank, a negative one counting from
// the end.
func normAxis(a int64, rank int) (int, error) {
	if a < int64(-rank) || a >= int64(rank) {
		return 0, fmt.Errorf("axis %d is out of range for rank %d", a, rank)
	}
	if a < 0 {
		a += int64(rank)
	}
	return int(a), nil
}

// constInts reads a constant integer input (shape, axes).
func (c *graphCompiler) constInts(n bundle.Node, i int) ([]int64, error) {
	v, err := c.in(n, i)
	if err != nil {
		return nil, err
	}
	if !v.konst() || !v.isInt {
		return nil, fmt.Errorf("input %q must be a constant integer tensor (static shapes only)", n.Inputs[i])
	}
	return v.ci, nil
}

func (c *graphCompiler) constant(n bundle.Node) error {
	switch {
	case n.Tensors["value"] != "":
		v, ok := c.vals[n.Tensors["value"]]
		if !ok {
			return fmt.Errorf("value %q is not a weight or constant", n.Tensors["value"])
		}
		return c.set(n, v)
	case len(n.Floats["value_float"]) == 1:
		return c.set(n, &gval{shape: []int{}, cf: n.Floats["value_float"]})
	case n.Floats["value_floats"] != nil:
		return c.set(n, &gval{shape: []int{len(n.Floats["value_floats"])}, cf: n.Floats["value_floats"]})
	case len(n.Ints["value_int"]) == 1:
		return c.set(n, &gval{shape: []int{}, isInt: true, ci: n.Ints["value_int"]})
	case n.Ints["value_ints"] != nil:
		return c.set(n, &gval{shape: []int{len(n.Ints["value_ints"])}, isInt: true, ci: n.Ints["value_ints"]})
	}
	return fmt.Errorf("has no value (value, value_float(s) or value_int(s))")
}

// keepsBatchMarks reports whether input i of n may be an integer constant
// holding the batch size (from Shape): a Reshape's shape, and the ops
// that carry the marks to it (picking, joining and viewing constants).
func keepsBatchMarks(n bundle.Node, i int) bool {
	switch n.Op {
	case "Reshape":
		return i == 1
	case "Gather", "Slice":
		return i == 0
	case "Concat", "Squeeze", "Unsqueeze", "Identity":
		return i == 0 || n.Op == "Concat"
	case "Cast":
		return n.Int("to", 0) != onnxFloat
	}
	return false
}

// dropout is Dropout at inference: its input, unchanged. A graph that
// trains (training_mode true) or reads the mask is refused.
func (c *graphCompiler) dropout(n bundle.Node) error {
	x, err := c.in(n, 0)
	if err != nil {
		return err
	}
	if len(n.Inputs) > 2 && n.Inputs[2] != "" {
		mode, ok := c.vals[n.Inputs[2]]
		if !ok || !mode.konst() || slices.ContainsFunc(mode.ci, func(v int64) bool { return v != 0 }) || len(mode.cf) > 0 {
			return fmt.Errorf("training_mode is not a constant false: only inference is supported")
		}
	}
	if len(n.Outputs) > 1 {
		if n.Outputs[1] != "" && c.uses[n.Outputs[1]] > 0 {
			return fmt.Errorf("its mask output is read: only inference is supported")
		}
		n.Outputs = n.Outputs[:1]
	}
	return c.view(n, x, x.shape)
}

// shapeOf is Shape: the static shape as an integer constant (start and
// end as ONNX defines them), the batch dimension marked.
func (c *graphCompiler) shapeOf(n bundle.Node) error {
	x, err := c.in(n, 0)
	if err != nil {
		return err
	}
	r := int64(len(x.shape))
	clamp := func(v int64) int64 {
		if v < 0 {
			v += r
		}
		return min(max(v, 0), r)
	}
	start, end := clamp(n.Int("start", 0)), clamp(n.Int("end", r))
	out := &gval{shape: []int{int(max(end-start, 0))}, isInt: true, ci: []int64{}, batch: []bool{}}
	for i := start; i < end; i++ {
		out.ci = append(out.ci, int64(x.shape[i]))
		out.batch = append(out.batch, i == 0 && !x.konst())
	}
	return c.set(n, out)
}

// batchNorm is BatchNormalization at inference: per channel (axis 1)
// y = x·a + b with a = scale/sqrt(var+epsilon) and b = B - mean·a, from
// constant statistics. After a linear layer (Linear -> BatchNorm1d) it is
// folded into the layer's weights and bias.
func (c *graphCompiler) batchNorm(n bundle.Node) error {
	x, err := c.in(n, 0)
	if err != nil {
		return err
	}
	if n.Int("training_mode", 0) != 0 {
		return fmt.Errorf("training_mode=1: only inference is supported")
	}
	if len(n.Outputs) > 1 && slices.ContainsFunc(n.Outputs[1:], func(o string) bool { return o != "" && c.uses[o] > 0 }) {
		return fmt.Errorf("its running statistics are read: only inference is supported")
	}
	if len(n.Outputs) > 1 {
		n.Outputs = n.Outputs[:1]
	}
	if x.isInt || len(x.shape) < 2 {
		return fmt.Errorf("input of shape %v: want float32 [batch, channels, ...]", x.shape)
	}
	ch := x.shape[1]
	var p [4][]float32 // scale, B, mean, var
	for i := range p {
		v, err := c.in(n, i+1)
		if err != nil {
			return err
		}
		if !v.konst() || v.isInt || len(v.cf) != ch {
			return fmt.Errorf("input %q must be a float32 constant of %d values", n.Inputs[i+1], ch)
		}
		p[i] = v.cf
	}
	eps := float64(n.Float("epsilon", 1e-5))
	a, b := make([]float32, ch), make([]float32, ch)
	for i := range ch {
		a[i] = float32(float64(p[0][i]) / math.Sqrt(float64(p[3][i])+eps))
		b[i] = p[1][i] - p[2][i]*a[i]
	}
	if x.konst() {
		return fmt.Errorf("input is a constant")
	}
	if r := x.rt; r.pending == pendingLinear && len(x.shape) == 2 && r.rows == c.batch && r.out == ch && !r.relu && c.fusible(n, 0, x) {
		f := *r // (x·W + bias)·a + b = x·(W·a) + (bias·a + b)
		f.w, f.b, f.by = make([]float32, len(r.w)), make([]float32, r.out), ""
		for i := range r.in {
			for j := range r.out {
				f.w[i*r.out+j] = r.w[i*r.out+j] * a[j]
			}
		}
		for j := range r.out {
			bias := float32(0)
			if r.b != nil {
				bias = r.b[j]
			}
			f.b[j] = bias*a[j] + b[j]
		}
		return c.set(n, &gval{shape: x.shape, rt: &f})
	}
	cshape := make([]int, len(x.shape)-1) // [C, 1, ..., 1]: channels along axis 1
	for i := range cshape {
		cshape[i] = 1
	}
	cshape[0] = ch
	as, bs := broadcastStrides(x.shape, x.shape), broadcastStrides(cshape, x.shape)
	out, err := c.runtimeOp(n, []*gval{x}, x.shape, false, func(in []*tensor.Dense, out *tensor.Dense) error {
		dst := out.Float32s()
		if err := binaryK(opMul, dst, in[0].Float32s(), as, a, bs, x.shape); err != nil {
			return err
		}
		return binaryK(opAdd, dst, dst, as, b, bs, x.shape)
	})
	if err != nil {
		return err
	}
	return c.set(n, out)
}

// flatten is Flatten at axis (a negative one counting from the rank):
// [prod(dims before), prod(dims from)], not at the batch.
func (c *graphCompiler) flatten(n bundle.Node) error {
	x, err := c.in(n, 0)
	if err != nil {
		return err
	}
	axis, rank := int(n.Int("axis", 1)), len(x.shape)
	if axis < 0 {
		axis += rank
	}
	if axis < 0 || axis > rank {
		return fmt.Errorf("axis %d is out of range for rank %d", n.Int("axis", 1), rank)
	}
	if axis == 0 && !x.konst() {
		return fmt.Errorf("flattens the batch dimension (axis 0): rows would mix")
	}
	return c.view(n, x, []int{size(x.shape[:axis]), size(x.shape[axis:])})
}

func (c *graphCompiler) reshape(n bundle.Node) error {
	x, err := c.in(n, 0)
	if err != nil {
		return err
	}
	spec, err := c.constInts(n, 1)
	if err != nil {
		return err
	}
	allowZero := n.Int("allowzero", 0) != 0
	sv := c.vals[n.Inputs[1]]
	fromBatch := func(i int) bool { return sv.batch != nil && sv.batch[i] || i == 0 && c.gr.BatchOne && spec[0] == 1 }
	if !x.konst() && (len(spec) == 0 || spec[0] != -1 && (spec[0] != 0 || allowZero) && !fromBatch(0)) {
		return fmt.Errorf("shape %v fixes the batch dimension: its first value must be 0 (keep), -1 (infer) or the batch size (x.size(0)); export with a dynamic batch (dynamic_axes)", spec)
	}
	for i := 1; i < len(spec); i++ {
		if fromBatch(i) {
			return fmt.Errorf("shape %v puts the batch size in dimension %d: the batch must stay the first dimension", spec, i)
		}
	}
	shape := make([]int, len(spec))
	infer, known := -1, 1
	for i, d := range spec {
		switch {
		case i == 0 && !x.konst() && fromBatch(0): // the batch, whatever size it was exported with
			shape[0] = x.shape[0]
		case d == -1 && infer < 0:
			infer = i
			continue
		case d == 0 && !allowZero:
			if i >= len(x.shape) {
				return fmt.Errorf("shape %v copies dimension %d of a rank %d input", spec, i, len(x.shape))
			}
			shape[i] = x.shape[i]
		case d < 0 || d > int64(size(x.shape)):
			return fmt.Errorf("shape %v is not valid for %v", spec, x.shape)
		default:
			shape[i] = int(d)
		}
		known *= shape[i]
	}
	if infer >= 0 {
		if known == 0 || size(x.shape)%known != 0 {
			return fmt.Errorf("cannot reshape %v to %v", x.shape, spec)
		}
		shape[infer] = size(x.shape) / known
	}
	return c.view(n, x, shape)
}

func (c *graphCompiler) squeeze(n bundle.Node) error {
	x, err := c.in(n, 0)
	if err != nil {
		return err
	}
	var axes []int64
	if len(n.Inputs) > 1 && n.Inputs[1] != "" {
		if axes, err = c.constInts(n, 1); err != nil {
			return err
		}
	} else if n.Op == "Unsqueeze" {
		return fmt.Errorf("has no axes")
	}
	if n.Op == "Unsqueeze" {
		rank := len(x.shape) + len(axes)
		ins := make([]bool, rank)
		for _, a := range axes {
			i, err := normAxis(a, rank)
			if err != nil {
				return err
			}
			if ins[i] {
				return fmt.Errorf("axes %v name axis %d twice", axes, i)
			}
			if i == 0 && !x.konst() {
				return fmt.Errorf("inserts a dimension before the batch: rows would mix")
			}
			ins[i] = true
		}
		var shape []int
		src := 0
		for i := range rank {
			if ins[i] {
				shape = append(shape, 1)
			} else {
				shape = append(shape, x.shape[src])
				src++
			}
		}
		return c.view(n, x, shape)
	}
	drop := make([]bool, len(x.shape))
	for _, a := range axes {
		i, err := normAxis(a, len(x.shape))
		if err != nil {
			return err
		}
		if x.shape[i] != 1 {
			return fmt.Errorf("cannot squeeze axis %d of shape %v", a, x.shape)
		}
		if i == 0 && !x.konst() {
			return fmt.Errorf("squeezes the batch dimension: rows would mix")
		}
		drop[i] = true
	}
	if len(axes) == 0 { // every dimension of size 1 but the batch's
		for i, d := range x.shape {
			drop[i] = d == 1 && (x.konst() || i > 0)
		}
	}
	var shape []int
	for i, d := range x.shape {
		if !drop[i] {
			shape = append(shape, d)
		}
	}
	return c.view(n, x, shape)
}

func (c *graphCompiler) cast(n bundle.Node) error {
	x, err := c.in(n, 0)
	if err != nil {
		return err
	}
	to := n.Int("to", 0)
	if to != onnxFloat && to != onnxInt32 && to != onnxInt64 {
		return fmt.Errorf("cast to data type %d is not supported (float, int32, int64)", to)
	}
	toInt := to != onnxFloat
	if toInt == x.isInt { // int32 <-> int64 and float -> float: a view
		return c.view(n, x, x.shape)
	}
	if x.konst() {
		out := &gval{shape: x.shape, isInt: toInt}
		if toInt {
			out.ci = make([]int64, len(x.cf))
			castK(out.ci, x.cf)
		} else {
			out.cf = make([]float32, len(x.ci))
			castK(out.cf, x.ci)
		}
		return c.set(n, out)
	}
	out, err := c.runtimeOp(n, []*gval{x}, x.shape, toInt, func(in []*tensor.Dense, out *tensor.Dense) error {
		if toInt {
			castK(out.Int32s(), in[0].Float32s())
		} else {
			castK(out.Float32s(), in[0].Int32s())
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.set(n, out)
}

func (c *graphCompiler) unary(n bundle.Node) error {
	x, err := c.in(n, 0)
	if err != nil {
		return err
	}
	if x.isInt {
		return fmt.Errorf("input is an integer tensor, want float32")
	}
	op := unaryOps[n.Op]
	var alpha, beta float32
	switch op {
	case opLeakyRelu:
		alpha = n.Float("alpha", 0.01)
	case opElu:
		alpha = n.Float("alpha", 1)
	case opHardSigmoid:
		alpha, beta = n.Float("alpha", 0.2), n.Float("beta", 0.5)
	case opPow: // a constant scalar exponent
		e, err := c.in(n, 1)
		if err != nil {
			return err
		}
		if len(e.shape) > len(x.shape) {
			return fmt.Errorf("exponent of shape %v would broadcast %v to a higher rank", e.shape, x.shape)
		}
		switch {
		case e.konst() && !e.isInt && len(e.cf) == 1:
			alpha = e.cf[0]
		case e.konst() && e.isInt && len(e.ci) == 1:
			alpha = float32(e.ci[0])
		default:
			return fmt.Errorf("exponent %q must be a constant scalar", n.Inputs[1])
		}
	case opClip: // bounds as optional constant inputs (opset 11 on)
		alpha, beta = float32(math.Inf(-1)), float32(math.Inf(1))
		for i, bound := range []*float32{&alpha, &beta} {
			v, err := c.optIn(n, i+1)
			if err != nil {
				return err
			}
			if v == nil {
				continue
			}
			if !v.konst() || v.isInt || len(v.cf) != 1 {
				return fmt.Errorf("bound %q must be a float32 constant scalar", n.Inputs[i+1])
			}
			*bound = v.cf[0]
		}
	}
	if x.konst() {
		out := &gval{shape: x.shape, cf: make([]float32, len(x.cf))}
		unaryK(op, out.cf, x.cf, alpha, beta)
		return c.set(n, out)
	}
	switch {
	case op == opRelu && x.rt.pending == pendingLinear && !x.rt.relu && c.fusible(n, 0, x):
		r := *x.rt
		r.relu, r.by = true, ""
		return c.set(n, &gval{shape: x.shape, rt: &r})
	case op == opSigmoid:
		if c.uses[n.Inputs[0]] > 1 {
			x.rt.shared = true
		}
		return c.set(n, &gval{shape: x.shape, rt: &rtensor{pending: pendingSigmoid, name: n.Name, arg: x}})
	}
	out, err := c.runtimeOp(n, []*gval{x}, x.shape, false, func(in []*tensor.Dense, out *tensor.Dense) error {
		unaryK(op, out.Float32s(), in[0].Float32s(), alpha, beta)
		return nil
	})
	if err != nil {
		return err
	}
	return c.set(n, out)
}

// softmax is Softmax along one axis (opset 13 on: default the last), not
// the batch's.
func (c *graphCompiler) softmax(n bundle.Node) error {
	x, err := c.in(n, 0)
	if err != nil {
		return err
	}
	if x.isInt {
		return fmt.Errorf("input is an integer tensor, want float32")
	}
	axis, err := normAxis(n.Int("axis", -1), len(x.shape))
	if err != nil {
		return err
	}
	outer, dim, inner := size(x.shape[:axis]), x.shape[axis], size(x.shape[axis+1:])
	if x.konst() {
		out := &gval{shape: x.shape, cf: make([]float32, len(x.cf))}
		softmaxK(out.cf, x.cf, outer, dim, inner)
		return c.set(n, out)
	}
	if axis == 0 {
		return fmt.Errorf("normalizes along the batch dimension: rows would mix")
	}
	out, err := c.runtimeOp(n, []*gval{x}, x.shape, false, func(in []*tensor.Dense, out *tensor.Dense) error {
		softmaxK(out.Float32s(), in[0].Float32s(), outer, dim, inner)
		return nil
	})
	if err != nil {
		return err
	}
	if inner == 1 {
		out.rt.softmaxOf = x
	}
	return c.set(n, out)
}

// rearrange is Slice or Transpose of x given, for its output shape, which
// flat position of x each output element reads (pos, over whole tensors:
// for a runtime x, the first batch row's positions, which every row
// repeats).
func (c *graphCompiler) rearrange(n bundle.Node, x *gval, shape []int, pos []int) error {
	if x.konst() {
		out := &gval{shape: shape, isInt: x.isInt}
		if x.batch != nil {
			out.batch = make([]bool, len(pos))
			for i, p := range pos {
				out.batch[i] = x.batch[p]
			}
		}
		if x.isInt {
			out.ci = make([]int64, len(pos))
			for i, p := range pos {
				out.ci[i] = x.ci[p]
			}
		} else {
			out.cf = make([]float32, len(pos))
			for i, p := range pos {
				out.cf[i] = x.cf[p]
			}
		}
		return c.set(n, out)
	}
	w := size(shape[1:])
	idx := make([]int32, w)
	for i, p := range pos[:w] {
		idx[i] = int32(p)
	}
	in := size(x.rowShape())
	out, err := c.runtimeOp(n, []*gval{x}, shape, x.isInt, func(ts []*tensor.Dense, out *tensor.Dense) error {
		if x.isInt {
			mapRowsK(out.Int32s(), ts[0].Int32s(), in, idx, c.batch)
		} else {
			mapRowsK(out.Float32s(), ts[0].Float32s(), in, idx, c.batch)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if x.lo != nil {
		out.lo, out.hi, out.src = make([]int64, w), make([]int64, w), make([]string, w)
		for i, p := range idx {
			out.lo[i], out.hi[i], out.src[i] = x.lo[p], x.hi[p], x.src[p]
		}
	}
	return c.set(n, out)
}

// split is Split along an axis other than the batch's, into the sizes of
// the constant split input, or into len(outputs) (num_outputs) equal parts
// (the last one smaller if they do not divide).
func (c *graphCompiler) split(n bundle.Node) error {
	x, err := c.in(n, 0)
	if err != nil {
		return err
	}
	axis, err := normAxis(n.Int("axis", 0), len(x.shape))
	if err != nil {
		return err
	}
	if axis == 0 && !x.konst() {
		return fmt.Errorf("splits the batch dimension: rows would mix")
	}
	d := x.shape[axis]
	var sizes []int64
	if len(n.Inputs) > 1 && n.Inputs[1] != "" {
		if sizes, err = c.constInts(n, 1); err != nil {
			return err
		}
	} else {
		parts := int64(len(n.Outputs))
		if parts == 0 {
			return fmt.Errorf("has no outputs")
		}
		each := (int64(d) + parts - 1) / parts
		for left := int64(d); left > 0; left -= each {
			sizes = append(sizes, min(each, left))
		}
	}
	if len(sizes) != len(n.Outputs) {
		return fmt.Errorf("splits into %d parts for %d outputs", len(sizes), len(n.Outputs))
	}
	st := strides(x.shape)
	from := 0
	for i, sz := range sizes {
		if sz < 0 || sz > int64(d-from) {
			return fmt.Errorf("split sizes %v do not fit dimension %d of %d", sizes, axis, d)
		}
		shape := slices.Clone(x.shape)
		shape[axis] = int(sz)
		part := n
		part.Outputs = []string{n.Outputs[i]}
		if err := c.rearrange(part, x, shape, positions(shape, st, from*st[axis])); err != nil {
			return err
		}
		from += int(sz)
	}
	if from != d {
		return fmt.Errorf("split sizes %v do not add up to dimension %d of %d", sizes, axis, d)
	}
	return nil
}

// strides are row-major element strides of shape.
func strides(shape []int) []int {
	st := make([]int, len(shape))
	s := 1
	for i := len(shape) - 1; i >= 0; i-- {
		st[i] = s
		s *= shape[i]
	}
	return st
}

// positions lists, for every element of out (row-major), the flat
// position sum_i index_i·step_i + base, where index_i runs over out's
// dimension i.
func positions(out []int, step []int, base int) []int {
	pos := make([]int, 0, size(out))
	var walk func(d, at int)
	walk = func(d, at int) {
		if d == len(out) {
			pos = append(pos, at)
			return
		}
		for i := range out[d] {
			walk(d+1, at+i*step[d])
		}
	}
	walk(0, base)
	return pos
}

// transpose is Transpose with perm (default: reversed), keeping the batch
// first.
func (c *graphCompiler) transpose(n bundle.Node) error {
	x, err := c.in(n, 0)
	if err != nil {
		return err
	}
	r := len(x.shape)
	perm := n.Ints["perm"]
	if perm == nil {
		for i := r - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	if len(perm) != r {
		return fmt.Errorf("perm %v for rank %d", perm, r)
	}
	st := strides(x.shape)
	shape, step := make([]int, r), make([]int, r)
	seen := make([]bool, r)
	for i, p := range perm {
		if p < 0 || int(p) >= r || seen[p] {
			return fmt.Errorf("perm %v is not a permutation of %d axes", perm, r)
		}
		seen[p] = true
		shape[i], step[i] = x.shape[p], st[p]
	}
	if !x.konst() && perm[0] != 0 {
		return fmt.Errorf("perm %v moves the batch dimension: rows would mix", perm)
	}
	return c.rearrange(n, x, shape, positions(shape, step, 0))
}

// slice is Slice by constant starts, ends, axes and steps (ONNX's clamping
// and negative values); the batch dimension only as a whole.
func (c *graphCompiler) slice(n bundle.Node) error {
	x, err := c.in(n, 0)
	if err != nil {
		return err
	}
	starts, err := c.constInts(n, 1)
	if err != nil {
		return err
	}
	ends, err := c.constInts(n, 2)
	if err != nil {
		return err
	}
	r := len(x.shape)
	axes := make([]int64, len(starts))
	for i := range axes {
		axes[i] = int64(i)
	}
	if len(n.Inputs) > 3 && n.Inputs[3] != "" {
		if axes, err = c.constInts(n, 3); err != nil {
			return err
		}
	}
	steps := make([]int64, len(starts))
	for i := range steps {
		steps[i] = 1
	}
	if len(n.Inputs) > 4 && n.Inputs[4] != "" {
		if steps, err = c.constInts(n, 4); err != nil {
			return err
		}
	}
	if len(ends) != len(starts) || len(axes) != len(starts) || len(steps) != len(starts) {
		return fmt.Errorf("starts, ends, axes and steps differ in length")
	}
	shape, step := slices.Clone(x.shape), strides(x.shape)
	base := 0
	seen := make([]bool, r)
	for i, a := range axes {
		ax, err := normAxis(a, r)
		if err != nil {
			return err
		}
		if seen[ax] {
			return fmt.Errorf("axes %v name axis %d twice", axes, ax)
		}
		seen[ax] = true
		d, st := int64(x.shape[ax]), steps[i]
		if st == 0 {
			return fmt.Errorf("step 0")
		}
		clampTo := func(v, lo, hi int64) int64 {
			if v < 0 {
				v += d
			}
			return min(max(v, lo), hi)
		}
		var from, to, count int64
		if st > 0 {
			from, to = clampTo(starts[i], 0, d), clampTo(ends[i], 0, d)
			if to > from {
				count = (to-from-1)/st + 1
			}
		} else {
			from, to = clampTo(starts[i], 0, d-1), clampTo(ends[i], -1, d-1)
			if from > to {
				count = (from-to-1)/(-st) + 1
			}
		}
		if ax == 0 && !x.konst() && (from != 0 || st != 1 || count != d) {
			return fmt.Errorf("slices the batch dimension: only all of it may be taken")
		}
		base += int(from) * step[ax]
		shape[ax] = int(count)
		step[ax] *= int(st)
	}
	return c.rearrange(n, x, shape, positions(shape, step, base))
}

func (c *graphCompiler) binary(n bundle.Node) error {
	a, b, err := c.in2(n)
	if err != nil {
		return err
	}
	if a.isInt != b.isInt {
		return fmt.Errorf("inputs are of different types (float32 and integer)")
	}
	if (n.Op == "Add" || n.Op == "Mul") && a.konst() && !b.konst() {
		a, b = b, a // commutative: the batch operand first
		n.Inputs = []string{n.Inputs[1], n.Inputs[0]}
	}
	shape, err := broadcastShape(a.shape, b.shape)
	if err != nil {
		return err
	}
	for _, v := range []*gval{a, b} {
		// The batch is the first dimension of the result: a runtime
		// operand has the result's rank (its batch is not broadcast
		// along another dimension), and a constant of that rank has 1
		// there (it is not a per-row tensor of a fixed batch size).
		switch {
		case !v.konst() && len(v.shape) != len(shape):
			return fmt.Errorf("shapes %v and %v broadcast to %v: the batch dimension would be broadcast against another one (rows would mix)", a.shape, b.shape, shape)
		case v.konst() && len(v.shape) == len(shape) && len(shape) > 0 && v.shape[0] != 1 && (!a.konst() || !b.konst()):
			return fmt.Errorf("constant of shape %v has a batch dimension of %d: only 1 broadcasts along the batch", v.shape, v.shape[0])
		}
	}
	op := map[string]int{"Add": opAdd, "Sub": opSub, "Mul": opMul, "Div": opDiv}[n.Op]
	as, bs := broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape)
	if a.konst() && b.konst() {
		out := &gval{shape: shape, isInt: a.isInt}
		if a.isInt {
			out.ci = make([]int64, size(shape))
			err = binaryK(op, out.ci, a.ci, as, b.ci, bs, shape)
		} else {
			out.cf = make([]float32, size(shape))
			err = binaryK(op, out.cf, a.cf, as, b.cf, bs, shape)
		}
		if err != nil {
			return err
		}
		return c.set(n, out)
	}
	// x·W (+ b): a constant bias added to a linear layer joins it.
	if op == opAdd && !a.isInt {
		lin, bias, li := a, b, 0
		if b.rt != nil && b.rt.pending == pendingLinear {
			lin, bias, li = b, a, 1
		}
		if lin.rt != nil && lin.rt.pending == pendingLinear && lin.rt.b == nil && !lin.rt.relu && bias.konst() && c.fusible(n, li, lin) && slices.Equal(shape, lin.shape) {
			if vec, ok := rowVector(bias, lin.rt.out); ok {
				r := *lin.rt
				r.b, r.by = vec, ""
				return c.set(n, &gval{shape: shape, rt: &r})
			}
		}
	}
	// Offsets added to index columns: kept pending, so that a table
	// lookup adds them as it reads the columns.
	if op == opAdd && a.isInt && !a.konst() && b.konst() && len(a.shape) == 2 && slices.Equal(shape, a.shape) {
		if out, ok, err := c.offsetColumns(n, a, b); ok || err != nil {
			if err != nil {
				return err
			}
			return c.set(n, out)
		}
	}
	var ins []*gval
	for _, v := range []*gval{a, b} {
		if !v.konst() {
			ins = append(ins, v)
		}
	}
	var ka32 []int32
	konst := a
	if a.konst() == b.konst() {
		konst = nil
	} else if b.konst() {
		konst = b
	}
	if konst != nil && konst.isInt {
		if ka32, err = toInt32(konst.ci); err != nil {
			return err
		}
	}
	out, err := c.runtimeOp(n, ins, shape, a.isInt, func(in []*tensor.Dense, out *tensor.Dense) error {
		if a.isInt {
			x, y := ka32, ka32
			switch konst {
			case nil:
				x, y = in[0].Int32s(), in[1].Int32s()
			case a:
				y = in[0].Int32s()
			default:
				x = in[0].Int32s()
			}
			return rowError(binaryK(op, out.Int32s(), x, as, y, bs, shape), size(shape[1:]))
		}
		x, y := []float32(nil), []float32(nil)
		switch konst {
		case nil:
			x, y = in[0].Float32s(), in[1].Float32s()
		case a:
			x, y = a.cf, in[0].Float32s()
		default:
			x, y = in[0].Float32s(), b.cf
		}
		return rowError(binaryK(op, out.Float32s(), x, as, y, bs, shape), size(shape[1:]))
	})
	if err != nil {
		return err
	}
	// Offsets added to (or subtracted from) indices keep their bounds known.
	if a.isInt && konst == b && a.lo != nil && (op == opAdd || op == opSub) && slices.Equal(shape, a.shape) {
		row := append([]int{1}, a.rowShape()...)
		zero := make([]int64, size(row))
		off := make([]int64, len(zero))
		if binaryK(opAdd, off, zero, broadcastStrides(row, row), b.ci, broadcastStrides(b.shape, row), row) == nil {
			out.lo, out.hi, out.src = make([]int64, len(off)), make([]int64, len(off)), a.src
			for i, o := range off {
				if op == opSub {
					o = -o
				}
				out.lo[i], out.hi[i] = a.lo[i]+o, a.hi[i]+o
			}
		}
	}
	return c.set(n, out)
}

// offsetColumns is a + b for a (batch, w) index tensor a and a constant b
// that broadcasts along the row (w values, or one): pending columns with
// offsets, when a is a plain tensor or pending columns read by this node
// only; ok is false otherwise.
func (c *graphCompiler) offsetColumns(n bundle.Node, a, b *gval) (*gval, bool, error) {
	w := a.shape[1]
	for _, d := range b.shape[:max(len(b.shape)-1, 0)] {
		if d != 1 {
			return nil, false, nil
		}
	}
	if len(b.ci) != w && len(b.ci) != 1 {
		return nil, false, nil
	}
	add, err := toInt32(b.ci)
	if err != nil {
		return nil, false, err
	}
	r := &rtensor{pending: pendingColumns, name: n.Name, src: a, offsets: make([]int32, w)}
	switch {
	case a.rt.pending == pendingColumns && c.fusible(n, 0, a):
		r.src, r.cols = a.rt.src, a.rt.cols
		if a.rt.offsets != nil {
			copy(r.offsets, a.rt.offsets)
		}
	case a.rt.pending == pendingNone:
		r.cols = make([]int, w)
		for i := range r.cols {
			r.cols[i] = i
		}
		if c.uses[n.Inputs[0]] > 1 {
			a.rt.shared = true
		}
	default:
		return nil, false, nil
	}
	for i := range r.offsets {
		r.offsets[i] += add[i%len(add)]
	}
	out := &gval{shape: a.shape, isInt: true, rt: r}
	if a.lo != nil {
		out.lo, out.hi, out.src = make([]int64, w), make([]int64, w), a.src
		for i := range w {
			o := int64(add[i%len(add)])
			out.lo[i], out.hi[i] = a.lo[i]+o, a.hi[i]+o
		}
	}
	return out, true, nil
}

// rowVector is a constant that broadcasts along the last dimension only
// (shape [], [1], [n] or [1, ..., 1, n]), as n values.
func rowVector(v *gval, n int) ([]float32, bool) {
	for _, d := range v.shape[:max(len(v.shape)-1, 0)] {
		if d != 1 {
			return nil, false
		}
	}
	switch len(v.cf) {
	case n:
		return v.cf, true
	case 1:
		out := make([]float32, n)
		for i := range out {
			out[i] = v.cf[0]
		}
		return out, true
	}
	return nil, false
}

func toInt32(v []int64) ([]int32, error) {
	out := make([]int32, len(v))
	for i, x := range v {
		if x != int64(int32(x)) {
			return nil, fmt.Errorf("integer constant %d does not fit the int32 indices scorer computes with", x)
		}
		out[i] = int32(x)
	}
	return out, nil
}

func (c *graphCompiler) gather(n bundle.Node) error {
	data, idx, err := c.in2(n)
	if err != nil {
		return err
	}
	if !idx.isInt {
		return fmt.Errorf("indices are float32, want integers")
	}
	axis, err := normAxis(n.Int("axis", 0), len(data.shape))
	if err != nil {
		return err
	}
	shape := slices.Concat(data.shape[:axis], idx.shape, data.shape[axis+1:])
	dim := data.shape[axis]
	switch {
	case data.konst() && idx.konst():
		out := &gval{shape: shape, isInt: data.isInt}
		if data.batch != nil {
			out.batch = make([]bool, size(shape))
			_ = gatherK(out.batch, data.batch, data.shape, axis, idx.ci) // the same indices, checked below
		}
		if data.isInt {
			out.ci = make([]int64, size(shape))
			err = gatherK(out.ci, data.ci, data.shape, axis, idx.ci)
		} else {
			out.cf = make([]float32, size(shape))
			err = gatherK(out.cf, data.cf, data.shape, axis, idx.ci)
		}
		if err != nil {
			return err
		}
		return c.set(n, out)
	case !data.konst() && !idx.konst():
		return fmt.Errorf("gathers a runtime tensor by runtime indices: not supported")
	case data.konst(): // a table looked up by the batch's indices
		if axis != 0 {
			return fmt.Errorf("looks a constant up along axis %d by the batch's indices: the batch would not be the first dimension", axis)
		}
		if err := c.checkBounds(n, idx, dim); err != nil {
			return err
		}
		if axis == 0 && !data.isInt {
			if c.uses[n.Inputs[1]] > 1 {
				idx.rt.shared = true
			}
			r := &rtensor{pending: pendingGather, name: n.Name, table: data.cf, tshape: data.shape, idx: idx}
			r.inPlace = idx.rt.pending == pendingColumns && c.fusible(n, 1, idx)
			return c.set(n, &gval{shape: shape, rt: r})
		}
		var table []int32
		if data.isInt {
			if table, err = toInt32(data.ci); err != nil {
				return err
			}
		}
		out, err := c.runtimeOp(n, []*gval{idx}, shape, data.isInt, func(in []*tensor.Dense, out *tensor.Dense) error {
			if data.isInt {
				return rowError(gatherK(out.Int32s(), table, data.shape, axis, in[0].Int32s()), size(idx.rowShape()))
			}
			return rowError(gatherK(out.Float32s(), data.cf, data.shape, axis, in[0].Int32s()), size(idx.rowShape()))
		})
		if err != nil {
			return err
		}
		if data.isInt && len(data.ci) > 0 { // a lookup of integers: within the table's values
			lo, hi := slices.Min(data.ci), slices.Max(data.ci)
			w := size(shape[1:])
			out.lo, out.hi, out.src = make([]int64, w), make([]int64, w), make([]string, w)
			for i := range w {
				out.lo[i], out.hi[i], out.src[i] = lo, hi, fmt.Sprintf("the values of %q", n.Inputs[0])
			}
		}
		return c.set(n, out)
	}
	// Columns of the batch picked by constant indices.
	if axis == 0 {
		return fmt.Errorf("gathers along the batch dimension: rows would mix")
	}
	for _, i := range idx.ci {
		if i < int64(-dim) || i >= int64(dim) {
			return fmt.Errorf("index %d out of range [%d, %d)", i, -dim, dim)
		}
	}
	var out *gval
	if data.isInt && len(data.shape) == 2 && len(idx.shape) <= 1 {
		// Columns of an index matrix: kept pending, so that a table
		// lookup can read them in place.
		cols := make([]int, len(idx.ci))
		for i, v := range idx.ci {
			cols[i] = int((v + int64(dim)) % int64(dim))
		}
		if c.uses[n.Inputs[0]] > 1 {
			data.rt.shared = true
		}
		out = &gval{shape: shape, isInt: true, rt: &rtensor{pending: pendingColumns, name: n.Name, src: data, cols: cols}}
	} else if out, err = c.runtimeOp(n, []*gval{data}, shape, data.isInt, func(in []*tensor.Dense, out *tensor.Dense) error {
		if data.isInt {
			return gatherK(out.Int32s(), in[0].Int32s(), data.shape, axis, idx.ci)
		}
		return gatherK(out.Float32s(), in[0].Float32s(), data.shape, axis, idx.ci)
	}); err != nil {
		return err
	}
	if data.lo != nil { // which row element each output element reads
		pos := make([]int64, size(data.rowShape()))
		for i := range pos {
			pos[i] = int64(i)
		}
		picked := make([]int64, size(shape[1:]))
		if gatherK(picked, pos, data.rowShape(), axis-1, idx.ci) == nil {
			out.lo, out.hi, out.src = make([]int64, len(picked)), make([]int64, len(picked)), make([]string, len(picked))
			for i, p := range picked {
				out.lo[i], out.hi[i], out.src[i] = data.lo[p], data.hi[p], data.src[p]
			}
		}
	}
	return c.set(n, out)
}

// checkBounds refuses indices whose known bounds (from the features'
// cardinalities) reach beyond a table of dim rows.
func (c *graphCompiler) checkBounds(n bundle.Node, idx *gval, dim int) error {
	for i := range idx.lo {
		if idx.lo[i] < int64(-dim) || idx.hi[i] >= int64(dim) {
			return fmt.Errorf("%s gives indices in [%d, %d] but table %q has %d rows: the spec's cardinality for it does not fit the model",
				idx.src[i], idx.lo[i], idx.hi[i], n.Inputs[0], dim)
		}
	}
	return nil
}

// concatPart is one input of a fused Concat: a runtime tensor copied, or
// rows of an embedding table gathered by indices.
type concatPart struct {
	chunk int // floats per row
	// gather
	table []float32
	e     int // floats per table row
	k     int // indices per row
	dim   int // table rows
	// The indices are columns cols of an index tensor of srcW columns
	// plus offsets, or (cols nil) the k values per row of their own tensor.
	cols    []int
	offsets []int32
	srcW    int
}

func (c *graphCompiler) concat(n bundle.Node) error {
	if len(n.Inputs) == 0 {
		return fmt.Errorf("has no inputs")
	}
	parts := make([]*gval, len(n.Inputs))
	for i := range n.Inputs {
		v, err := c.in(n, i)
		if err != nil {
			return err
		}
		parts[i] = v
	}
	axis, err := normAxis(n.Int("axis", 0), len(parts[0].shape))
	if err != nil {
		return err
	}
	shape := slices.Clone(parts[0].shape)
	shape[axis] = 0
	allConst := true
	for _, p := range parts {
		if len(p.shape) != len(shape) || p.isInt != parts[0].isInt {
			return fmt.Errorf("inputs differ in rank or type")
		}
		for d := range shape {
			if d != axis && p.shape[d] != shape[d] {
				return fmt.Errorf("input shapes %v and %v do not concatenate along axis %d", parts[0].shape, p.shape, axis)
			}
		}
		shape[axis] += p.shape[axis]
		allConst = allConst && p.konst()
	}
	shapes := make([][]int, len(parts))
	for i, p := range parts {
		shapes[i] = p.shape
	}
	if allConst {
		out := &gval{shape: shape, isInt: parts[0].isInt}
		if out.isInt {
			out.ci = make([]int64, size(shape))
			concatK(out.ci, mapParts(parts, func(v *gval) []int64 { return v.ci }), shapes, axis)
			if slices.ContainsFunc(parts, func(v *gval) bool { return v.batch != nil }) {
				out.batch = make([]bool, size(shape))
				concatK(out.batch, mapParts(parts, func(v *gval) []bool {
					if v.batch == nil {
						return make([]bool, len(v.ci))
					}
					return v.batch
				}), shapes, axis)
			}
		} else {
			out.cf = make([]float32, size(shape))
			concatK(out.cf, mapParts(parts, func(v *gval) []float32 { return v.cf }), shapes, axis)
		}
		return c.set(n, out)
	}
	for i, p := range parts {
		if p.konst() {
			return fmt.Errorf("input %q is a constant: concatenating constants with the batch is not supported", n.Inputs[i])
		}
	}
	if axis == 0 {
		return fmt.Errorf("concatenates along the batch dimension: rows would mix")
	}
	if parts[0].isInt || axis == 0 || size(shape[:axis]) != c.batch {
		return c.concatRuntime(n, parts, shapes, shape, axis)
	}
	// One row of the output per row of the batch: the parts' rows side by
	// side, gathers fused in.
	var ins []*gval
	spec := make([]concatPart, len(parts))
	for i, p := range parts {
		spec[i].chunk = size(p.rowShape())
		if p.rt.pending == pendingGather && c.fusible(n, i, p) {
			r := p.rt
			spec[i].table, spec[i].dim = r.table, r.tshape[0]
			spec[i].e = size(r.tshape[1:])
			spec[i].k = size(r.idx.rowShape())
			if r.inPlace { // read the index columns in place
				spec[i].cols, spec[i].offsets, spec[i].srcW = r.idx.rt.cols, r.idx.rt.offsets, size(r.idx.rt.src.rowShape())
				ins = append(ins, r.idx.rt.src)
				continue
			}
			ins = append(ins, r.idx)
			continue
		}
		ins = append(ins, p)
	}
	width := size(shape[1:])
	kmax := 0
	for _, p := range spec {
		kmax = max(kmax, p.k)
	}
	buf := make([]int32, concatBlock*kmax)
	out, err := c.runtimeOp(n, ins, shape, false, func(in []*tensor.Dense, out *tensor.Dense) error {
		return concatRows(out.Float32s(), width, spec, in, c.batch, buf)
	})
	if err != nil {
		return err
	}
	return c.set(n, out)
}

func mapParts[T any](parts []*gval, f func(*gval) []T) [][]T {
	out := make([][]T, len(parts))
	for i, p := range parts {
		out[i] = f(p)
	}
	return out
}

// concatRuntime is Concat of runtime tensors without fusion.
func (c *graphCompiler) concatRuntime(n bundle.Node, parts []*gval, shapes [][]int, shape []int, axis int) error {
	isInt := parts[0].isInt
	fs, is := make([][]float32, len(parts)), make([][]int32, len(parts))
	out, err := c.runtimeOp(n, parts, shape, isInt, func(in []*tensor.Dense, out *tensor.Dense) error {
		for i, t := range in {
			if isInt {
				is[i] = t.Int32s()
			} else {
				fs[i] = t.Float32s()
			}
		}
		if isInt {
			concatK(out.Int32s(), is, shapes, axis)
		} else {
			concatK(out.Float32s(), fs, shapes, axis)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if isInt && axis > 0 && all(parts, func(p *gval) bool { return p.lo != nil }) {
		row := make([][]int, len(parts))
		los, his, srcs := make([][]int64, len(parts)), make([][]int64, len(parts)), make([][]string, len(parts))
		for i, p := range parts {
			row[i], los[i], his[i], srcs[i] = p.rowShape(), p.lo, p.hi, p.src
		}
		w := size(shape[1:])
		out.lo, out.hi, out.src = make([]int64, w), make([]int64, w), make([]string, w)
		concatK(out.lo, los, row, axis-1)
		concatK(out.hi, his, row, axis-1)
		concatK(out.src, srcs, row, axis-1)
	}
	return c.set(n, out)
}

func all[T any](s []T, f func(T) bool) bool {
	for _, v := range s {
		if !f(v) {
			return false
		}
	}
	return true
}

// concatBlock is how many rows concatRows writes at a time: every part of
// a block before the next block, so that the block's output stays in cache
// while the parts (often one per feature) fill it.
const concatBlock = 32

// concatRows writes each row of the batch: every part's row in order, a
// gather part's table rows looked up by its indices (buf: concatBlock·k of
// scratch for them).
func concatRows(out []float32, width int, spec []concatPart, in []*tensor.Dense, rows int, buf []int32) error {
	for r0 := 0; r0 < rows; r0 += concatBlock {
		n := min(concatBlock, rows-r0)
		off := 0
		for i, p := range spec {
			if p.table == nil {
				src := in[i].Float32s()
				for r := r0; r < r0+n; r++ {
					copy(out[r*width+off:r*width+off+p.chunk], src[r*p.chunk:(r+1)*p.chunk])
				}
				off += p.chunk
				continue
			}
			idx := buf[:n*p.k]
			if p.cols != nil {
				pickColumns(idx, in[i].Int32s(), p.srcW, p.cols, p.offsets, r0, r0+n)
			} else {
				copy(idx, in[i].Int32s()[r0*p.k:(r0+n)*p.k])
			}
			for j, v := range idx {
				if v < 0 && int(v) >= -p.dim {
					v += int32(p.dim) // ONNX: from the end
					idx[j] = v
				}
				if v < 0 || int(v) >= p.dim {
					return &RowError{Row: r0 + j/p.k, Err: fmt.Errorf("index %d out of range [%d, %d)", v, -p.dim, p.dim)}
				}
			}
			dst := out[r0*width+off:]
			if p.e == 16 {
				kernels.Gather16(dst, width, p.table, idx, n, p.k) // -1: checked above
			} else {
				for r := range n {
					row := dst[r*width:]
					for c, v := range idx[r*p.k : (r+1)*p.k] {
						copy(row[c*p.e:(c+1)*p.e], p.table[int(v)*p.e:(int(v)+1)*p.e])
					}
				}
			}
			off += p.chunk
		}
	}
	return nil
}

// pickColumns writes columns cols of rows [from, to) of src (w columns),
// plus offsets if any, to dst, row by row.
func pickColumns(dst, src []int32, w int, cols []int, offsets []int32, from, to int) {
	k := len(cols)
	for r := from; r < to; r++ {
		row := src[r*w : (r+1)*w]
		d := dst[(r-from)*k : (r-from+1)*k]
		if offsets == nil {
			for j, c := range cols {
				d[j] = row[c]
			}
			continue
		}
		for j, c := range cols {
			d[j] = row[c] + offsets[j]
		}
	}
}

func (c *graphCompiler) matmul(n bundle.Node) error {
	a, b, err := c.in2(n)
	if err != nil {
		return err
	}
	if a.isInt || b.isInt {
		return fmt.Errorf("integer matrix products are not supported")
	}
	gemm := n.Op == "Gemm"
	if !gemm && !a.konst() && !b.konst() {
		return c.batchedMatMul(n, a, b)
	}
	if a.konst() || !b.konst() {
		return fmt.Errorf("only a runtime tensor times a constant weight matrix, or two runtime tensors of the same batch ([batch, ..., m, k] x [batch, ..., k, n]), are supported")
	}
	if len(a.shape) < 2 {
		return fmt.Errorf("input %q has shape %v, want at least [batch, k]", n.Inputs[0], a.shape)
	}
	alpha, beta := float32(1), float32(1)
	if gemm {
		if n.Int("transA", 0) != 0 {
			return fmt.Errorf("transA=1 would multiply across the batch: not supported")
		}
		if len(a.shape) != 2 || len(b.shape) != 2 {
			return fmt.Errorf("a Gemm takes matrices; shapes %v and %v", a.shape, b.shape)
		}
		alpha, beta = n.Float("alpha", 1), n.Float("beta", 1)
	}
	k := a.shape[len(a.shape)-1]
	var w []float32
	var out int
	switch {
	case len(b.shape) == 1 && !gemm:
		out, w = 1, b.cf
		if b.shape[0] != k {
			return fmt.Errorf("shapes %v and %v do not multiply", a.shape, b.shape)
		}
	case len(b.shape) == 2:
		rows, cols := b.shape[0], b.shape[1]
		w = b.cf
		if gemm && n.Int("transB", 0) != 0 { // [out, in] -> [in, out]
			w = make([]float32, len(b.cf))
			for i := range rows {
				for j := range cols {
					w[j*rows+i] = b.cf[i*cols+j]
				}
			}
			rows, cols = cols, rows
		}
		if rows != k {
			return fmt.Errorf("shapes %v and %v do not multiply", a.shape, b.shape)
		}
		out = cols
	default:
		return fmt.Errorf("weight %q has shape %v: batched products are not supported", n.Inputs[1], b.shape)
	}
	if alpha != 1 {
		w = scaled(w, alpha)
	}
	shape := slices.Clone(a.shape[:len(a.shape)-1])
	if len(b.shape) == 2 {
		shape = append(shape, out)
	}
	r := &rtensor{pending: pendingLinear, name: n.Name, x: a, w: w, in: k, out: out, rows: size(a.shape[:len(a.shape)-1])}
	if c.uses[n.Inputs[0]] > 1 {
		a.rt.shared = true
	}
	if gemm {
		cv, err := c.optIn(n, 2)
		if err != nil {
			return err
		}
		if cv != nil {
			if !cv.konst() || cv.isInt {
				return fmt.Errorf("input C must be a float32 constant")
			}
			vec, ok := rowVector(cv, out)
			if !ok {
				return fmt.Errorf("input C of shape %v is not a bias row of %d values", cv.shape, out)
			}
			if beta != 1 {
				vec = scaled(vec, beta)
			}
			r.b = vec
		}
	}
	return c.set(n, &gval{shape: shape, rt: r})
}

// lookupSum is a sum (or mean) over every row element of scalar table
// lookups (a Gather of a [V] or [V, 1] table by (batch, m) indices: a
// logistic regression's weights) as one op that adds the table values as
// it looks them up, reading index columns in place; ok is false for any
// other reduction.
func (c *graphCompiler) lookupSum(n bundle.Node, x *gval, marked []bool, shape []int, mean bool) (*gval, bool) {
	r := x.rt
	if r.pending != pendingGather || !c.fusible(n, 0, x) || size(r.tshape[1:]) != 1 || x.isInt {
		return nil, false
	}
	for i, d := range x.shape[1:] {
		if !marked[i+1] && d != 1 {
			return nil, false
		}
	}
	m := size(r.idx.rowShape())
	in, cols, offsets, srcW := r.idx, []int(nil), []int32(nil), 0
	if r.inPlace {
		in, cols, offsets, srcW = r.idx.rt.src, r.idx.rt.cols, r.idx.rt.offsets, size(r.idx.rt.src.rowShape())
	}
	table, dim := r.table, r.tshape[0]
	buf := make([]int32, m)
	out, err := c.runtimeOp(n, []*gval{in}, shape, false, func(ts []*tensor.Dense, out *tensor.Dense) error {
		src, dst := ts[0].Int32s(), out.Float32s()
		for row := range c.batch {
			idx := src[row*m : (row+1)*m]
			if cols != nil {
				pickColumns(buf, src, srcW, cols, offsets, row, row+1)
				idx = buf
			}
			var sum float64
			for _, v := range idx {
				i := int(v)
				if i < 0 {
					i += dim // ONNX: from the end
				}
				if i < 0 || i >= dim {
					return &RowError{Row: row, Err: fmt.Errorf("index %d out of range [%d, %d)", v, -dim, dim)}
				}
				sum += float64(table[i])
			}
			if mean {
				sum /= float64(m)
			}
			dst[row] = float32(sum)
		}
		return nil
	})
	if err != nil {
		return nil, false
	}
	return out, true
}

// batchedMatMul is MatMul of two runtime tensors, matrix by matrix for
// each row of the batch (and each of the other leading dimensions): a
// DLRM-style dot interaction, torch.bmm(T, T.transpose(1, 2)).
func (c *graphCompiler) batchedMatMul(n bundle.Node, a, b *gval) error {
	r := len(a.shape)
	if r < 3 || len(b.shape) != r || !slices.Equal(a.shape[:r-2], b.shape[:r-2]) {
		return fmt.Errorf("shapes %v and %v: a product of two runtime tensors needs the same leading dimensions (the batch first) and rank >= 3", a.shape, b.shape)
	}
	m, k, k2, nn := a.shape[r-2], a.shape[r-1], b.shape[r-2], b.shape[r-1]
	if k != k2 {
		return fmt.Errorf("shapes %v and %v do not multiply", a.shape, b.shape)
	}
	shape := append(slices.Clone(a.shape[:r-2]), m, nn)
	mats := size(a.shape[:r-2])
	out, err := c.runtimeOp(n, []*gval{a, b}, shape, false, func(in []*tensor.Dense, out *tensor.Dense) error {
		bmmK(out.Float32s(), in[0].Float32s(), in[1].Float32s(), mats, m, k, nn)
		return nil
	})
	if err != nil {
		return err
	}
	return c.set(n, out)
}

func scaled(v []float32, s float32) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = x * s
	}
	return out
}

func (c *graphCompiler) reduce(n bundle.Node) error {
	x, err := c.in(n, 0)
	if err != nil {
		return err
	}
	var axes []int64
	axesInput := n.Op == "ReduceSum" || c.gr.Opset >= 18
	switch {
	case axesInput && len(n.Inputs) > 1 && n.Inputs[1] != "":
		if axes, err = c.constInts(n, 1); err != nil {
			return err
		}
	case !axesInput:
		axes = n.Ints["axes"]
	}
	marked := make([]bool, len(x.shape))
	if len(axes) == 0 {
		if n.Int("noop_with_empty_axes", 0) != 0 {
			return c.view(n, x, x.shape)
		}
		for i := range marked {
			marked[i] = true
		}
	}
	for _, a := range axes {
		i, err := normAxis(a, len(x.shape))
		if err != nil {
			return err
		}
		marked[i] = true
	}
	keep := n.Int("keepdims", 1) != 0
	var shape, full []int
	for i, d := range x.shape {
		if marked[i] {
			full = append(full, 1)
			if keep {
				shape = append(shape, 1)
			}
		} else {
			full = append(full, d)
			shape = append(shape, d)
		}
	}
	mean := n.Op == "ReduceMean"
	st, count := reduceStrides(x.shape, marked)
	if x.konst() {
		out := &gval{shape: shape, isInt: x.isInt}
		if x.isInt {
			out.ci = make([]int64, size(full))
			reduceK(out.ci, x.ci, x.shape, st, count, mean, make([]float64, len(out.ci)))
		} else {
			out.cf = make([]float32, size(full))
			reduceK(out.cf, x.cf, x.shape, st, count, mean, make([]float64, len(out.cf)))
		}
		return c.set(n, out)
	}
	if marked[0] {
		return fmt.Errorf("reduces over the batch dimension: rows would mix")
	}
	if out, ok := c.lookupSum(n, x, marked, shape, mean); ok {
		return c.set(n, out)
	}
	acc := make([]float64, size(full))
	out, err := c.runtimeOp(n, []*gval{x}, shape, x.isInt, func(in []*tensor.Dense, out *tensor.Dense) error {
		if x.isInt {
			reduceK(out.Int32s(), in[0].Int32s(), x.shape, st, count, mean, acc)
		} else {
			reduceK(out.Float32s(), in[0].Float32s(), x.shape, st, count, mean, acc)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.set(n, out)
}
