package scoring

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/adtech/scorer/scoring/bundle"
)

// Network is a model compiled into a Gorgonia graph for a fixed batch size:
// the graph of a Model (buildScoringNetwork, fused and forward only) or the
// graph that training differentiates (NewTrainingNetwork). A Network is not
// safe for concurrent use.
type Network struct {
	g     *gorgonia.ExprGraph
	batch int

	// Inputs, bound once to the tensors below; callers fill the tensors'
	// data in place before each run. Nil where the model has no such input.
	dense        *gorgonia.Node // (B, D) float32
	cat          *gorgonia.Node // (B, K) int32, indices into the concatenated tables
	denseT, catT *tensor.Dense
	// feeds are the inputs of an imported graph (compileGraph), instead
	// of dense and cat.
	feeds []feed
	// The image inputs of a training network (nil without image
	// features): imagesT (U, 3, S, S) holds the step's distinct images
	// (U slots), imageIdxT (B, I) int32 each row's slot per image feature,
	// U meaning none (the learned missing embedding).
	imagesT, imageIdxT *tensor.Dense

	// params are the learnable nodes, in a fixed order.
	params []*gorgonia.Node

	logit *gorgonia.Node // (B, 1)
	// prob is sigmoid(logit), (B, 1), in the scoring graph only.
	prob *gorgonia.Node
}

// NewTrainingNetwork validates the bundle and builds the graph of its model
// for batches of batch rows, with the unfused ops that Gorgonia can
// differentiate (see the package documentation): the same architecture and
// weight names as the graph a Model runs. The parameter nodes' tensors share
// the bundle's weight data, so running a solver on them updates the weights
// in place.
//
// With image inputs, the network holds imageSlots images per step
// (ImagesInput) and runs the tower on all of them; imageSlots <= 0 means
// batch × I, room for every row's own images.
func NewTrainingNetwork(bu *bundle.Bundle, batch, imageSlots int) (*Network, error) {
	if err := bu.Validate(); err != nil {
		return nil, fmt.Errorf("build graph: %w", err)
	}
	if imageSlots <= 0 {
		imageSlots = batch * bu.Inputs.Images
	}
	return buildNetwork(bu.Arch, bu.Inputs, bu.Weights, batch, imageSlots)
}

// Graph is the network's Gorgonia graph.
func (n *Network) Graph() *gorgonia.ExprGraph { return n.g }

// Params are the learnable nodes, in a fixed order; each is a view of (part
// of) a weight tensor. The caller must not modify the slice.
func (n *Network) Params() []*gorgonia.Node { return n.params }

// Logit is the (B, 1) logit node.
func (n *Network) Logit() *gorgonia.Node { return n.logit }

// DenseInput is the (B, D) float32 tensor bound to the dense input, nil
// without dense features. Fill its data in place before each run.
func (n *Network) DenseInput() *tensor.Dense { return n.denseT }

// CatInput is the (B, K) int32 tensor bound to the categorical input, nil
// without categorical features. Its values are rows of the concatenated
// embedding tables: a column's index plus its offset (bundle.Inputs.Offsets).
// Fill its data in place before each run.
func (n *Network) CatInput() *tensor.Dense { return n.catT }

// ImagesInput is the (U, 3, S, S) float32 tensor of a training network's
// image slots, nil without image features. Fill it in place before each
// run: slot u at u × 3·S·S, as readers/images lays out an image.
func (n *Network) ImagesInput() *tensor.Dense { return n.imagesT }

// ImageIndexInput is the (B, I) int32 tensor of each row's image slot per
// image feature (U for none: the missing embedding), nil without image
// features. Fill it in place before each run.
func (n *Network) ImageIndexInput() *tensor.Dense { return n.imageIdxT }

