// Package training owns fitting click-prediction models: Train fits a
// bundle.Bundle to labelled model inputs (Dataset) with Gorgonia's symbolic
// differentiation and Adam on the mean binary cross-entropy,
// deterministically for a seed, and records how (bundle.TrainingInfo) and
// how well (AUC and log loss on the training and validation data, from
// package scoring/metrics).
//
// The graph it differentiates is the scoring package's
// (scoring.NewTrainingNetwork), so a trained bundle means what scoring
// computes; the metrics score with a scoring.Model sharing the weights
// being trained. This package must not know the bundle's file layout (it
// returns a Bundle; the caller names, describes and saves it) nor the
// kernels; scoring, bundle and kernels must not depend on it.
package training
