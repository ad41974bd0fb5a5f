// Package perf holds what the performance benchmarks and the memory check
// share: the two reference click models of the performance issue as scorer
// bundles (ctr-mlp and ctr-logreg, seeded random weights of the reference
// shapes), and a seeded generator of Criteo-like ad dumps (an id, 13 integer
// counts, 26 hashed categoricals) as CSV text, Arrow records or prepared
// model inputs.
//
// Nothing here is used when scoring for real. The data is generated, never
// committed: benchmarks write it to a temporary folder, `make bench-data`
// and `make rss` to a folder outside the repository (internal/perf/perfdata).
package perf
