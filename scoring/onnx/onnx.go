// Package onnx imports ONNX models into scorer's bundles (`scorer import
// onnx`): it reads the ONNX protobuf, keeps the nodes the chosen output
// depends on, binds the graph's inputs to the feature spec's outputs, and
// writes a bundle of arch kind graph (bundle.Graph in model.yaml, the
// float32 initializers in weights.safetensors) that package scoring
// compiles into the same fused Gorgonia graph as its own models. The
// import compiles the graph, so everything scorer cannot run is refused
// here, naming the node, its operator and the opset, never at scoring time.
//
// docs/models.md lists the operators, the binding rules and the limits.
package onnx

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/onnx/internal/onnxpb"
)

// ErrUnsupported marks an ONNX model that scorer cannot import: the error
// says what (an operator, a dynamic shape, a data type) and where. Test
// with errors.Is; such errors also wrap bundle.ErrInvalid.
var ErrUnsupported = errors.New("unsupported ONNX model")

// Options say how to import.
type Options struct {
	// Name and Version of the bundle (its model_name and model_version in
	// every score row). Version defaults to the first 12 hex digits of the
	// file's SHA-256.
	Name, Version string
	// Spec computes the model's inputs; Stats are its fitted statistics,
	// needed when the spec standardizes or has vocabularies.
	Spec  features.Spec
	Stats features.Stats
	// Bind maps graph inputs to feature names, in the order of the input's
	// values per row. Inputs it leaves out are bound by the default rules
	// (docs/models.md).
	Bind map[string][]string
	// Output names the graph output to score with; default: the only one.
	Output string
	// OutputKind is bundle.OutputProbability (default: the output is a
	// Sigmoid's) or bundle.OutputLogit.
	OutputKind string
	// File names the source for the bundle's record.
	File string
}

// Import turns the bytes of an .onnx file into a bundle, checked to
// compile. Errors of models that scorer cannot run wrap ErrUnsupported.
func Import(data []byte, opts Options) (*bundle.Bundle, error) {
	m := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(data, m); err != nil {
		return nil, unsupported("not an ONNX model: %v", err)
	}
	if m.GetGraph() == nil {
		return nil, unsupported("the model has no graph")
	}
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	opset, err := defaultOpset(m)
	if err != nil {
		return nil, err
	}
	if err := opts.Spec.Validate(); err != nil {
		return nil, fmt.Errorf("import onnx: %w", err)
	}
	pipe, err := features.NewPipeline(opts.Spec, opts.Stats)
	if err != nil {
		return nil, fmt.Errorf("import onnx: %w", err)
	}
	if ins := pipe.Images(); len(ins) > 0 {
		return nil, fmt.Errorf("import onnx: %w: feature %q is an image feature: an imported graph cannot read images yet (docs/images.md)", ErrUnsupported, ins[0].Name)
	}
	im := &importer{g: m.GetGraph(), opset: opset, weights: map[string]*bundle.Param{}, consts: map[string]bundle.IntTensor{}}
	gr := &bundle.Graph{
		Opset: int(opset),
		Source: bundle.GraphSource{
			File: opts.File, SHA256: digest, IRVersion: m.GetIrVersion(),
			Producer: m.GetProducerName(), ProducerVersion: m.GetProducerVersion(),
		},
		Output: bundle.GraphOutput{Kind: opts.OutputKind},
	}
	if gr.Output.Kind == "" {
		gr.Output.Kind = bundle.OutputProbability
	}
	if gr.Output.Name, err = im.output(opts.Output); err != nil {
		return nil, err
	}
	if gr.Nodes, err = im.nodes(gr.Output.Name); err != nil {
		return nil, err
	}
	read := map[string]bool{} // what the kept nodes read
	for _, n := range gr.Nodes {
		for _, in := range n.Inputs {
			read[in] = true
		}
	}
	if err := im.initializers(read); err != nil {
		return nil, err
	}
	runtime := im.runtimeInputs(read)
	if gr.Inputs, err = im.inputs(opts.Spec, opts.Bind, runtime); err != nil {
		return nil, err
	}
	gr.BatchOne = batchOne(runtime)
	gr.Constants = im.consts
	stackTables(gr, im.weights, opts.Spec, pipe.Cardinalities())
	gr.Nodes = prune(gr.Nodes, gr.Output.Name)
	used := map[string]bool{}
	for _, n := range gr.Nodes {
		for _, in := range n.Inputs {
			used[in] = true
		}
		for _, t := range n.Tensors {
			used[t] = true
		}
	}
	for name := range im.weights { // initializers no kept node reads
		if !used[name] {
			delete(im.weights, name)
		}
	}
	for name := range im.consts {
		if !used[name] {
			delete(im.consts, name)
		}
	}
	if len(im.consts) == 0 {
		gr.Constants = nil
	}
	bu := &bundle.Bundle{
		Name:     opts.Name,
		Version:  opts.Version,
		Arch:     bundle.Architecture{Kind: bundle.GraphKind},
		Inputs:   bundle.Inputs{Dense: pipe.Dense(), Cardinalities: pipe.Cardinalities()},
		Features: opts.Spec,
		Stats:    opts.Stats,
		Graph:    gr,
		Weights:  im.weights,
	}
	if bu.Version == "" {
		bu.Version = digest[:12]
	}
	if err := bu.Validate(); err != nil {
		return nil, fmt.Errorf("import onnx: %w", err)
	}
	// Compile as a run would. The compiler tracks the batch as an axis, not
	// a size, so one batch size stands for all of them (the parity tests
	// score at 1, 7, 64 and 1024).
	model, err := scoring.NewModel(bu, 1)
	if err != nil {
		return nil, fmt.Errorf("import onnx: %w: %w", ErrUnsupported, err)
	}
	_ = model.Close()
	return bu, nil
}

