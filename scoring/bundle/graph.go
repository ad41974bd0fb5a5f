package bundle

import (
	"fmt"
	"slices"

	"github.com/adtech/scorer/features"
)

// Graph is the computation of an imported model (arch kind "graph"): the
// nodes of an ONNX graph as `scorer import onnx` read them, in ONNX's
// operator vocabulary and semantics (default domain, opset Opset). The
// float32 initializers are the bundle's weights, by their ONNX names; the
// integer ones (shapes, axes, offsets) are Constants. package scoring
// compiles a Graph (docs/models.md lists the operators and the rules).
type Graph struct {
	// Opset is the version of the default ONNX operator set the nodes use.
	Opset int `yaml:"opset"`
	// Source says where the graph came from.
	Source GraphSource `yaml:"source,omitempty"`
	// Inputs are the graph's runtime inputs, each bound to features.
	Inputs []GraphInput `yaml:"inputs"`
	// Output is the value the model's score comes from.
	Output GraphOutput `yaml:"output"`
	// Nodes in topological order.
	Nodes []Node `yaml:"nodes"`
	// Constants are the integer initializers, by name.
	Constants map[string]IntTensor `yaml:"constants,omitempty"`
	// BatchOne: the graph was exported for a batch of one row (every input
	// declares a first dimension of 1, no dynamic axes), so a Reshape to a
	// first dimension of 1 means "the batch".
	BatchOne bool `yaml:"batch_one,omitempty"`
}

// GraphSource records the imported file.
type GraphSource struct {
	File            string `yaml:"file,omitempty"`
	SHA256          string `yaml:"sha256,omitempty"`
	Producer        string `yaml:"producer,omitempty"`
	ProducerVersion string `yaml:"producer_version,omitempty"`
	IRVersion       int64  `yaml:"ir_version,omitempty"`
}

// Element types of graph inputs.
const (
	Float32 = "float32"
	Int32   = "int32"
	Int64   = "int64"
)

// GraphInput is one runtime input of the graph: a tensor of shape
// [batch, len(Features)] (or [batch] for one feature, when Dims is empty)
// filled, row by row, with the model inputs of the named features (numeric
// features for a float32 input, index features for an integer one).
type GraphInput struct {
	Name  string `yaml:"name"`
	DType string `yaml:"dtype"`
	// Dims are the dimensions after the batch dimension.
	Dims     []int    `yaml:"dims,flow"`
	Features []string `yaml:"features,flow"`
}

// Output kinds: what the graph's output value is.
const (
	OutputProbability = "probability" // the graph ends in a Sigmoid
	OutputLogit       = "logit"
)

// GraphOutput names the output value and what it is.
type GraphOutput struct {
	Name string `yaml:"name"`
	Kind string `yaml:"kind"`
}

// Node is one ONNX node. Attributes are kept by type; a scalar attribute
// is a list of one.
type Node struct {
	Name    string               `yaml:"name,omitempty"`
	Op      string               `yaml:"op"`
	Inputs  []string             `yaml:"in,flow"`
	Outputs []string             `yaml:"out,flow"`
	Ints    map[string][]int64   `yaml:"ints,omitempty,flow"`
	Floats  map[string][]float32 `yaml:"floats,omitempty,flow"`
	// Tensors are tensor attributes (Constant's value), as names of
	// weights or constants.
	Tensors map[string]string `yaml:"tensors,omitempty,flow"`
}

// Describe names the node for messages: its name (or first output), op
// type and the graph's opset.
func (n Node) Describe(opset int) string {
	name := n.Name
	if name == "" && len(n.Outputs) > 0 {
		name = "-> " + n.Outputs[0]
	}
	return fmt.Sprintf("node %q (%s, opset %d)", name, n.Op, opset)
}

// Int is the scalar integer attribute name, or def when absent.
func (n Node) Int(name string, def int64) int64 {
	if v, ok := n.Ints[name]; ok && len(v) == 1 {
		return v[0]
	}
	return def
}

