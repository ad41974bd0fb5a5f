//go:build !linux

package hugepage

// Advise does nothing outside Linux.
func Advise(b []byte) {}

// Collapse does nothing outside Linux.
func Collapse(b []byte) {}