func unsupported(format string, args ...any) error {
	return fmt.Errorf("import onnx: %w: %w: %s", ErrUnsupported, bundle.ErrInvalid, fmt.Sprintf(format, args...))
}

// defaultOpset is the version of the default operator set, which must be
// one scorer supports; other domains are refused where a node uses them.
func defaultOpset(m *onnxpb.ModelProto) (int64, error) {
	for _, o := range m.GetOpsetImport() {
		if o.GetDomain() == "" || o.GetDomain() == "ai.onnx" {
			v := o.GetVersion()
			if v < scoring.MinOpset || v > scoring.MaxOpset {
				return 0, unsupported("opset %d is not supported: export with an opset from %d to %d", v, scoring.MinOpset, scoring.MaxOpset)
			}
			return v, nil
		}
	}
	return 0, unsupported("the model imports no default (ai.onnx) opset")
}

type importer struct {
	g       *onnxpb.GraphProto
	opset   int64
	weights map[string]*bundle.Param
	consts  map[string]bundle.IntTensor
}

func (im *importer) output(name string) (string, error) {
	var names []string
	for _, o := range im.g.GetOutput() {
		names = append(names, o.GetName())
	}
	switch {
	case name != "" && slices.Contains(names, name):
		return name, nil
	case name != "":
		return "", unsupported("the graph has no output %q (outputs: %s)", name, strings.Join(names, ", "))
	case len(names) == 1:
		return names[0], nil
	}
	return "", unsupported("the graph has %d outputs (%s): choose one with --output", len(names), strings.Join(names, ", "))
}

// initializers converts the initializers the kept nodes read; others (a
// second head's weights, say) are left out whatever their type.
func (im *importer) initializers(read map[string]bool) error {
	for _, t := range im.g.GetInitializer() {
		if !read[t.GetName()] {
			continue
		}
		if err := im.tensor(t.GetName(), fmt.Sprintf("initializer %q", t.GetName()), t); err != nil {
			return err
		}
	}
	for _, t := range im.g.GetSparseInitializer() {
		if read[t.GetValues().GetName()] {
			return unsupported("initializer %q is sparse: not supported", t.GetValues().GetName())
		}
	}
	return nil
}

// maxTensorValues bounds a tensor's values (8 GiB of float32): a larger
// shape is a malformed file, refused before anything is allocated.
const maxTensorValues = 1 << 31

