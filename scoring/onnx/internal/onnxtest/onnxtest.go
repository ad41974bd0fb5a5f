// Package onnxtest writes ONNX models in Go for tests and benchmarks: a
// small builder over the protobuf types, and FromBundle, which exports a
// built-in bundle the way torch.onnx.export writes a wide & deep model.
package onnxtest

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/adtech/scorer/scoring/bundle"
	pb "github.com/adtech/scorer/scoring/onnx/internal/onnxpb"
)

// Graph collects a graph's parts.
type Graph struct {
	Nodes   []*pb.NodeProto
	Inits   []*pb.TensorProto
	Inputs  []*pb.ValueInfoProto
	Outputs []*pb.ValueInfoProto
}

// Node adds a node; attrs are name, value pairs (int, int64, []int64,
// float32, *pb.TensorProto).
func (g *Graph) Node(op, name string, in, out []string, attrs ...any) {
	n := &pb.NodeProto{OpType: op, Name: name, Input: in, Output: out}
	for i := 0; i+1 < len(attrs); i += 2 {
		a := &pb.AttributeProto{Name: attrs[i].(string)}
		switch v := attrs[i+1].(type) {
		case int:
			a.Type, a.I = pb.AttributeProto_INT, int64(v)
		case int64:
			a.Type, a.I = pb.AttributeProto_INT, v
		case []int64:
			a.Type, a.Ints = pb.AttributeProto_INTS, v
		case float32:
			a.Type, a.F = pb.AttributeProto_FLOAT, v
		case *pb.TensorProto:
			a.Type, a.T = pb.AttributeProto_TENSOR, v
		default:
			panic(fmt.Sprintf("onnxtest: attribute %v of type %T", attrs[i], v))
		}
		n.Attribute = append(n.Attribute, a)
	}
	g.Nodes = append(g.Nodes, n)
}

// Floats is a float32 tensor.
func Floats(name string, data []float32, dims ...int64) *pb.TensorProto {
	return &pb.TensorProto{Name: name, DataType: int32(pb.TensorProto_FLOAT), Dims: dims, FloatData: data}
}

// Ints is an int64 tensor.
func Ints(name string, data []int64, dims ...int64) *pb.TensorProto {
	return &pb.TensorProto{Name: name, DataType: int32(pb.TensorProto_INT64), Dims: dims, Int64Data: data}
}

// Init adds an initializer.
func (g *Graph) Init(t *pb.TensorProto) { g.Inits = append(g.Inits, t) }

// Value is a tensor's type: dims are a string (a dim_param) or an int.
func Value(name string, elem pb.TensorProto_DataType, dims ...any) *pb.ValueInfoProto {
	shape := &pb.TensorShapeProto{}
	for _, d := range dims {
		switch v := d.(type) {
		case string:
			shape.Dim = append(shape.Dim, &pb.TensorShapeProto_Dimension{Value: &pb.TensorShapeProto_Dimension_DimParam{DimParam: v}})
		case int:
			shape.Dim = append(shape.Dim, &pb.TensorShapeProto_Dimension{Value: &pb.TensorShapeProto_Dimension_DimValue{DimValue: int64(v)}})
		}
	}
	return &pb.ValueInfoProto{Name: name, Type: &pb.TypeProto{Value: &pb.TypeProto_TensorType{TensorType: &pb.TypeProto_Tensor{ElemType: int32(elem), Shape: shape}}}}
}

// Model serializes the graph as a model of the given default opset.
func (g *Graph) Model(opset int64) []byte {
	m := &pb.ModelProto{
		IrVersion:    8,
		ProducerName: "onnxtest",
		OpsetImport:  []*pb.OperatorSetIdProto{{Domain: "", Version: opset}},
		Graph: &pb.GraphProto{
			Name: "test", Node: g.Nodes, Initializer: g.Inits, Input: g.Inputs, Output: g.Outputs,
		},
	}
	data, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return data
}

