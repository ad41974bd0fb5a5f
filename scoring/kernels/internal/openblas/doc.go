// Package openblas binds the matrix products of OpenBLAS (Debian:
// apt-get install libopenblas-dev) for the kernels package's openblas build
// tag; it lives apart because cgo cannot share a package with Go assembly.
// Without the openblas tag (or without cgo) it is empty. Importing it sets
// OpenBLAS to one thread per call, so that each scoring worker is one
// thread and workers do not oversubscribe the cores.
package openblas
