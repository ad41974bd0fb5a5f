package onnx_test

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/onnx"
	pb "github.com/adtech/scorer/scoring/onnx/internal/onnxpb"
	"github.com/adtech/scorer/scoring/onnx/internal/onnxtest"
)

// towerStyle marks the fixtures that are image towers.
const towerStyle = "pytorch-tower"

// towerBundle is a bundle holding an imported tower, as much of one as
// scoring.NewTower reads.
func towerBundle(tw *onnx.Tower, size int) *bundle.Bundle {
	bu := &bundle.Bundle{
		Name: "tower", Version: "1", Arch: bundle.Architecture{Kind: bundle.Deep, Image: &tw.Arch},
		Inputs: bundle.Inputs{Images: 1, ImageSize: size}, Weights: map[string]*bundle.Param{},
	}
	for name, p := range tw.Weights {
		bu.Weights[name] = p
	}
	bu.Weights["image.missing"] = bundle.NewParam(tw.Arch.Embedding)
	return bu
}

// The image tower that torch.onnx.export writes for a small
// nn.Sequential CNN, imported, embeds images as ONNX Runtime does, within
// 1e-5 (the fixture's outputs are ONNX Runtime's: internal/tools/onnxfixtures).
func TestTowerParityWithONNXRuntime(t *testing.T) {
	fs := fixtures(t, true)
	for _, f := range fs {
		t.Run(strings.TrimSuffix(f.Model, ".onnx"), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", f.Model))
			if err != nil {
				t.Fatal(err)
			}
			tw, err := onnx.ImportTower(data)
			if err != nil {
				t.Fatal(err)
			}
			in, want := f.Inputs[0], f.Outputs[0]
			size := in.Shape[2]
			if tw.Size != size || tw.Arch.Embedding != want.Shape[1] || len(tw.Arch.Channels) != 2 {
				t.Fatalf("imported tower %+v of %d px, want %d px, embedding %d", tw.Arch, tw.Size, size, want.Shape[1])
			}
			tower, err := scoring.NewTower(towerBundle(tw, size))
			if err != nil {
				t.Fatal(err)
			}
			x := make([]float32, len(in.Data))
			for i, v := range in.Data {
				x[i] = float32(v)
			}
			got := make([]float32, len(want.Data))
			tower.Embed(x, in.Shape[0], got)
			for i, w := range want.Data {
				if d := math.Abs(float64(got[i]) - w); d > 1e-5 {
					t.Fatalf("embedding value %d: scorer %g, ONNX Runtime %g", i, got[i], w)
				}
			}
		})
	}
	if len(fs) == 0 {
		t.Fatal("no tower fixture")
	}
}

// ImportTower refuses a model that is not the tower's shape, naming the
// node and what it is.
func TestImportTowerRefuses(t *testing.T) {
	tower := func(edit func(g *onnxtest.Graph)) []byte {
		g := &onnxtest.Graph{}
		g.Inputs = append(g.Inputs, onnxtest.Value("input", pb.TensorProto_FLOAT, "batch", 3, 8, 8))
		g.Outputs = append(g.Outputs, onnxtest.Value("output", pb.TensorProto_FLOAT, "batch", 2))
		g.Init(onnxtest.Floats("cw", make([]float32, 4*3*9), 4, 3, 3, 3))
		g.Init(onnxtest.Floats("cb", make([]float32, 4), 4))
		g.Init(onnxtest.Floats("lw", make([]float32, 8), 2, 4))
		g.Node("Conv", "/0/Conv", []string{"input", "cw", "cb"}, []string{"c"}, "kernel_shape", []int64{3, 3}, "pads", []int64{1, 1, 1, 1})
		g.Node("Relu", "/1/Relu", []string{"c"}, []string{"r"})
		g.Node("MaxPool", "/2/MaxPool", []string{"r"}, []string{"p"}, "kernel_shape", []int64{2, 2}, "strides", []int64{2, 2})
		g.Node("GlobalAveragePool", "/3/GAP", []string{"p"}, []string{"a"})
		g.Node("Flatten", "/4/Flatten", []string{"a"}, []string{"f"}, "axis", 1)
		g.Node("Gemm", "/5/Gemm", []string{"f", "lw"}, []string{"output"}, "transB", 1)
		if edit != nil {
			edit(g)
		}
		return g.Model(17)
	}
	if tw, err := onnx.ImportTower(tower(nil)); err != nil || tw.Arch.Embedding != 2 || tw.Size != 8 {
		t.Fatalf("the tower's own shape: %+v, %v", tw, err)
	}
	for name, tc := range map[string]struct {
		edit func(g *onnxtest.Graph)
		want string
	}{
		"5x5 filters": {func(g *onnxtest.Graph) { g.Nodes[0].Attribute[0].Ints = []int64{5, 5} }, `node "/0/Conv"`},
		"stride 2": {func(g *onnxtest.Graph) {
			g.Nodes[0].Attribute = append(g.Nodes[0].Attribute, &pb.AttributeProto{Name: "strides", Type: pb.AttributeProto_INTS, Ints: []int64{2, 2}})
		}, "not padding 1, stride 1"},
		"average pooling":         {func(g *onnxtest.Graph) { g.Nodes[2].OpType = "AveragePool" }, "AveragePool is not what comes next"},
		"sigmoid instead of relu": {func(g *onnxtest.Graph) { g.Nodes[1].OpType = "Sigmoid" }, `node "/1/Relu" (Sigmoid`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := onnx.ImportTower(tower(tc.edit))
			if !errors.Is(err, onnx.ErrUnsupported) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "an image tower is") {
				t.Fatalf("error %v, want unsupported mentioning %q and the tower's shape", err, tc.want)
			}
		})
	}
}