// tensor keeps an initializer (or a Constant's value) under name: float32
// as a weight, integers as a constant. what names it in messages.
func (im *importer) tensor(name, what string, t *onnxpb.TensorProto) error {
	if t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return unsupported("%s is stored outside the file (external data): save the model with its weights inside", what)
	}
	if t.GetSegment() != nil {
		return unsupported("%s is segmented", what)
	}
	shape := make([]int, len(t.GetDims()))
	n := 1
	for i, d := range t.GetDims() {
		if d < 0 || (d > 0 && int64(n) > maxTensorValues/d) {
			return unsupported("%s has dimensions %v", what, t.GetDims())
		}
		shape[i] = int(d)
		n *= int(d)
	}
	raw := t.GetRawData()
	switch onnxpb.TensorProto_DataType(t.GetDataType()) {
	case onnxpb.TensorProto_FLOAT:
		switch {
		case raw != nil && len(raw) != 4*n:
			return unsupported("%s has %d bytes of data for %d floats", what, len(raw), n)
		case raw == nil && len(t.GetFloatData()) != n:
			return unsupported("%s has %d values for shape %v", what, len(t.GetFloatData()), shape)
		}
		p := &bundle.Param{Shape: shape, Data: make([]float32, n)}
		if raw != nil {
			for i := range p.Data {
				p.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
		} else {
			copy(p.Data, t.GetFloatData())
		}
		im.weights[name] = p
	case onnxpb.TensorProto_BOOL: // flags (Dropout's training_mode): 0 or 1
		if n > bundle.MaxConstantValues {
			return unsupported("boolean %s has %d values; scorer keeps such constants in model.yaml, up to %d", what, n, bundle.MaxConstantValues)
		}
		c := bundle.IntTensor{Shape: shape, Values: make([]int64, n)}
		switch {
		case raw != nil && len(raw) == n:
			for i, b := range raw {
				c.Values[i] = int64(min(b, 1))
			}
		case raw == nil && len(t.GetInt32Data()) == n:
			for i, v := range t.GetInt32Data() {
				c.Values[i] = int64(min(max(v, 0), 1))
			}
		default:
			return unsupported("%s does not hold %d values of shape %v", what, n, shape)
		}
		im.consts[name] = c
	case onnxpb.TensorProto_INT64, onnxpb.TensorProto_INT32:
		if n > bundle.MaxConstantValues {
			return unsupported("integer %s has %d values; scorer keeps integer constants in model.yaml, up to %d", what, n, bundle.MaxConstantValues)
		}
		c := bundle.IntTensor{Shape: shape, Values: make([]int64, n)}
		wide := t.GetDataType() == int32(onnxpb.TensorProto_INT64)
		switch {
		case raw != nil && wide && len(raw) == 8*n:
			for i := range c.Values {
				c.Values[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
			}
		case raw != nil && !wide && len(raw) == 4*n:
			for i := range c.Values {
				c.Values[i] = int64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
			}
		case raw == nil && wide && len(t.GetInt64Data()) == n:
			copy(c.Values, t.GetInt64Data())
		case raw == nil && !wide && len(t.GetInt32Data()) == n:
			for i, v := range t.GetInt32Data() {
				c.Values[i] = int64(v)
			}
		default:
			return unsupported("%s does not hold %d values of shape %v", what, n, shape)
		}
		im.consts[name] = c
	default:
		return unsupported("%s has data type %s: scorer computes in float32 with int32/int64 indices", what,
			onnxpb.TensorProto_DataType(t.GetDataType()))
	}
	return nil
}

// nodes converts the nodes that output depends on, in graph order;
// operators and attributes are checked on those only.
func (im *importer) nodes(output string) ([]bundle.Node, error) {
	all := make([]bundle.Node, len(im.g.GetNode()))
	for i, n := range im.g.GetNode() {
		all[i] = bundle.Node{Name: n.GetName(), Op: n.GetOpType(), Inputs: n.GetInput(), Outputs: n.GetOutput()}
	}
	keep := reachable(all, output)
	var out []bundle.Node
	for i, n := range im.g.GetNode() {
		if !keep[i] {
			continue
		}
		bn := all[i]
		where := bn.Describe(int(im.opset))
		if d := n.GetDomain(); d != "" && d != "ai.onnx" {
			return nil, unsupported("%s: operator domain %q is not supported (only the default ONNX operators)", where, d)
		}
		if !slices.Contains(scoring.ImportedOps, bn.Op) {
			return nil, unsupported("%s: operator %s is not supported (supported: %s)", where, bn.Op, strings.Join(scoring.ImportedOps, ", "))
		}
		for _, a := range n.GetAttribute() {
			if err := im.attribute(&bn, a, where); err != nil {
				return nil, err
			}
		}
		out = append(out, bn)
	}
	if len(out) == 0 {
		return nil, unsupported("no node computes output %q", output)
	}
	return out, nil
}

// prune keeps the nodes that output depends on, in order.
func prune(nodes []bundle.Node, output string) []bundle.Node {
	keep := reachable(nodes, output)
	var out []bundle.Node
	for i, n := range nodes {
		if keep[i] {
			out = append(out, n)
		}
	}
	return out
}

// reachable marks the nodes that output depends on.
func reachable(nodes []bundle.Node, output string) []bool {
	producer := map[string]int{}
	for i, n := range nodes {
		for _, o := range n.Outputs {
			producer[o] = i
		}
	}
	keep := make([]bool, len(nodes))
	stack := []string{output}
	for len(stack) > 0 {
		name := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i, ok := producer[name]; ok && !keep[i] {
			keep[i] = true
			stack = append(stack, nodes[i].Inputs...)
		}
	}
	return keep
}

func (im *importer) attribute(bn *bundle.Node, a *onnxpb.AttributeProto, where string) error {
	name := a.GetName()
	if a.GetRefAttrName() != "" {
		return unsupported("%s: attribute %q refers to a function attribute", where, name)
	}
	switch a.GetType() {
	case onnxpb.AttributeProto_INT:
		setMap(&bn.Ints, name, []int64{a.GetI()})
	case onnxpb.AttributeProto_INTS:
		setMap(&bn.Ints, name, slices.Clone(a.GetInts()))
	case onnxpb.AttributeProto_FLOAT:
		setMap(&bn.Floats, name, []float32{a.GetF()})
	case onnxpb.AttributeProto_FLOATS:
		setMap(&bn.Floats, name, slices.Clone(a.GetFloats()))
	case onnxpb.AttributeProto_TENSOR:
		if len(bn.Outputs) == 0 {
			return unsupported("%s: has no output", where)
		}
		key := bn.Outputs[0] + ":" + name // output names are unique in the graph
		if err := im.tensor(key, fmt.Sprintf("%s: attribute %q", where, name), a.GetT()); err != nil {
			return err
		}
		setMap(&bn.Tensors, name, key)
	default:
		return unsupported("%s: attribute %q of type %s is not supported", where, name, a.GetType())
	}
	return nil
}

func setMap[V any](m *map[string]V, k string, v V) {
	if *m == nil {
		*m = map[string]V{}
	}
	(*m)[k] = v
}

// inputs binds the graph's runtime inputs (those not initializers) to
// features: by bind, then by name (an input named as a feature takes
// it), then, for the only float input left, every numeric feature in spec
// order, and for the only integer input left, every index feature in spec
// order.
func (im *importer) inputs(spec features.Spec, bind map[string][]string, runtime []*onnxpb.ValueInfoProto) ([]bundle.GraphInput, error) {
	var numeric, index []string
	kinds := map[string]features.Kind{}
	for _, f := range spec.Features {
		kinds[f.Name] = f.Kind
		if f.Kind == features.Numeric {
			numeric = append(numeric, f.Name)
		} else {
			index = append(index, f.Name)
		}
	}
	var out []bundle.GraphInput
	var unboundFloat, unboundInt []int
	for name := range bind {
		switch {
		case slices.ContainsFunc(im.g.GetInitializer(), func(t *onnxpb.TensorProto) bool { return t.GetName() == name }):
			return nil, unsupported("--bind names %q, an initializer (weights), not an input", name)
		case !slices.ContainsFunc(im.g.GetInput(), func(v *onnxpb.ValueInfoProto) bool { return v.GetName() == name }):
			return nil, unsupported("--bind names input %q, which the graph does not have", name)
		}
	}
	for _, v := range runtime {
		in, err := inputOf(v)
		if err != nil {
			return nil, err
		}
		switch {
		case bind[in.Name] != nil:
			in.Features = bind[in.Name]
		case kinds[in.Name] != "" && size(in.Dims) == 1:
			in.Features = []string{in.Name}
		case in.DType == bundle.Float32:
			unboundFloat = append(unboundFloat, len(out))
		default:
			unboundInt = append(unboundInt, len(out))
		}
		out = append(out, in)
	}
	for _, group := range []struct {
		inputs []int
		feats  []string
		what   string
	}{{unboundFloat, numeric, "numeric"}, {unboundInt, index, "index (categorical, cross, timestamp)"}} {
		if len(group.inputs) > 1 {
			var names []string
			for _, i := range group.inputs {
				names = append(names, out[i].Name)
			}
			return nil, unsupported("inputs %s cannot all take every %s feature: bind them with --bind INPUT=feature,feature,...", strings.Join(names, ", "), group.what)
		}
		if len(group.inputs) == 1 {
			out[group.inputs[0]].Features = group.feats
		}
	}
	for _, in := range out {
		if size(in.Dims) != len(in.Features) {
			return nil, unsupported("input %q of shape [batch%s] takes %d values per row but is bound to %d features (%s): bind it with --bind %s=feature,feature,...",
				in.Name, dimsString(in.Dims), size(in.Dims), len(in.Features), strings.Join(in.Features, ", "), in.Name)
		}
	}
	return out, nil
}

func size(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}

func dimsString(dims []int) string {
	var b strings.Builder
	for _, d := range dims {
		fmt.Fprintf(&b, ", %d", d)
	}
	return b.String()
}

// runtimeInputs are the graph inputs the batch fills: those the kept nodes
// read that are not initializers (older exporters list weights as inputs
// too).
func (im *importer) runtimeInputs(read map[string]bool) []*onnxpb.ValueInfoProto {
	isInit := map[string]bool{}
	for _, t := range im.g.GetInitializer() {
		isInit[t.GetName()] = true
	}
	var out []*onnxpb.ValueInfoProto
	for _, v := range im.g.GetInput() {
		if !isInit[v.GetName()] && read[v.GetName()] {
			out = append(out, v)
		}
	}
	return out
}

// batchOne reports whether every runtime input declares a first dimension
// of exactly 1: a model exported without dynamic axes, for one row, whose
// constant shapes then start with 1 for the batch.
func batchOne(runtime []*onnxpb.ValueInfoProto) bool {
	for _, v := range runtime {
		dims := v.GetType().GetTensorType().GetShape().GetDim()
		if len(dims) == 0 || dims[0].GetDimParam() != "" || dims[0].GetDimValue() != 1 {
			return false
		}
	}
	return len(runtime) > 0
}

// inputOf reads a graph input's type: float32 or int32/int64, its first
// dimension the batch (any), the others fixed.
func inputOf(v *onnxpb.ValueInfoProto) (bundle.GraphInput, error) {
	in := bundle.GraphInput{Name: v.GetName()}
	tt := v.GetType().GetTensorType()
	if tt == nil {
		return in, unsupported("input %q is not a tensor", in.Name)
	}
	switch onnxpb.TensorProto_DataType(tt.GetElemType()) {
	case onnxpb.TensorProto_FLOAT:
		in.DType = bundle.Float32
	case onnxpb.TensorProto_INT32:
		in.DType = bundle.Int32
	case onnxpb.TensorProto_INT64:
		in.DType = bundle.Int64
	default:
		return in, unsupported("input %q has data type %s (float, int32, int64)", in.Name, onnxpb.TensorProto_DataType(tt.GetElemType()))
	}
	dims := tt.GetShape().GetDim()
	if tt.GetShape() == nil || len(dims) == 0 {
		return in, unsupported("input %q has no shape: export with a static shape, the first dimension the batch", in.Name)
	}
	in.Dims = []int{}
	for i, d := range dims[1:] {
		if d.GetDimParam() != "" || d.GetDimValue() <= 0 {
			return in, unsupported("input %q has a dynamic dimension %d (%q): only the first (batch) dimension may be dynamic", in.Name, i+1, d.GetDimParam())
		}
		in.Dims = append(in.Dims, int(d.GetDimValue()))
	}
	return in, nil
}
