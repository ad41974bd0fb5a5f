// Package scoring owns click-prediction models: the model bundle (its files,
// loading, saving and validation), compiling a bundle into a Gorgonia graph
// (Model), scoring feature batches with it, and training new bundles
// (Train), with the AUC and LogLoss metrics.
//
// # Models
//
// A model maps one row of features.Batch (D dense float32 features, K
// categorical int32 indices, index 0 meaning missing) to a click
// probability sigmoid(logit), where the logit depends on the architecture:
//
//   - wide: a logistic regression. logit = wide.bias + Σ_k wide.emb[row_k] +
//     Σ_d x_d·wide.dense[d].
//   - deep: an MLP over the concatenation of the K embeddings (in feature
//     order, K·E values) and the D dense features: layers deep.l0 .. deep.l{n-1}
//     with ReLU, then deep.out without activation.
//   - wide_deep: the sum of the wide and deep logits.
//
// Categorical feature k's index i addresses row_k = offsets[k] + i of the
// concatenated embedding tables, where offsets are the prefix sums of the
// cardinalities (offsets[0] = 0).
//
// A Model is compiled once for a batch size and is used by one goroutine;
// each worker builds its own from a shared, read-only Bundle. Score pads a
// short batch and splits a long one; a row's score does not depend on the
// other rows or the batch size.
//
// # Scoring graph and kernels
//
// A Model's Gorgonia graph is the forward pass written with fused ops (see
// buildScoringNetwork): the embedding gather and the concatenation with the
// dense features in one pass into one reused buffer; each dense layer as
// one matrix product over weights packed once, with the bias and the ReLU
// applied to each tile while it is in registers; the sigmoid of the summed
// logits. Every op owns its output buffer, and the graph is run in
// Gorgonia's topological order by a small plan rather than the tape machine
// (whose per-run goroutine hand-off cost more than a logistic regression's
// batch), so scoring allocates nothing per batch. Tests check that the tape
// machine computes the same scores on the same graph.
//
// The matrix kernels (package kernels) are Go assembly for AVX2 + FMA3, a
// portable Go tile on other CPUs or with the purego build tag, or OpenBLAS
// through cgo with the openblas build tag (which also plugs OpenBLAS into
// Gorgonia for training). Each worker is one thread: no kernel starts
// threads of its own. docs/performance.md has the measurements.
//
// # Bundle format
//
// A bundle is a folder (a key prefix in a store.Bucket) of two objects:
//
//   - model.yaml: format (1), name, version, arch (kind, embedding_dim,
//     hidden), inputs (dense, cardinalities), features and stats (the
//     feature spec and its fitted statistics, as the features package
//     defines them), metrics (auc, logloss, rows, val_auc, val_logloss,
//     val_rows) and training (data, rows, command, seed, epochs,
//     batch_size, learning_rate, l2, trained_at). Unknown keys are errors.
//   - weights.safetensors: the weights, every tensor F32, row-major.
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
// ones; a bundle must have exactly the tensors its architecture needs.
// Layer weights are [in, out]: y = x·W + b.
//
// Bringing in another model's weights, for example an ONNX "ctr-mlp" of 26
// hashed categoricals embedded in 16 dimensions and 13 dense features
// (429 -> 256 -> 128 -> 1), gives a deep bundle with embedding_dim 16,
// hidden [256, 128] and 26 cardinalities. Stack its 26 embedding tables in
// feature order into deep.emb, each table's row i being that feature's index
// i (index 0 is "missing"); make sure its first layer's input is the
// embeddings followed by the dense features, reordering the rows of
// deep.l0.w if the source concatenates otherwise; and transpose weights
// stored as [out, in] (ONNX Gemm with transB=1, PyTorch Linear).
//
// # Training
//
// Train fits a bundle with Gorgonia's symbolic differentiation and Adam on
// the mean binary cross-entropy, deterministically for a seed. Embedding
// lookups use a custom Gorgonia op with a scatter-add gradient (gorgonia's
// ByIndices has no usable gradient). Training differentiates the unfused
// graph of the same architecture and weight names (buildNetwork); scoring
// runs the fused one, and tests hold both to an independent float64
// forward pass. The embedding gradient is dense ([V, E] per step), which
// suits tables of up to some hundred thousand rows.
package scoring
