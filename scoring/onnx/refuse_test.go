package onnx_test

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/onnx"
	pb "github.com/adtech/scorer/scoring/onnx/internal/onnxpb"
	"github.com/adtech/scorer/scoring/onnx/internal/onnxtest"
)

func numericSpec(names ...string) features.Spec {
	var s features.Spec
	for _, n := range names {
		s.Features = append(s.Features, features.Feature{Name: n, Column: n, Kind: features.Numeric})
	}
	return s
}

var spec4 = numericSpec("a", "b", "c", "d")

// tiny is x [batch, 4] -> MatMul W [4, 1] -> (edit) -> Sigmoid -> prob.
func tiny(edit func(g *onnxtest.Graph) string) *onnxtest.Graph {
	g := &onnxtest.Graph{}
	g.Inputs = append(g.Inputs, onnxtest.Value("x", pb.TensorProto_FLOAT, "batch", 4))
	g.Outputs = append(g.Outputs, onnxtest.Value("prob", pb.TensorProto_FLOAT, "batch", 1))
	g.Init(onnxtest.Floats("W", []float32{0.5, -0.25, 1, 0.125}, 4, 1))
	g.Node("MatMul", "/fc/MatMul", []string{"x", "W"}, []string{"z"})
	logit := "z"
	if edit != nil {
		logit = edit(g)
	}
	g.Node("Sigmoid", "/Sigmoid", []string{logit}, []string{"prob"})
	return g
}

