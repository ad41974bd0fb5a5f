package onnx

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/onnx/internal/onnxpb"
)

// Tower is an image model read as a bundle's image tower (ImportTower):
// its architecture and its weights under the tower's tensor names.
type Tower struct {
	Arch    bundle.ImageTower
	Weights map[string]*bundle.Param
	// Size is the side of the images the model was exported for, 0 if
	// its input's height and width are dynamic.
	Size int
	// SHA256 of the file, for the bundle's record.
	SHA256 string
}

// towerShape says what ImportTower reads, for its messages.
const towerShape = "an image tower is Conv (3×3, padding 1, stride 1, one group) + Relu + MaxPool (2×2, stride 2) layers, " +
	"then GlobalAveragePool (or ReduceMean over axes 2 and 3), Flatten, and Gemm (or MatMul + Add): " +
	"input [batch, 3, H, W], output [batch, E]"

// ImportTower reads an ONNX image model whose computation is the image
// tower scorer trains (bundle.ImageTower): one [batch, 3, H, W] float
// input, channel first, and one [batch, E] output, through a chain of
// 3×3 convolutions with padding 1, ReLU and 2×2 max pooling, then the
// global average of each channel and one linear layer. That is what
// torch.onnx.export writes for nn.Sequential(Conv2d(c, c', 3,
// padding=1), ReLU(), MaxPool2d(2), ..., AdaptiveAvgPool2d(1), Flatten(),
// Linear(C, E)). Identity and Dropout nodes (inference) are passed over.
// Any other node, attribute or shape is refused, naming it (errors wrap
// ErrUnsupported). The weights keep their values: the filters' ONNX layout
// is the tower's; a Gemm with transB=1 (PyTorch's Linear) is transposed.
func ImportTower(data []byte) (*Tower, error) {
	m := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(data, m); err != nil {
		return nil, unsupported("not an ONNX model: %v", err)
	}
	g := m.GetGraph()
	if g == nil {
		return nil, unsupported("the model has no graph")
	}
	opset, err := defaultOpset(m)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	im := &importer{g: g, opset: opset, weights: map[string]*bundle.Param{}, consts: map[string]bundle.IntTensor{}}
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
	}
	read := map[string]bool{}
	for _, n := range g.GetNode() {
		for _, in := range n.GetInput() {
			read[in] = true
		}
	}
	if err := im.initializers(read); err != nil {
		return nil, err
	}
	var inputs []*onnxpb.ValueInfoProto
	for _, in := range g.GetInput() {
		if !inits[in.GetName()] {
			inputs = append(inputs, in)
		}
	}
	if len(inputs) != 1 || len(g.GetOutput()) != 1 {
		return nil, unsupported("the model has %d inputs and %d outputs: %s", len(inputs), len(g.GetOutput()), towerShape)
	}
	tw := &Tower{Weights: map[string]*bundle.Param{}, SHA256: hex.EncodeToString(sum[:])}
	in := inputs[0]
	tt := in.GetType().GetTensorType()
	dims := tt.GetShape().GetDim()
	if onnxpb.TensorProto_DataType(tt.GetElemType()) != onnxpb.TensorProto_FLOAT || len(dims) != 4 || dims[1].GetDimValue() != 3 {
		return nil, unsupported("input %q is not [batch, 3, H, W] float: %s", in.GetName(), towerShape)
	}
	if h, w := dims[2].GetDimValue(), dims[3].GetDimValue(); h > 0 || w > 0 {
		if h != w {
			return nil, unsupported("input %q is %d × %d pixels: scorer's image features are square", in.GetName(), h, w)
		}
		tw.Size = int(h)
	}

	// Follow the chain from the input: each node reads the previous one's
	// output.
	cur, chans := in.GetName(), 3
	var nodes []bundle.Node
	for _, n := range g.GetNode() {
		bn := bundle.Node{Name: n.GetName(), Op: n.GetOpType(), Inputs: n.GetInput(), Outputs: n.GetOutput()}
		where := bn.Describe(int(opset))
		if d := n.GetDomain(); d != "" && d != "ai.onnx" {
			return nil, unsupported("%s: operator domain %q: %s", where, d, towerShape)
		}
		for _, a := range n.GetAttribute() {
			if err := im.attribute(&bn, a, where); err != nil {
				return nil, err
			}
		}
		nodes = append(nodes, bn)
	}
	out := g.GetOutput()[0].GetName()
	state := "conv" // what may come next: conv (or the average), relu, pool, flatten, linear, done
	for i := 0; i < len(nodes); i++ {
		bn := nodes[i]
		where := bn.Describe(int(opset))
		if len(bn.Inputs) == 0 || bn.Inputs[0] != cur || len(bn.Outputs) != 1 {
			return nil, unsupported("%s: does not read the output of the node before it (%q): %s", where, cur, towerShape)
		}
		refuse := func(why string) error { return unsupported("%s: %s: %s", where, why, towerShape) }
		switch {
		case bn.Op == "Identity" || bn.Op == "Dropout":
			if len(bn.Inputs) > 1 && bn.Op == "Dropout" && bn.Int("training_mode", 0) != 0 {
				return nil, refuse("a Dropout in training mode")
			}
		case bn.Op == "Conv" && state == "conv":
			w := im.weights[inputAt(bn, 1)]
			if w == nil || len(w.Shape) != 4 || w.Shape[1] != chans || w.Shape[2] != 3 || w.Shape[3] != 3 {
				return nil, refuse(fmt.Sprintf("the filters are not [C, %d, 3, 3] float weights", chans))
			}
			if ks, ok := bn.Ints["kernel_shape"]; ok && !slices.Equal(ks, []int64{3, 3}) {
				return nil, refuse(fmt.Sprintf("kernel_shape %v", ks))
			}
			if !attrIs(bn, "pads", []int64{1, 1, 1, 1}, nil) || !attrIs(bn, "strides", []int64{1, 1}, []int64{1, 1}) ||
				!attrIs(bn, "dilations", []int64{1, 1}, []int64{1, 1}) || bn.Int("group", 1) != 1 || bn.Ints["auto_pad"] != nil {
				return nil, refuse("not padding 1, stride 1, dilation 1, one group")
			}
			c := w.Shape[0]
			b := bundle.NewParam(c)
			if name := inputAt(bn, 2); name != "" {
				p := im.weights[name]
				if p == nil || p.Size() != c {
					return nil, refuse(fmt.Sprintf("the bias is not %d float weights", c))
				}
				copy(b.Data, p.Data)
			}
			layer := len(tw.Arch.Channels)
			tw.Weights[fmt.Sprintf("image.conv%d.w", layer)] = &bundle.Param{Shape: slices.Clone(w.Shape), Data: slices.Clone(w.Data)}
			tw.Weights[fmt.Sprintf("image.conv%d.b", layer)] = b
			tw.Arch.Channels = append(tw.Arch.Channels, c)
			chans, state = c, "relu"
		case bn.Op == "Relu" && state == "relu":
			state = "pool"
		case bn.Op == "MaxPool" && state == "pool":
			if !attrIs(bn, "kernel_shape", []int64{2, 2}, nil) || !attrIs(bn, "strides", []int64{2, 2}, nil) ||
				!attrIs(bn, "pads", []int64{0, 0, 0, 0}, []int64{0, 0, 0, 0}) || !attrIs(bn, "dilations", []int64{1, 1}, []int64{1, 1}) ||
				bn.Int("ceil_mode", 0) != 0 || bn.Int("storage_order", 0) != 0 || bn.Ints["auto_pad"] != nil || len(bn.Outputs) != 1 {
				return nil, refuse("not a 2×2 max pooling of stride 2 without padding")
			}
			state = "conv"
		case (bn.Op == "GlobalAveragePool" || bn.Op == "ReduceMean") && state == "conv" && len(tw.Arch.Channels) > 0:
			if bn.Op == "ReduceMean" && !reducesHW(bn, im) {
				return nil, refuse("a ReduceMean other than over axes 2 and 3")
			}
			state = "flatten"
			if bn.Op == "ReduceMean" && bn.Int("keepdims", 1) == 0 { // already [batch, C]
				state = "linear"
			}
		case (bn.Op == "Flatten" || bn.Op == "Reshape" || bn.Op == "Squeeze") && state == "flatten":
			if bn.Op == "Flatten" && bn.Int("axis", 1) != 1 {
				return nil, refuse("a Flatten of axis other than 1")
			}
			if bn.Op == "Reshape" {
				shape, ok := im.consts[inputAt(bn, 1)]
				if !ok || len(shape.Values) != 2 || (shape.Values[1] != int64(chans) && shape.Values[1] != -1) ||
					(shape.Values[0] != -1 && shape.Values[0] != 0 && shape.Values[1] == -1) {
					return nil, refuse("a Reshape other than to [batch, C]")
				}
			}
			state = "linear"
		case (bn.Op == "Gemm" || bn.Op == "MatMul") && state == "linear":
			w := im.weights[inputAt(bn, 1)]
			transB := bn.Op == "Gemm" && bn.Int("transB", 0) == 1
			if w == nil || len(w.Shape) != 2 || bn.Int("transA", 0) != 0 || bn.Float("alpha", 1) != 1 || bn.Float("beta", 1) != 1 {
				return nil, refuse("the linear layer is not x·W (+ b) with float weights W")
			}
			rows, cols := w.Shape[0], w.Shape[1]
			if transB {
				rows, cols = cols, rows
			}
			if rows != chans {
				return nil, refuse(fmt.Sprintf("W has %d inputs, the last conv layer %d channels", rows, chans))
			}
			proj := bundle.NewParam(rows, cols)
			for r := range rows {
				for c := range cols {
					if transB {
						proj.Data[r*cols+c] = w.Data[c*rows+r]
					} else {
						proj.Data[r*cols+c] = w.Data[r*cols+c]
					}
				}
			}
			bias := bundle.NewParam(cols)
			biasName := inputAt(bn, 2)
			cur = bn.Outputs[0]
			if bn.Op == "MatMul" && i+1 < len(nodes) && nodes[i+1].Op == "Add" && slices.Contains(nodes[i+1].Inputs, cur) {
				// MatMul then Add of the bias.
				i++
				add := nodes[i]
				biasName = add.Inputs[0]
				if biasName == cur {
					biasName = inputAt(add, 1)
				}
				cur = add.Outputs[0]
			}
			if biasName != "" {
				p := im.weights[biasName]
				if p == nil || p.Size() != cols {
					return nil, refuse(fmt.Sprintf("the bias is not %d float weights", cols))
				}
				copy(bias.Data, p.Data)
			}
			tw.Weights["image.proj.w"], tw.Weights["image.proj.b"] = proj, bias
			tw.Arch.Embedding = cols
			state = "done"
			continue
		default:
			return nil, refuse(fmt.Sprintf("%s is not what comes next here", bn.Op))
		}
		cur = bn.Outputs[0]
	}
	switch {
	case state != "done":
		return nil, unsupported("the graph ends before its linear layer: %s", towerShape)
	case cur != out:
		return nil, unsupported("the graph's output %q is not the linear layer's (%q): %s", out, cur, towerShape)
	case len(tw.Arch.Channels) > 10:
		return nil, unsupported("%d conv layers, at most 10", len(tw.Arch.Channels))
	}
	return tw, nil
}

// inputAt is the node's i-th input name, "" if absent (an optional input
// left out).
func inputAt(n bundle.Node, i int) string {
	if i < len(n.Inputs) {
		return n.Inputs[i]
	}
	return ""
}

// attrIs reports whether the node's ints attribute name is want, or absent
// and def is want (nil def: the attribute must be there).
func attrIs(n bundle.Node, name string, want, def []int64) bool {
	v, ok := n.Ints[name]
	if !ok {
		return def != nil && slices.Equal(def, want)
	}
	return slices.Equal(v, want)
}

// reducesHW reports whether a ReduceMean averages axes 2 and 3 (the
// attribute before opset 18, the second input since).
func reducesHW(n bundle.Node, im *importer) bool {
	axes, ok := n.Ints["axes"]
	if !ok {
		c, found := im.consts[inputAt(n, 1)]
		if !found {
			return false
		}
		axes = c.Values
	}
	s := slices.Clone(axes)
	slices.Sort(s)
	return slices.Equal(s, []int64{2, 3}) || slices.Equal(s, []int64{-2, -1})
}
