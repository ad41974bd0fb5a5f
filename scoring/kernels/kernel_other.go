//go:build !amd64 || purego

package kernels

// impls lists the implementations this build supports: the portable one.
func impls() []*impl { return []*impl{pureGo} }
