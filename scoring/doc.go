// Package scoring owns compiling a model bundle into a Gorgonia graph and
// running it: the model definition (what each architecture computes from
// its weights), the graph compiler shared by training and inference, the
// inference plan with its fused ops (Model), and the worker pool that
// scores a stream of records (Run). It is the only package that starts
// goroutines for data work.
//
// The jobs are split by owner:
//
//   - scoring/bundle: the bundle format (model.yaml, weights.safetensors),
//     loading, saving and validating it, and the weight names.
//   - scoring/kernels: the matrix kernels (Go assembly, portable Go,
//     OpenBLAS) that the fused ops call.
//   - scoring/onnx: importing an ONNX model as a bundle of arch kind graph
//     (scorer import onnx).
//   - scoring/training: fitting a bundle (Adam, epochs).
//   - scoring/metrics: the metrics of click models (AUC, log loss, Brier,
//     calibration), for training and evaluation.
//   - scoring (this package): everything between a Bundle and scores.
//
// This package must not know the bundle's file layout or encodings, how a
// kernel is implemented or selected, or how a model is trained: it reads a
// validated bundle.Bundle, calls kernels, and hands training an unfused,
// differentiable graph (NewTrainingNetwork).
//
// # Models
//
// A model maps one row of features.Batch (D dense float32 features, K
// categorical int32 indices, index 0 meaning missing) to a click
// probability sigmoid(logit), where the logit depends on the architecture
// (the weights are named in package bundle's documentation):
//
//   - wide: a logistic regression. logit = wide.bias + Σ_k wide.emb[row_k] +
//     Σ_d x_d·wide.dense[d].
//   - deep: an MLP over the concatenation of the K embeddings (in feature
//     order, K·E values) and the D dense features: layers deep.l0 .. deep.l{n-1}
//     with ReLU, then deep.out without activation.
//   - wide_deep: the sum of the wide and deep logits.
//   - graph: an imported model (bundle.Graph, ONNX operators). Its graph
//     inputs are bound to the features; compileGraph (graph_compile.go)
//     folds its constants, keeps the batch the first dimension of every
//     runtime value, refuses what it cannot run with the node named, and
//     builds the same fused ops (linear layers, gathers written into their
//     concatenation, the checked sigmoid) plus generic kernels for the
//     other operators (graph_ops.go compiles each operator, graph_kernels.go
//     computes them). docs/models.md lists them.
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
// Scores are in (0, 1): the sigmoid is rounded to the nearest float32
// inside the interval, never to exactly 0 or 1. After each graph run,
// Score checks the batch's logits in one pass and refuses a NaN or
// infinite one, or (WithMaxAbsLogit, PoolOptions.MaxAbsLogit) one of
// larger magnitude than the limit, with a *LogitError naming the row: it
// wraps ErrModel, or ErrInput when the row's own inputs were not finite.
//
// # Skew guard
//
// CheckReference recomputes a bundle's reference rows (bundle.ReferenceRow:
// raw input values with the features and score recorded when the bundle
// was made) through the feature pipeline and a compiled Model, and reports
// the first feature that is not bit for bit the same, or the first score
// further than ReferenceScoreTolerance from the recorded one, as a
// *SkewError. internal/app runs it at every load of a bundle.
//
// # Scoring graph and kernels
//
// A Model's Gorgonia graph is the forward pass written with fused ops (see
// buildScoringNetwork): the embedding gather and the concatenation with the
// dense features in one pass into one reused buffer; each dense layer as
// one matrix product over weights packed once (kernels.Linear), with the
// bias and the ReLU applied to each tile while it is in registers; the
// sigmoid of the summed logits. Every op owns its output buffer, and the
// graph is run in Gorgonia's topological order by a small plan rather than
// the tape machine (whose per-run goroutine hand-off cost more than a
// logistic regression's batch), so scoring allocates nothing per batch.
// Tests check that the tape machine computes the same scores on the same
// graph.
//
// The matrix kernels (package kernels) are Go assembly for AVX2 + FMA3, a
// portable Go tile on other CPUs or with the purego build tag, or OpenBLAS
// through cgo with the openblas build tag (which this package also plugs
// into Gorgonia, for training). Each worker is one thread: no kernel starts
// threads of its own. docs/performance.md has the measurements.
//
// # Training graph
//
// NewTrainingNetwork builds the unfused graph of the same architecture and
// weight names, which Gorgonia differentiates (package training runs it
// with Adam). Embedding lookups there use a custom Gorgonia op with a
// scatter-add gradient (gorgonia's ByIndices has no usable gradient).
// Tests hold both graphs to an independent float64 forward pass. The
// embedding gradient is dense ([V, E] per step), which suits tables of up
// to some hundred thousand rows.
//
// # Images
//
// A model with image features (arch.image) has an image tower: conv layers,
// pooling, a projection. Training differentiates it inside the training
// graph, on each step's distinct images. Scoring runs it apart (Tower, on
// the packed kernels), because its output is cached by the image's content:
// ImageStage computes each distinct image's embedding once per run (or
// takes it from an earlier run's, Preload) and fills Batch.ImageEmb, which
// the compiled model reads as dense inputs after the numeric ones. Tests
// hold the two towers to the same scores and to a float64 definition.
// docs/images.md.
package scoring