// buildNetwork builds the training graph for the architecture over the
// given weights, which must have been checked (bundle.Bundle.Validate).
func buildNetwork(a bundle.Architecture, in bundle.Inputs, weights map[string]*bundle.Param, batch, imageSlots int) (*Network, error) {
	if batch < 1 {
		return nil, fmt.Errorf("build graph: batch size %d, want >= 1", batch)
	}
	g := gorgonia.NewGraph()
	n := &Network{g: g, batch: batch}
	k, d := in.K(), in.Dense

	if d > 0 {
		n.denseT = tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(batch, d))
		n.dense = gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(batch, d), gorgonia.WithName("input.dense"), gorgonia.WithValue(n.denseT))
	}
	if k > 0 {
		n.catT = tensor.New(tensor.Of(tensor.Int32), tensor.WithShape(batch, k))
		n.cat = gorgonia.NewMatrix(g, tensor.Int32, gorgonia.WithShape(batch, k), gorgonia.WithName("input.cat"), gorgonia.WithValue(n.catT))
	}

	// param makes a node over rows [from, from+rows) of a weight, seen as a
	// (rows, cols) matrix; biases of shape (h) become (1, h).
	param := func(name, node string, from, rows, cols int) *gorgonia.Node {
		w := weights[name]
		t := tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(w.Data[from*cols:(from+rows)*cols]))
		p := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(rows, cols), gorgonia.WithName(node), gorgonia.WithValue(t))
		n.params = append(n.params, p)
		return p
	}
	// img is (B, I·E): the rows' image embeddings, inputs after the
	// dense ones.
	var img *gorgonia.Node
	iw := a.ImageWidth(in)
	if iw > 0 {
		var err error
		if img, err = n.buildTower(a.Image, in, param, imageSlots); err != nil {
			return nil, fmt.Errorf("build graph: image tower: %w", err)
		}
	}

	var logit *gorgonia.Node
	add := func(x *gorgonia.Node, err error) error {
		if err != nil {
			return err
		}
		if logit == nil {
			logit = x
			return nil
		}
		logit, err = gorgonia.Add(logit, x)
		return err
	}

	if a.HasWide() {
		if k > 0 {
			// Sum of the K looked-up scalars, as a product with ones.
			emb, err := embed(param("wide.emb", "wide.emb", 0, in.TotalCardinality(), 1), n.cat)
			if err != nil {
				return nil, fmt.Errorf("build graph: %w", err)
			}
			ones := tensor.New(tensor.WithShape(k, 1), tensor.WithBacking(onesF32(k)))
			one := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(k, 1), gorgonia.WithName("wide.ones"), gorgonia.WithValue(ones))
			if err := add(gorgonia.Mul(emb, one)); err != nil {
				return nil, fmt.Errorf("build graph: wide: %w", err)
			}
		}
		if d > 0 {
			if err := add(gorgonia.Mul(n.dense, param("wide.dense", "wide.dense", 0, d, 1))); err != nil {
				return nil, fmt.Errorf("build graph: wide: %w", err)
			}
		}
		if img != nil {
			if err := add(gorgonia.Mul(img, param("wide.dense", "wide.dense/image", d, iw, 1))); err != nil {
				return nil, fmt.Errorf("build graph: wide: %w", err)
			}
		}
		var err error
		if n.logit, err = gorgonia.BroadcastAdd(logit, param("wide.bias", "wide.bias", 0, 1, 1), nil, []byte{0}); err != nil {
			return nil, fmt.Errorf("build graph: wide: %w", err)
		}
	}

	if a.HasDeep() {
		e := a.EmbeddingDim
		var emb *gorgonia.Node
		if k > 0 {
			var err error
			if emb, err = embed(param("deep.emb", "deep.emb", 0, in.TotalCardinality(), e), n.cat); err != nil {
				return nil, fmt.Errorf("build graph: %w", err)
			}
		}
		// Layers: the hidden ones (ReLU) and the output one. The first
		// layer's weight is two nodes, its embedding rows and its dense rows,
		// instead of a concatenation of the inputs.
		widths := append(append([]int(nil), a.Hidden...), 1)
		var h *gorgonia.Node
		for i, out := range widths {
			wName, bName := fmt.Sprintf("deep.l%d.w", i), fmt.Sprintf("deep.l%d.b", i)
			if i == len(widths)-1 {
				wName, bName = "deep.out.w", "deep.out.b"
			}
			var z *gorgonia.Node
			mul := func(x, w *gorgonia.Node) error {
				m, err := gorgonia.Mul(x, w)
				if err != nil {
					return err
				}
				if z == nil {
					z = m
					return nil
				}
				z, err = gorgonia.Add(z, m)
				return err
			}
			if i == 0 {
				if emb != nil {
					if err := mul(emb, param(wName, wName+"/emb", 0, k*e, out)); err != nil {
						return nil, fmt.Errorf("build graph: %s: %w", wName, err)
					}
				}
				if d > 0 {
					if err := mul(n.dense, param(wName, wName+"/dense", k*e, d, out)); err != nil {
						return nil, fmt.Errorf("build graph: %s: %w", wName, err)
					}
				}
				if img != nil {
					if err := mul(img, param(wName, wName+"/image", k*e+d, iw, out)); err != nil {
						return nil, fmt.Errorf("build graph: %s: %w", wName, err)
					}
				}
			} else {
				if err := mul(h, param(wName, wName, 0, widths[i-1], out)); err != nil {
					return nil, fmt.Errorf("build graph: %s: %w", wName, err)
				}
			}
			z, err := gorgonia.BroadcastAdd(z, param(bName, bName, 0, 1, out), nil, []byte{0})
			if err != nil {
				return nil, fmt.Errorf("build graph: %s: %w", bName, err)
			}
			if i == len(widths)-1 {
				h = z
				break
			}
			if h, err = gorgonia.Rectify(z); err != nil {
				return nil, fmt.Errorf("build graph: layer %d: %w", i, err)
			}
		}
		if n.logit == nil {
			n.logit = h
		} else {
			var err error
			if n.logit, err = gorgonia.Add(n.logit, h); err != nil {
				return nil, fmt.Errorf("build graph: wide+deep: %w", err)
			}
		}
	}
	if n.logit == nil {
		return nil, fmt.Errorf("build graph: %w: unknown architecture kind %q", bundle.ErrInvalid, a.Kind)
	}
	return n, nil
}