// Float is the scalar float attribute name, or def when absent.
func (n Node) Float(name string, def float32) float32 {
	if v, ok := n.Floats[name]; ok && len(v) == 1 {
		return v[0]
	}
	return def
}

// IntTensor is an integer constant: row-major values of the given shape
// (a scalar has no dimensions).
type IntTensor struct {
	Shape  []int   `yaml:"shape,flow"`
	Values []int64 `yaml:"values,flow"`
}

// MaxConstantValues bounds the integer constants kept in model.yaml.
const MaxConstantValues = 1 << 16

// validateGraph checks a graph bundle's description on its own: names
// defined once and before use, inputs bound to known features, every weight
// used. Whether the operators and shapes compute a score is package
// scoring's check (it compiles the graph).
func (bu *Bundle) validateGraph() error {
	g := bu.Graph
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: graph: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	if g == nil {
		return bad("a graph model needs a graph section")
	}
	defined := map[string]bool{}
	define := func(name, what string) error {
		if name == "" {
			return bad("%s has an empty name", what)
		}
		if defined[name] {
			return bad("%q is defined twice (%s)", name, what)
		}
		defined[name] = true
		return nil
	}
	pipe, err := features.NewPipeline(bu.Features, bu.Stats)
	if err != nil {
		return bad("a graph model computes its inputs with its feature spec: %v", err)
	}
	if got := InputsOf(pipe); !got.Equal(bu.Inputs) {
		return bad("inputs %+v are not what the feature spec computes (%+v)", bu.Inputs, got)
	}
	names := map[string]bool{}
	for _, f := range bu.Features.Features {
		names[f.Name] = true
	}
	if len(g.Inputs) == 0 {
		return bad("no inputs")
	}
	for _, in := range g.Inputs {
		if err := define(in.Name, "input"); err != nil {
			return err
		}
		switch in.DType {
		case Float32, Int32, Int64:
		default:
			return bad("input %q has dtype %q (float32, int32, int64)", in.Name, in.DType)
		}
		if len(in.Features) == 0 {
			return bad("input %q is bound to no feature", in.Name)
		}
		for _, f := range in.Features {
			if !names[f] {
				return bad("input %q is bound to %q, which is not a feature of the spec", in.Name, f)
			}
		}
	}
	for name, p := range bu.Weights {
		if err := define(name, "weight"); err != nil {
			return err
		}
		if p == nil || len(p.Data) != p.Size() {
			return bad("weight %q has no data of its shape", name)
		}
	}
	for name, c := range g.Constants {
		if err := define(name, "constant"); err != nil {
			return err
		}
		n := 1
		for _, d := range c.Shape {
			n *= d
		}
		if n != len(c.Values) {
			return bad("constant %q has %d values, want %d for shape %v", name, len(c.Values), n, c.Shape)
		}
	}
	used := map[string]bool{}
	for i, n := range g.Nodes {
		if n.Op == "" {
			return bad("node %d has no op", i)
		}
		for _, in := range n.Inputs {
			if in != "" && !defined[in] {
				return bad("%s uses %q before it is defined", n.Describe(g.Opset), in)
			}
			used[in] = true
		}
		for _, t := range n.Tensors {
			if !defined[t] {
				return bad("%s uses %q, which is not a weight or constant", n.Describe(g.Opset), t)
			}
			used[t] = true
		}
		for _, out := range n.Outputs {
			if out == "" { // an optional output left out
				continue
			}
			if err := define(out, n.Describe(g.Opset)); err != nil {
				return err
			}
		}
	}
	if !defined[g.Output.Name] {
		return bad("output %q is not computed by any node", g.Output.Name)
	}
	if g.Output.Kind != OutputProbability && g.Output.Kind != OutputLogit {
		return bad("output kind %q (%s or %s)", g.Output.Kind, OutputProbability, OutputLogit)
	}
	var unused []string
	for name := range bu.Weights {
		if !used[name] {
			unused = append(unused, name)
		}
	}
	if len(unused) > 0 {
		slices.Sort(unused)
		return bad("weight(s) %q are used by no node", unused)
	}
	return nil
}