// FromBundle exports a built-in bundle as torch.onnx.export writes a wide
// & deep model with one nn.Embedding per feature: inputs dense float32
// [batch, D] and cat int64 [batch, K] (each feature's index in its own
// table); per feature, Gather(cat, k, axis=1) then Gather(table_k); the
// deep input is Concat(dense, embeddings...) (dense first, so the first
// layer's rows are reordered); layers are Gemm with transB=1 (weights
// [out, in]) and Relu; the wide part gathers per-feature [card, 1] tables
// and adds Gemm(dense, wide weights); output prob = Sigmoid(logit),
// [batch, 1].
func FromBundle(bu *bundle.Bundle, opset int64) []byte {
	g := &Graph{}
	d, k := bu.Inputs.Dense, bu.Inputs.K()
	offsets := bu.Inputs.Offsets()
	g.Inputs = append(g.Inputs, Value("dense", pb.TensorProto_FLOAT, "batch", d), Value("cat", pb.TensorProto_INT64, "batch", k))
	g.Outputs = append(g.Outputs, Value("prob", pb.TensorProto_FLOAT, "batch", 1))
	for i := range k {
		g.Node("Constant", fmt.Sprintf("/Constant_%d", i), nil, []string{fmt.Sprintf("col%d", i)}, "value", Ints("", []int64{int64(i)}))
		g.Node("Gather", fmt.Sprintf("/Gather_%d", i), []string{"cat", fmt.Sprintf("col%d", i)}, []string{fmt.Sprintf("ids%d", i)}, "axis", 1)
	}
	// table k of a stacked [V, width] tensor.
	table := func(name string, w *bundle.Param, i int) {
		width := w.Shape[1]
		rows := bu.Inputs.Cardinalities[i]
		g.Init(Floats(name, w.Data[offsets[i]*width:(offsets[i]+rows)*width], int64(rows), int64(width)))
	}
	// gemm adds a [in, out] weight transposed to [out, in].
	gemm := func(node, wName, bName, x, y string, w, b *bundle.Param) {
		in, out := w.Shape[0], w.Shape[1]
		t := make([]float32, len(w.Data))
		for r := range in {
			for c := range out {
				t[c*in+r] = w.Data[r*out+c]
			}
		}
		g.Init(Floats(wName, t, int64(out), int64(in)))
		g.Init(Floats(bName, b.Data, int64(out)))
		g.Node("Gemm", node, []string{x, wName, bName}, []string{y}, "alpha", float32(1), "beta", float32(1), "transB", 1)
	}
	var logits []string
	if bu.Arch.HasDeep() {
		e := bu.Arch.EmbeddingDim
		parts := []string{"dense"}
		for i := range k {
			name := fmt.Sprintf("deep.emb_%d.weight", i)
			table(name, bu.Weights["deep.emb"], i)
			g.Node("Gather", fmt.Sprintf("/deep/emb_%d/Gather", i), []string{name, fmt.Sprintf("ids%d", i)}, []string{fmt.Sprintf("e%d", i)})
			parts = append(parts, fmt.Sprintf("e%d", i))
		}
		g.Node("Concat", "/deep/Concat", parts, []string{"x0"}, "axis", 1)
		// Reorder the first layer's rows: [embeddings, dense] -> [dense, embeddings].
		w0 := bu.Weights["deep.l0.w"]
		if len(bu.Arch.Hidden) == 0 {
			w0 = bu.Weights["deep.out.w"]
		}
		cols := w0.Shape[1]
		re := &bundle.Param{Shape: w0.Shape, Data: make([]float32, 0, len(w0.Data))}
		re.Data = append(re.Data, w0.Data[k*e*cols:]...)
		re.Data = append(re.Data, w0.Data[:k*e*cols]...)
		x := "x0"
		for i := range bu.Arch.Hidden {
			w := bu.Weights[fmt.Sprintf("deep.l%d.w", i)]
			if i == 0 {
				w = re
			}
			gemm(fmt.Sprintf("/deep/fc%d/Gemm", i), fmt.Sprintf("deep.fc%d.weight", i), fmt.Sprintf("deep.fc%d.bias", i), x, fmt.Sprintf("z%d", i), w, bu.Weights[fmt.Sprintf("deep.l%d.b", i)])
			g.Node("Relu", fmt.Sprintf("/deep/relu%d/Relu", i), []string{fmt.Sprintf("z%d", i)}, []string{fmt.Sprintf("h%d", i)})
			x = fmt.Sprintf("h%d", i)
		}
		wOut := bu.Weights["deep.out.w"]
		if len(bu.Arch.Hidden) == 0 {
			wOut = re
		}
		gemm("/deep/out/Gemm", "deep.out.weight", "deep.out.bias", x, "deep_logit", wOut, bu.Weights["deep.out.b"])
		logits = append(logits, "deep_logit")
	}
	if bu.Arch.HasWide() {
		sum := ""
		if d > 0 {
			gemm("/wide/linear/Gemm", "wide.linear.weight", "wide.linear.bias", "dense", "wd", bu.Weights["wide.dense"], bu.Weights["wide.bias"])
			sum = "wd"
		} else {
			g.Init(Floats("wide.bias", bu.Weights["wide.bias"].Data, 1))
			sum = "wide.bias"
		}
		for i := range k {
			name := fmt.Sprintf("wide.emb_%d.weight", i)
			table(name, bu.Weights["wide.emb"], i)
			g.Node("Gather", fmt.Sprintf("/wide/emb_%d/Gather", i), []string{name, fmt.Sprintf("ids%d", i)}, []string{fmt.Sprintf("w%d", i)})
			next := fmt.Sprintf("ws%d", i)
			g.Node("Add", fmt.Sprintf("/wide/Add_%d", i), []string{sum, fmt.Sprintf("w%d", i)}, []string{next})
			sum = next
		}
		logits = append(logits, sum)
	}
	logit := logits[0]
	if len(logits) == 2 {
		g.Node("Add", "/Add", logits, []string{"logit"})
		logit = "logit"
	}
	g.Node("Sigmoid", "/Sigmoid", []string{logit}, []string{"prob"})
	return g.Model(opset)
}
