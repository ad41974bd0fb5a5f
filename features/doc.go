// Package features owns the declarative feature spec and the transforms it
// describes: pure, vectorized functions from Arrow columns to the model's
// input tensors. Training and scoring call the same code with the same spec
// and fitted Stats (both stored in the model bundle), so a model never sees
// features computed differently from the ones it was trained on.
//
// Model inputs: Dense is N×D float32 (numeric features in spec order) and Cat
// is N×K int32 (every other feature in spec order). Index 0 of every index
// input means missing (or out of vocabulary); see Hash for hashed features and
// timePart for timestamp parts. No I/O and no goroutines here.
package features