// buildTower adds the image tower to a training graph: the U image slots
// through each conv layer (im2col, a product with the filters seen as a
// (Cin·9, Cout) matrix, bias, ReLU: the pixels come out channel last, as
// the packed kernels compute them, and go back to channel first for the
// pooling), 2×2 max pooling, the global average of each channel, the
// projection, then the missing embedding as slot U, gathered per row and
// image feature into (B, I·E).
func (n *Network) buildTower(t *bundle.ImageTower, in bundle.Inputs, param func(name, node string, from, rows, cols int) *gorgonia.Node, slots int) (*gorgonia.Node, error) {
	g, s := n.g, in.ImageSize
	n.imagesT = tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(slots, 3, s, s))
	x := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(slots, 3, s, s), gorgonia.WithName("input.images"), gorgonia.WithValue(n.imagesT))
	n.imageIdxT = tensor.New(tensor.Of(tensor.Int32), tensor.WithShape(n.batch, in.Images))
	idx := gorgonia.NewMatrix(g, tensor.Int32, gorgonia.WithShape(n.batch, in.Images), gorgonia.WithName("input.image_idx"), gorgonia.WithValue(n.imageIdxT))
	cin := 3
	for i, c := range t.Channels {
		name := fmt.Sprintf("image.conv%d", i)
		col, err := gorgonia.Im2Col(x, tensor.Shape{3, 3}, tensor.Shape{1, 1}, tensor.Shape{1, 1}, tensor.Shape{1, 1})
		if err != nil {
			return nil, fmt.Errorf("%s: im2col: %w", name, err)
		}
		if col, err = gorgonia.Reshape(col, tensor.Shape{slots * s * s, cin * 9}); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		w, err := gorgonia.Transpose(param(name+".w", name+".w", 0, c, cin*9))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		z, err := gorgonia.Mul(col, w)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if z, err = gorgonia.BroadcastAdd(z, param(name+".b", name+".b", 0, 1, c), nil, []byte{0}); err != nil {
			return nil, fmt.Errorf("%s: bias: %w", name, err)
		}
		if z, err = gorgonia.Rectify(z); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if z, err = gorgonia.Reshape(z, tensor.Shape{slots, s, s, c}); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if z, err = gorgonia.Transpose(z, 0, 3, 1, 2); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if x, err = gorgonia.MaxPool2D(z, tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2}); err != nil {
			return nil, fmt.Errorf("%s: max pool: %w", name, err)
		}
		s, cin = s/2, c
	}
	flat, err := gorgonia.Reshape(x, tensor.Shape{slots * cin, s * s})
	if err != nil {
		return nil, fmt.Errorf("global average: %w", err)
	}
	avg, err := gorgonia.Mean(flat, 1)
	if err != nil {
		return nil, fmt.Errorf("global average: %w", err)
	}
	if avg, err = gorgonia.Reshape(avg, tensor.Shape{slots, cin}); err != nil {
		return nil, fmt.Errorf("global average: %w", err)
	}
	emb, err := gorgonia.Mul(avg, param("image.proj.w", "image.proj.w", 0, cin, t.Embedding))
	if err != nil {
		return nil, fmt.Errorf("projection: %w", err)
	}
	if emb, err = gorgonia.BroadcastAdd(emb, param("image.proj.b", "image.proj.b", 0, 1, t.Embedding), nil, []byte{0}); err != nil {
		return nil, fmt.Errorf("projection: %w", err)
	}
	table, err := gorgonia.Concat(0, emb, param("image.missing", "image.missing", 0, 1, t.Embedding))
	if err != nil {
		return nil, fmt.Errorf("missing embedding: %w", err)
	}
	return embed(table, idx)
}

func onesF32(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = 1
	}
	return s
}
