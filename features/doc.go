// Package features owns the declarative feature spec and the transforms it
// describes: pure, vectorized functions from Arrow columns to the model's
// input tensors. Training and scoring call the same code with the same spec
// and fitted Stats (both stored in the model bundle), so a model never sees
// features computed differently from the ones it was trained on.
//
// Model inputs: Dense is N×D float32 (numeric features in spec order) and Cat
// is N×K int32 (every other feature in spec order). Index 0 of every index
// input means missing (or out of vocabulary), except for a categorical of
// integer ids (ids: N), whose index is the id itself (0..N-1) and whose
// missing_id stands for a missing one; see Hash for hashed features and
// timePart for timestamp parts. No I/O and no goroutines here.
//
// A spec decoded from YAML other than by ParseSpec (the copy in a model
// bundle) goes through Spec.SetDefaults, the one place the defaults live.
// Ids out of range under out_of_range: reject are refused by the readers
// (Spec.RejectRanges gives the ranges), where a row can be reported with
// its file, row and column; Transform refuses them too (ErrOutOfRange).
package features
