// Package bundle owns the model bundle format: the files of a trained model
// in a store.Bucket folder, their Go types (Bundle, Architecture, Inputs,
// Param, TrainingInfo), loading (Load), saving (Bundle.Save) and validation
// (Bundle.Validate, ValidateArch, WeightShapes).
//
// It must not know how a model is computed, scored or trained: the scoring
// package compiles a Bundle into a Gorgonia graph, the training package
// fits one. Both depend on this package; it depends on neither.
//
// # Files
//
// A bundle is a folder (a key prefix in a store.Bucket) of two objects and
// an optional third:
//
//   - model.yaml: format (1), name, version, arch (kind, embedding_dim,
//     hidden), inputs (dense, cardinalities), features and stats (the
//     feature spec and its fitted statistics, as the features package
//     defines them), metrics (auc, logloss, rows, val_auc, val_logloss,
//     val_rows) and training (data, rows, command, seed, epochs,
//     batch_size, learning_rate, l2, trained_at). Unknown keys are errors.
//   - weights.safetensors: the weights, every tensor F32, row-major.
//   - reference.json: the reference rows (ReferenceRow: raw input values,
//     the features and the score computed when the bundle was made), one
//     a line, for the skew guard of package scoring. Optional: a bundle
//     without it loads with none.
//
// Save writes the weights and reference.json first and model.yaml last,
// so a model.yaml is only ever seen beside its weights. Load reads the weights into one buffer
// of the object's size and uses them in place where the machine allows.
// Errors of a bundle that is not valid wrap ErrInvalid; a weight that is
// NaN or infinite, or feature statistics that are not finite, make a bundle
// invalid (the error names the tensor or feature and the first bad index).
//
// # Inputs
//
// A model maps one row of features.Batch (D dense float32 features, K
// categorical int32 indices, index 0 meaning missing) to a click
// probability. Categorical feature k's index i addresses row_k = offsets[k]
// + i of the concatenated embedding tables, where offsets are the prefix
// sums of the cardinalities (Inputs.Offsets; offsets[0] = 0).
//
// # Weight names
//
// With V the sum of the cardinalities, K their number, D the dense width, E
// the embedding dimension and h_i the hidden widths:
//
//	wide.emb     [V, 1]      wide weight of every categorical value   (if K > 0)
//	wide.dense   [D, 1]      wide weight of every dense feature       (if D > 0)
//	wide.bias    [1]
//	deep.emb     [V, E]      embedding of every categorical value     (if K > 0)
//	deep.l{i}.w  [in_i, h_i] hidden layer i, in_0 = K·E + D, in_i = h_{i-1}
//	deep.l{i}.b  [h_i]
//	deep.out.w   [h_last, 1] output layer (h_last = K·E + D with no hidden layers)
//	deep.out.b   [1]
//
// wide and wide_deep have the wide.* tensors, deep and wide_deep the deep.*
// ones; a bundle must have exactly the tensors its architecture needs
// (WeightShapes). Layer weights are [in, out]: y = x·W + b; the deep part's
// input is the K embeddings in feature order followed by the D dense
// features.
//
// With image inputs (Inputs.Images = I, Architecture.Image: conv channels
// c_i and embedding E'), each image feature's embedding is I·E' more dense
// inputs after the D (wide.dense and deep.l0.w, or deep.out.w, grow by
// I·E' rows), and the tower has
//
//	image.conv{i}.w  [c_i, c_{i-1}, 3, 3]  conv filters (c_{-1} = 3, RGB)
//	image.conv{i}.b  [c_i]
//	image.proj.w     [c_last, E']          projection of each channel's average
//	image.proj.b     [E']
//	image.missing    [E']                  embedding of a row without a usable image
//
// # Graph bundles
//
// Arch kind graph is an imported model (`scorer import onnx`, package
// scoring/onnx): model.yaml's graph section (Graph) holds the ONNX nodes
// the output depends on, the graph inputs bound to features, the output and
// what it is (probability or logit), the opset and the source file; the
// weights are the float32 initializers by their ONNX names (any names and
// shapes, each used by some node) and the integer initializers are
// graph.constants. Validate checks names and bindings; package scoring
// compiles the graph, and that is where unsupported operators and shapes
// are refused.
//
// # Weights from elsewhere, by hand
//
// Bringing in another model's weights, for example an ONNX "ctr-mlp" of 26
// hashed categoricals embedded in 16 dimensions and 13 dense features
// (429 -> 256 -> 128 -> 1), gives a deep bundle with embedding_dim 16,
// hidden [256, 128] and 26 cardinalities. Stack its 26 embedding tables in
// feature order into deep.emb, each table's row i being that feature's index
// i (index 0 is "missing"); make sure its first layer's input is the
// embeddings followed by the dense features, reordering the rows of
// deep.l0.w if the source concatenates otherwise; and transpose weights
// stored as [out, in] (ONNX Gemm with transB=1, PyTorch Linear). `scorer
// import onnx` does all of this, and more, without a conversion script.
package bundle
