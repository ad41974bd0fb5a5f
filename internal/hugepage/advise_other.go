//go:build !linux

package hugepage

// advise does nothing outside Linux.
func advise(b []byte) {}

// Collapse does nothing outside Linux.
func Collapse(b []byte) {}
