//go:build !amd64 || purego

package features

// hashAVX512 is false: other builds lack the AVX-512 hash of hash_amd64.go.
var hashAVX512 = false

// hash8x8 hashes nothing (see hash_amd64.go).
func hash8x8(dst []uint64, data []byte, offs []int32, base int32) int { return 0 }
