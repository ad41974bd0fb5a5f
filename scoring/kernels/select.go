package kernels

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// kernelEnv is the environment variable that forces a kernel: "go",
// "avx2-fma" or "avx512". A name this build and CPU do not support, or an
// unknown name, is an error (Check; a panic naming the variable and the
// kernels supported at the first use of a kernel without Check): the
// variable is for benchmarks and reproductions, where silently running
// another kernel would mislabel the measurements. Unset or empty, the kernel is
// chosen at first use (autoSelect). With the openblas build tag, dense
// layers run on OpenBLAS whatever it says; it then picks the gather.
const kernelEnv = "SCORER_KERNEL"

// kernelNames are the names of every implementation of any build, best
// first.
var kernelNames = []string{"avx512", "avx2-fma", "go"}

// forced is the kernel that SCORER_KERNEL names (nil if it is unset), or
// why it cannot be used.
var forced = sync.OnceValues(func() (*impl, error) { return forcedKernel(os.Getenv(kernelEnv), impls()) })

// Check reports a SCORER_KERNEL that names no kernel this build and CPU
// support. Programs call it at start to fail cleanly; a kernel used without
// it panics with the same error at its first call.
func Check() error {
	_, err := forced()
	return err
}

// forcedKernel returns the kernel that setting (SCORER_KERNEL's value)
// names among supported, nil if setting is empty, or an error if the name
// is unknown or its kernel is not supported.
func forcedKernel(setting string, supported []*impl) (*impl, error) {
	if setting == "" {
		return nil, nil
	}
	var names []string
	for _, k := range supported {
		if k.name == setting {
			return k, nil
		}
		names = append(names, k.name)
	}
	if !slices.Contains(kernelNames, setting) {
		return nil, fmt.Errorf("kernels: %s=%q: unknown kernel (known: %s; supported here: %s)",
			kernelEnv, setting, strings.Join(kernelNames, ", "), strings.Join(names, ", "))
	}
	return nil, fmt.Errorf("kernels: %s=%q: not supported by this CPU or build (supported here: %s)",
		kernelEnv, setting, strings.Join(names, ", "))
}

// current is the kernel this process uses, chosen at its first call: the
// one SCORER_KERNEL forces, else autoSelect's choice.
var current = sync.OnceValue(func() *impl {
	k, err := forced()
	if err != nil {
		panic(err)
	}
	if k != nil {
		return k
	}
	return autoSelect(impls(), speedup)
})

// wideMinSpeedup is how much faster a kernel with a wide tile (AVX-512) must
// be than the next one (AVX2) for autoSelect to take it: on CPUs that run
// 512-bit instructions in two 256-bit halves (AMD Zen 4) the two are about
// equally fast, and then the choice stays with AVX2.
const wideMinSpeedup = 1.10

// autoSelect chooses among supported (best first, as impls lists them): the
// first, except that a first kernel with a wide tile (AVX-512) followed by
// another assembly one (AVX2) is measured against it (speedup, which
// returns how many times as fast a is as b), and kept only if it is at
// least wideMinSpeedup times as fast.
func autoSelect(supported []*impl, speedup func(a, b *impl) float64) *impl {
	if len(supported) > 1 && supported[0].wide != nil && supported[1] != pureGo {
		if speedup(supported[0], supported[1]) < wideMinSpeedup {
			return supported[1]
		}
	}
	return supported[0]
}

// speedup times kernel a against kernel b on one fixed dense layer (14 rows,
// a block of the tall tile; 256 inputs, 64 outputs, ReLU: 459 kFLOP per
// call) and returns how many times as fast a is: the fastest of 15 rounds
// of 8 calls for each, the
// two alternating so that both see the same load, after a warm-up; about
// 2 ms in all on a current core. Taking the fastest round discounts
// interruptions, which only ever add time.
func speedup(a, b *impl) float64 {
	const n, in, out, rounds, calls = tallRows, 256, 64, 15, 8
	x := make([]float32, n*in)
	w := make([]float32, in*out)
	// Values in [-1, 1] (no subnormals, no overflow) from an LCG.
	seed := uint32(1)
	for _, s := range [][]float32{x, w} {
		for i := range s {
			seed = seed*1664525 + 1013904223
			s[i] = float32(int32(seed)) / (1 << 31)
		}
	}
	p := PackLinear(w, make([]float32, out), in, out)
	y := make([]float32, n*out)
	round := func(k *impl) time.Duration {
		start := time.Now()
		for range calls {
			p.forwardTiles(k, x, n, y, true)
		}
		return time.Since(start)
	}
	round(a)
	round(b)
	ta, tb := time.Duration(1<<62), time.Duration(1<<62)
	for range rounds {
		ta = min(ta, round(a))
		tb = min(tb, round(b))
	}
	return float64(tb) / float64(max(ta, 1))
}