// Whatever scorer cannot run is refused at import, naming the node, its
// operator and the opset, and saying what to do.
func TestImportRefusesWhatItCannotRun(t *testing.T) {
	ids := features.Spec{Features: []features.Feature{{Name: "site", Column: "site", Kind: features.Categorical, HashBuckets: 100}}}
	cases := []struct {
		name  string
		model []byte
		opts  onnx.Options
		want  []string
	}{
		{"unsupported operator", tiny(func(g *onnxtest.Graph) string {
			g.Node("LpNormalization", "/act/LpNormalization", []string{"z"}, []string{"s"})
			return "s"
		}).Model(17), onnx.Options{Spec: spec4}, []string{`node "/act/LpNormalization" (LpNormalization, opset 17)`, "operator LpNormalization is not supported"}},
		{"operator of another domain", func() []byte {
			g := tiny(func(g *onnxtest.Graph) string {
				g.Node("Gelu", "/ms/Gelu", []string{"z"}, []string{"s"})
				g.Nodes[len(g.Nodes)-1].Domain = "com.microsoft"
				return "s"
			})
			return g.Model(17)
		}(), onnx.Options{Spec: spec4}, []string{`node "/ms/Gelu" (Gelu, opset 17)`, `domain "com.microsoft"`}},
		{"old opset", tiny(nil).Model(12), onnx.Options{Spec: spec4}, []string{"opset 12 is not supported", "13 to 21"}},
		{
			"an image feature", tiny(nil).Model(17),
			onnx.Options{Spec: features.Spec{Features: append(slices.Clone(spec4.Features),
				features.Feature{Name: "banner", Column: "image_uri", Kind: features.Image})}},
			[]string{`feature "banner" is an image feature`, "cannot read images"},
		},
		{"new opset", tiny(nil).Model(22), onnx.Options{Spec: spec4}, []string{"opset 22 is not supported"}},
		{"dynamic inner dimension", func() []byte {
			g := tiny(nil)
			g.Inputs[0] = onnxtest.Value("x", pb.TensorProto_FLOAT, "batch", "features")
			return g.Model(17)
		}(), onnx.Options{Spec: spec4}, []string{`input "x" has a dynamic dimension 1 ("features")`}},
		{"reshape that pins the batch size", tiny(func(g *onnxtest.Graph) string {
			g.Init(onnxtest.Ints("shape", []int64{1, 1}, 2))
			g.Node("Reshape", "/Reshape", []string{"z", "shape"}, []string{"r"})
			return "r"
		}).Model(17), onnx.Options{Spec: spec4}, []string{`node "/Reshape" (Reshape, opset 17)`, "fixes the batch dimension"}},
		{"a broadcast of the batch against another dimension", tiny(func(g *onnxtest.Graph) string {
			g.Init(onnxtest.Ints("axes", []int64{1}, 1))
			g.Node("Squeeze", "/Squeeze", []string{"z", "axes"}, []string{"s"}) // [batch]
			g.Node("Add", "/Add", []string{"z", "s"}, []string{"zz"})           // [batch, 1] + [batch] -> [batch, batch]
			return "zz"
		}).Model(17), onnx.Options{Spec: spec4}, []string{`node "/Add" (Add, opset 17)`, "rows would mix"}},
		{"a transpose of the batch", tiny(func(g *onnxtest.Graph) string {
			g.Node("Transpose", "/Transpose", []string{"z"}, []string{"zt"}, "perm", []int64{1, 0})
			return "zt"
		}).Model(17), onnx.Options{Spec: spec4}, []string{`node "/Transpose" (Transpose, opset 17)`, "moves the batch dimension"}},
		{"a slice of the batch", tiny(func(g *onnxtest.Graph) string {
			g.Init(onnxtest.Ints("st", []int64{1}, 1))
			g.Init(onnxtest.Ints("en", []int64{2}, 1))
			g.Init(onnxtest.Ints("ax", []int64{0}, 1))
			g.Node("Slice", "/Slice", []string{"z", "st", "en", "ax"}, []string{"zs"})
			return "zs"
		}).Model(17), onnx.Options{Spec: spec4}, []string{`node "/Slice" (Slice, opset 17)`, "slices the batch dimension"}},
		{"the batch size used as a value", tiny(func(g *onnxtest.Graph) string {
			g.Node("Shape", "/Shape", []string{"z"}, []string{"sh"})
			g.Init(onnxtest.Ints("zero", []int64{0}))
			g.Node("Gather", "/Gather", []string{"sh", "zero"}, []string{"b"})
			g.Node("Cast", "/Cast", []string{"b"}, []string{"bf"}, "to", int(pb.TensorProto_FLOAT))
			g.Node("Mul", "/Mul", []string{"z", "bf"}, []string{"zb"})
			return "zb"
		}).Model(17), onnx.Options{Spec: spec4}, []string{`node "/Cast" (Cast, opset 17)`, "uses the batch size"}},
		{"split sizes beyond the dimension", tiny(func(g *onnxtest.Graph) string {
			g.Init(onnxtest.Ints("sizes", []int64{2, 9223372036854775806}, 2))
			g.Nodes = append([]*pb.NodeProto{{
				OpType: "Split", Name: "/Split", Input: []string{"x", "sizes"}, Output: []string{"a", "b"},
				Attribute: []*pb.AttributeProto{{Name: "axis", Type: pb.AttributeProto_INT, I: 1}},
			}}, g.Nodes...)
			g.Node("Concat", "/Concat", []string{"z", "a"}, []string{"za"}, "axis", 1)
			g.Node("ReduceSum", "/R", []string{"za"}, []string{"r"}, "keepdims", 1)
			return "r"
		}).Model(17), onnx.Options{Spec: spec4}, []string{`node "/Split" (Split, opset 17)`, "do not fit"}},
		{"an empty slice", tiny(func(g *onnxtest.Graph) string {
			g.Init(onnxtest.Ints("st", []int64{1}, 1))
			g.Init(onnxtest.Ints("en", []int64{1}, 1))
			g.Init(onnxtest.Ints("ax", []int64{1}, 1))
			g.Node("Slice", "/Slice", []string{"z", "st", "en", "ax"}, []string{"zs"})
			g.Node("Concat", "/Concat", []string{"z", "zs"}, []string{"zz"}, "axis", 1)
			return "zz"
		}).Model(17), onnx.Options{Spec: spec4}, []string{`node "/Slice" (Slice, opset 17)`, "no values per row"}},
		{"two sigmoids imported as two classes", func() []byte {
			g := &onnxtest.Graph{}
			g.Inputs = append(g.Inputs, onnxtest.Value("x", pb.TensorProto_FLOAT, "batch", 4))
			g.Init(onnxtest.Floats("W", make([]float32, 8), 4, 2))
			g.Node("MatMul", "/fc", []string{"x", "W"}, []string{"l"})
			g.Node("Sigmoid", "/Sigmoid", []string{"l"}, []string{"p"})
			g.Outputs = append(g.Outputs, onnxtest.Value("p", pb.TensorProto_FLOAT, "batch", 2))
			return g.Model(17)
		}(), onnx.Options{Spec: spec4, OutputKind: bundle.OutputLogit}, []string{"two independent probabilities"}},
		{"an axis named twice", tiny(func(g *onnxtest.Graph) string {
			g.Init(onnxtest.Ints("axes", []int64{1, 1}, 2))
			g.Node("Unsqueeze", "/Unsqueeze", []string{"z", "axes"}, []string{"u"})
			return "u"
		}).Model(17), onnx.Options{Spec: spec4}, []string{`node "/Unsqueeze" (Unsqueeze, opset 17)`, "twice"}},
		{"a tensor of rank 10", tiny(func(g *onnxtest.Graph) string {
			g.Init(onnxtest.Floats("big", []float32{1}, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1))
			g.Node("Add", "/AddBig", []string{"big", "big"}, []string{"b2"})
			g.Node("Add", "/Add", []string{"z", "b2"}, []string{"zz"})
			return "zz"
		}).Model(17), onnx.Options{Spec: spec4}, []string{`"big" has rank 10`}},
		{
			"a probability imported as a logit", tiny(nil).Model(17),
			onnx.Options{Spec: spec4, OutputKind: bundle.OutputLogit},
			[]string{`computed by node "/Sigmoid" (Sigmoid, opset 17)`, "not a logit"},
		},
		{"reduction over the batch", tiny(func(g *onnxtest.Graph) string {
			g.Init(onnxtest.Ints("axes", []int64{0}, 1))
			g.Node("ReduceSum", "/ReduceSum", []string{"z", "axes"}, []string{"r"})
			return "r"
		}).Model(17), onnx.Options{Spec: spec4}, []string{`node "/ReduceSum" (ReduceSum, opset 17)`, "batch dimension"}},
		{"output that is not a Sigmoid's", func() []byte {
			g := tiny(nil)
			g.Nodes = g.Nodes[:1]
			g.Outputs[0] = onnxtest.Value("z", pb.TensorProto_FLOAT, "batch", 1)
			return g.Model(17)
		}(), onnx.Options{Spec: spec4}, []string{`output "z"`, `computed by node "/fc/MatMul" (MatMul, opset 17)`, "--output-kind logit"}},
		{"two outputs, none chosen", func() []byte {
			g := tiny(nil)
			g.Outputs = append(g.Outputs, onnxtest.Value("z", pb.TensorProto_FLOAT, "batch", 1))
			return g.Model(17)
		}(), onnx.Options{Spec: spec4}, []string{"2 outputs (prob, z)", "--output"}},
		{
			"input bound to the wrong number of features", tiny(nil).Model(17),
			onnx.Options{Spec: numericSpec("a", "b", "c")},
			[]string{`input "x" of shape [batch, 4] takes 4 values per row but is bound to 3 features`, "--bind x="},
		},
		{"float64 weights", func() []byte {
			g := tiny(nil)
			g.Inits[0] = &pb.TensorProto{Name: "W", DataType: int32(pb.TensorProto_DOUBLE), Dims: []int64{4, 1}, DoubleData: []float64{1, 2, 3, 4}}
			return g.Model(17)
		}(), onnx.Options{Spec: spec4}, []string{`initializer "W" has data type DOUBLE`}},
		{"not an ONNX file", []byte("name: ctr\nversion: 1\n"), onnx.Options{Spec: spec4}, []string{"not an ONNX model"}},
		{"a feature's cardinality beyond its table", func() []byte {
			g := &onnxtest.Graph{}
			g.Inputs = append(g.Inputs, onnxtest.Value("ids", pb.TensorProto_INT64, "batch"))
			g.Outputs = append(g.Outputs, onnxtest.Value("prob", pb.TensorProto_FLOAT, "batch", 1))
			g.Init(onnxtest.Floats("emb.weight", make([]float32, 7), 7, 1))
			g.Node("Gather", "/emb/Gather", []string{"emb.weight", "ids"}, []string{"e"})
			g.Node("Sigmoid", "/Sigmoid", []string{"e"}, []string{"prob"})
			return g.Model(17)
		}(), onnx.Options{Spec: ids, Bind: map[string][]string{"ids": {"site"}}}, []string{`node "/emb/Gather" (Gather, opset 17)`, `feature "site" gives indices in [0, 100]`, `table "emb.weight" has 7 rows`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := onnx.Import(tc.model, tc.opts)
			if err == nil {
				t.Fatal("imported")
			}
			if !errors.Is(err, onnx.ErrUnsupported) && !errors.Is(err, bundle.ErrInvalid) {
				t.Errorf("error %v wraps neither ErrUnsupported nor bundle.ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// A node that the chosen output does not depend on is left out, whatever
// its operator; a logit output is scored through scorer's sigmoid.
func TestImportKeepsWhatTheOutputNeeds(t *testing.T) {
	g := tiny(nil)
	g.Node("LpNormalization", "/aux/LpNormalization", []string{"z"}, []string{"aux0"})
	g.Inits = append(g.Inits, &pb.TensorProto{Name: "aux.scale", DataType: int32(pb.TensorProto_DOUBLE), Dims: []int64{1}, DoubleData: []float64{2}})
	g.Node("Mul", "/aux/Mul", []string{"aux0", "aux.scale"}, []string{"aux"})
	g.Outputs = append(g.Outputs, onnxtest.Value("aux", pb.TensorProto_FLOAT, "batch", 1), onnxtest.Value("z", pb.TensorProto_FLOAT, "batch", 1))
	data := g.Model(17)
	prob, err := onnx.Import(data, onnx.Options{Spec: spec4, Output: "prob"})
	if err != nil {
		t.Fatal(err)
	}
	if len(prob.Graph.Nodes) != 2 {
		t.Errorf("kept %d nodes, want MatMul and Sigmoid", len(prob.Graph.Nodes))
	}
	logit, err := onnx.Import(data, onnx.Options{Spec: spec4, Output: "z", OutputKind: bundle.OutputLogit})
	if err != nil {
		t.Fatal(err)
	}
	in := &features.Batch{}
	in.Reset(2, 4, 0)
	copy(in.Dense, []float32{1, 2, 3, 4, -4, 0, 0.5, 2})
	p, l := scores(t, prob, 4, in), scores(t, logit, 4, in)
	for r := range 2 {
		x := in.Dense[r*4 : r*4+4]
		z := 0.5*float64(x[0]) - 0.25*float64(x[1]) + float64(x[2]) + 0.125*float64(x[3])
		want := 1 / (1 + math.Exp(-z))
		if math.Abs(float64(p[r])-want) > 1e-6 || math.Abs(float64(l[r])-want) > 1e-6 {
			t.Errorf("row %d: scores %g (prob output) and %g (logit output), want %g", r, p[r], l[r], want)
		}
	}
}

// An index the graph computes where the features' cardinalities do not
// bound it (through a float cast) is checked for every row: a row beyond
// the table is a *scoring.RowError wrapping scoring.ErrInput (bad input,
// exit 3) that names the row of the whole batch, not of the slice the
// model computed it in.
func TestIndexBeyondItsTableIsBadInput(t *testing.T) {
	g := &onnxtest.Graph{}
	g.Inputs = append(g.Inputs, onnxtest.Value("ids", pb.TensorProto_INT64, "batch"))
	g.Outputs = append(g.Outputs, onnxtest.Value("prob", pb.TensorProto_FLOAT, "batch", 1))
	g.Init(onnxtest.Floats("emb.weight", []float32{-3, -2, -1, 0, 1, 2, 3}, 7, 1))
	g.Node("Cast", "/ToFloat", []string{"ids"}, []string{"f"}, "to", int(pb.TensorProto_FLOAT))
	g.Node("Cast", "/ToInt", []string{"f"}, []string{"i"}, "to", int(pb.TensorProto_INT64))
	g.Node("Gather", "/emb/Gather", []string{"emb.weight", "i"}, []string{"e"})
	g.Node("Sigmoid", "/Sigmoid", []string{"e"}, []string{"prob"})
	spec := features.Spec{Features: []features.Feature{{Name: "slot", Column: "slot", Kind: features.Categorical, IDs: 10}}}
	bu, err := onnx.Import(g.Model(17), onnx.Options{Spec: spec, Bind: map[string][]string{"ids": {"slot"}}})
	if err != nil {
		t.Fatal(err)
	}
	in := &features.Batch{}
	in.Reset(7, 0, 1)
	copy(in.Cat, []int32{0, 1, 2, 3, 4, 5, 9})
	ok := scores(t, bu, 4, &features.Batch{N: 6, K: 1, Cat: in.Cat[:6]})
	for r, s := range ok {
		if want := 1 / (1 + math.Exp(-float64(r-3))); math.Abs(float64(s)-want) > 1e-6 {
			t.Errorf("row %d: %g, want %g", r, s, want)
		}
	}
	m, err := scoring.NewModel(bu, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Close() }()
	err = m.Score(in, make([]float32, 7))
	var re *scoring.RowError
	if !errors.As(err, &re) || re.Row != 6 || !errors.Is(err, scoring.ErrInput) || !strings.Contains(err.Error(), "index 9 out of range [-7, 7)") {
		t.Errorf("Score: %v, want a RowError of row 6 wrapping ErrInput", err)
	}
}

// Flatten counts a negative axis from the rank, as ONNX does.
func TestFlattenNegativeAxis(t *testing.T) {
	g := tiny(nil)
	g.Nodes[0].Input[0] = "xf"
	g.Nodes = append([]*pb.NodeProto{{
		OpType: "Flatten", Name: "/Flatten", Input: []string{"x"}, Output: []string{"xf"},
		Attribute: []*pb.AttributeProto{{Name: "axis", Type: pb.AttributeProto_INT, I: -1}},
	}}, g.Nodes...)
	bu, err := onnx.Import(g.Model(17), onnx.Options{Spec: spec4})
	if err != nil {
		t.Fatal(err)
	}
	in := &features.Batch{N: 1, D: 4, Dense: []float32{1, 2, 3, 4}}
	x := []float64{1, 2, 3, 4}
	want := 1 / (1 + math.Exp(-(0.5*x[0] - 0.25*x[1] + x[2] + 0.125*x[3])))
	if got := scores(t, bu, 2, in)[0]; math.Abs(float64(got)-want) > 1e-6 {
		t.Errorf("score %g, want %g", got, want)
	}
}

// BatchNormalization at inference on the batch's own values (not after a
// linear layer, so not folded into one): per channel
// (x - mean)/sqrt(var + epsilon)·scale + B; a Dropout is its input.
func TestBatchNormOnInputs(t *testing.T) {
	g := &onnxtest.Graph{}
	g.Inputs = append(g.Inputs, onnxtest.Value("x", pb.TensorProto_FLOAT, "batch", 4))
	g.Outputs = append(g.Outputs, onnxtest.Value("prob", pb.TensorProto_FLOAT, "batch", 1))
	scale, bias, mean, vr := []float32{1, 2, 0.5, -1}, []float32{0.1, -0.2, 0, 0.3}, []float32{1, 0, -1, 2}, []float32{0.25, 1, 4, 0.5}
	for name, v := range map[string][]float32{"s": scale, "b": bias, "m": mean, "v": vr} {
		g.Init(onnxtest.Floats(name, v, 4))
	}
	g.Init(onnxtest.Floats("W", []float32{0.5, -0.25, 1, 0.125}, 4, 1))
	g.Node("BatchNormalization", "/bn", []string{"x", "s", "b", "m", "v"}, []string{"y", "", ""}, "epsilon", float32(1e-3))
	g.Node("Dropout", "/drop", []string{"y"}, []string{"yd"})
	g.Node("MatMul", "/fc", []string{"yd", "W"}, []string{"z"})
	g.Node("Sigmoid", "/Sigmoid", []string{"z"}, []string{"prob"})
	bu, err := onnx.Import(g.Model(17), onnx.Options{Spec: spec4})
	if err != nil {
		t.Fatal(err)
	}
	in := &features.Batch{N: 2, D: 4, Dense: []float32{1, 2, 3, 4, -1, 0, 0.5, 8}}
	got := scores(t, bu, 2, in)
	w := []float64{0.5, -0.25, 1, 0.125}
	for r := range 2 {
		z := 0.0
		for c := range 4 {
			x := float64(in.Dense[r*4+c])
			z += w[c] * ((x-float64(mean[c]))/math.Sqrt(float64(vr[c])+1e-3)*float64(scale[c]) + float64(bias[c]))
		}
		if want := 1 / (1 + math.Exp(-z)); math.Abs(float64(got[r])-want) > 1e-6 {
			t.Errorf("row %d: %g, want %g", r, got[r], want)
		}
	}
}

// A model exported without dynamic axes, for a batch of one row (every
// input [1, n]), reshapes with a leading 1 that means the batch: it
// imports and scores any number of rows; the same reshape in a model with
// a dynamic batch is refused (it would fix the batch size).
func TestExportedForOneRow(t *testing.T) {
	build := func(batch any) []byte {
		g := &onnxtest.Graph{}
		g.Inputs = append(g.Inputs, onnxtest.Value("x", pb.TensorProto_FLOAT, batch, 4))
		g.Outputs = append(g.Outputs, onnxtest.Value("prob", pb.TensorProto_FLOAT, batch, 1))
		g.Init(onnxtest.Ints("shape3", []int64{1, 2, 2}, 3))
		g.Init(onnxtest.Ints("shape2", []int64{1, 4}, 2))
		g.Init(onnxtest.Floats("W", []float32{0.5, -0.25, 1, 0.125}, 4, 1))
		g.Node("Reshape", "/Reshape", []string{"x", "shape3"}, []string{"x3"})
		g.Node("Reshape", "/Reshape_1", []string{"x3", "shape2"}, []string{"x2"})
		g.Node("MatMul", "/fc", []string{"x2", "W"}, []string{"z"})
		g.Node("Sigmoid", "/Sigmoid", []string{"z"}, []string{"prob"})
		return g.Model(17)
	}
	bu, err := onnx.Import(build(1), onnx.Options{Spec: spec4})
	if err != nil {
		t.Fatal(err)
	}
	if !bu.Graph.BatchOne {
		t.Error("batch_one not recorded")
	}
	in := &features.Batch{N: 3, D: 4, Dense: []float32{1, 2, 3, 4, -1, 0, 0.5, 8, 0, 0, 0, 0}}
	got := scores(t, bu, 2, in)
	for r := range 3 {
		x := in.Dense[r*4 : r*4+4]
		z := 0.5*float64(x[0]) - 0.25*float64(x[1]) + float64(x[2]) + 0.125*float64(x[3])
		if want := 1 / (1 + math.Exp(-z)); math.Abs(float64(got[r])-want) > 1e-6 {
			t.Errorf("row %d: %g, want %g", r, got[r], want)
		}
	}
	if _, err := onnx.Import(build("batch"), onnx.Options{Spec: spec4}); err == nil || !strings.Contains(err.Error(), "fixes the batch dimension") {
		t.Errorf("dynamic batch with a reshape to 1 row: %v", err)
	}
}

// Split of one input into its parts along the feature axis (tf.split,
// torch.split): each part is its own value.
func TestSplit(t *testing.T) {
	for _, sizes := range [][]int64{{1, 3}, nil} {
		g := &onnxtest.Graph{}
		g.Inputs = append(g.Inputs, onnxtest.Value("x", pb.TensorProto_FLOAT, "batch", 4))
		g.Outputs = append(g.Outputs, onnxtest.Value("prob", pb.TensorProto_FLOAT, "batch", 1))
		in := []string{"x"}
		if sizes != nil {
			g.Init(onnxtest.Ints("sizes", sizes, int64(len(sizes))))
			in = append(in, "sizes")
		}
		a, b := 2, 2
		if sizes != nil {
			a, b = 1, 3
		}
		wa, wb := make([]float32, a), make([]float32, b)
		for i := range wa {
			wa[i] = float32(i + 1)
		}
		for i := range wb {
			wb[i] = -float32(i+1) / 4
		}
		g.Init(onnxtest.Floats("Wa", wa, int64(a), 1))
		g.Init(onnxtest.Floats("Wb", wb, int64(b), 1))
		g.Node("Split", "/Split", in, []string{"pa", "pb"}, "axis", 1)
		g.Node("MatMul", "/fa", []string{"pa", "Wa"}, []string{"za"})
		g.Node("MatMul", "/fb", []string{"pb", "Wb"}, []string{"zb"})
		g.Node("Add", "/Add", []string{"za", "zb"}, []string{"z"})
		g.Node("Sigmoid", "/Sigmoid", []string{"z"}, []string{"prob"})
		bu, err := onnx.Import(g.Model(17), onnx.Options{Spec: spec4})
		if err != nil {
			t.Fatal(err)
		}
		batch := &features.Batch{N: 1, D: 4, Dense: []float32{1, 2, 3, 4}}
		w := append(slices.Clone(wa), wb...)
		z := 0.0
		for i, x := range batch.Dense {
			z += float64(x) * float64(w[i])
		}
		if got, want := scores(t, bu, 2, batch)[0], 1/(1+math.Exp(-z)); math.Abs(float64(got)-want) > 1e-6 {
			t.Errorf("split %v: %g, want %g", sizes, got, want)
		}
	}
}

// A binary classifier's two-class output ([batch, 2], class 1 the click):
// its Softmax's probability of class 1 as the score (computed from the
// logits' difference), and the same from the two logits themselves.
func TestTwoClassOutput(t *testing.T) {
	build := func(softmax bool) []byte {
		g := &onnxtest.Graph{}
		g.Inputs = append(g.Inputs, onnxtest.Value("x", pb.TensorProto_FLOAT, "batch", 4))
		g.Init(onnxtest.Floats("W", []float32{0.5, -0.5, -0.25, 0.25, 1, 0, 0.125, 0}, 4, 2))
		g.Node("MatMul", "/fc", []string{"x", "W"}, []string{"logits"})
		if softmax {
			g.Node("Softmax", "/Softmax", []string{"logits"}, []string{"probs"}, "axis", 1)
			g.Outputs = append(g.Outputs, onnxtest.Value("probs", pb.TensorProto_FLOAT, "batch", 2))
		} else {
			g.Outputs = append(g.Outputs, onnxtest.Value("logits", pb.TensorProto_FLOAT, "batch", 2))
		}
		return g.Model(17)
	}
	in := &features.Batch{N: 2, D: 4, Dense: []float32{1, 2, 3, 4, -1, 0, 0.5, 8}}
	for _, tc := range []struct {
		softmax bool
		kind    string
	}{{true, bundle.OutputProbability}, {false, bundle.OutputLogit}} {
		bu, err := onnx.Import(build(tc.softmax), onnx.Options{Spec: spec4, OutputKind: tc.kind})
		if err != nil {
			t.Fatal(err)
		}
		got := scores(t, bu, 2, in)
		for r := range 2 {
			x := in.Dense[r*4 : r*4+4]
			l0 := 0.5*float64(x[0]) - 0.25*float64(x[1]) + float64(x[2]) + 0.125*float64(x[3])
			l1 := -0.5*float64(x[0]) + 0.25*float64(x[1])
			want := math.Exp(l1) / (math.Exp(l0) + math.Exp(l1))
			if math.Abs(float64(got[r])-want) > 1e-6 {
				t.Errorf("softmax %v, row %d: %g, want %g", tc.softmax, r, got[r], want)
			}
		}
	}
	if _, err := onnx.Import(build(false), onnx.Options{Spec: spec4}); err == nil || !strings.Contains(err.Error(), "--output-kind logit") {
		t.Errorf("two logits imported as probabilities: %v", err)
	}
}

// Shapes read the way tf2onnx writes tf.shape(x)[0] (a Slice of Shape)
// reshape by the batch; a BatchNormalization after a layer whose output is
// not [batch, channels] is computed, not folded; Dropout's training_mode
// false as a boolean constant is inference.
func TestExporterIdioms(t *testing.T) {
	g := &onnxtest.Graph{}
	g.Inputs = append(g.Inputs, onnxtest.Value("x", pb.TensorProto_FLOAT, "batch", 4))
	g.Outputs = append(g.Outputs, onnxtest.Value("prob", pb.TensorProto_FLOAT, "batch", 1))
	g.Init(onnxtest.Ints("shape3", []int64{0, 2, 2}, 3))
	g.Init(onnxtest.Ints("st", []int64{0}, 1))
	g.Init(onnxtest.Ints("en", []int64{1}, 1))
	g.Init(onnxtest.Ints("minus1", []int64{-1}, 1))
	g.Init(onnxtest.Floats("W2", []float32{1, -1}, 2))
	for name, v := range map[string][]float32{"s": {2, 0.5}, "b": {0.1, -0.1}, "m": {0.5, -0.5}, "v": {1, 4}} {
		g.Init(onnxtest.Floats(name, v, 2))
	}
	g.Init(&pb.TensorProto{Name: "train", DataType: int32(pb.TensorProto_BOOL), RawData: []byte{0}})
	g.Init(onnxtest.Floats("ratio", []float32{0.5}))
	g.Init(onnxtest.Floats("W", []float32{0.5, -0.25}, 2, 1))
	g.Node("Reshape", "/Reshape", []string{"x", "shape3"}, []string{"x3"}) // [b, 2, 2]
	g.Node("MatMul", "/fc", []string{"x3", "W2"}, []string{"h"})           // [b, 2]: not folded
	g.Node("BatchNormalization", "/bn", []string{"h", "s", "b", "m", "v"}, []string{"hb"})
	g.Node("Dropout", "/drop", []string{"hb", "ratio", "train"}, []string{"hd"})
	g.Node("Shape", "/Shape", []string{"hd"}, []string{"sh"})
	g.Node("Slice", "/Slice", []string{"sh", "st", "en"}, []string{"b1"})
	g.Node("Concat", "/Concat", []string{"b1", "minus1"}, []string{"shp"}, "axis", 0)
	g.Node("Reshape", "/Reshape_1", []string{"hd", "shp"}, []string{"hr"})
	g.Node("MatMul", "/out", []string{"hr", "W"}, []string{"z"})
	g.Node("Sigmoid", "/Sigmoid", []string{"z"}, []string{"prob"})
	bu, err := onnx.Import(g.Model(17), onnx.Options{Spec: spec4})
	if err != nil {
		t.Fatal(err)
	}
	in := &features.Batch{N: 2, D: 4, Dense: []float32{1, 2, 3, 4, -1, 0, 0.5, 8}}
	got := scores(t, bu, 2, in)
	bnS, bnB, bnM, bnV := []float64{2, 0.5}, []float64{0.1, -0.1}, []float64{0.5, -0.5}, []float64{1, 4}
	for r := range 2 {
		x := in.Dense[r*4 : r*4+4]
		h := []float64{float64(x[0]) - float64(x[1]), float64(x[2]) - float64(x[3])}
		z := 0.0
		for c, w := range []float64{0.5, -0.25} {
			z += w * ((h[c]-bnM[c])/math.Sqrt(bnV[c]+1e-5)*bnS[c] + bnB[c])
		}
		if want := 1 / (1 + math.Exp(-z)); math.Abs(float64(got[r])-want) > 1e-6 {
			t.Errorf("row %d: %g, want %g", r, got[r], want)
		}
	}
}
