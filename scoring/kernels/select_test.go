package kernels

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// SCORER_KERNEL names a supported kernel; empty means automatic; an unknown
// name, or a kernel the CPU or build lacks, is an error that says what is
// supported.
func TestForcedKernel(t *testing.T) {
	supported := impls()
	if k, err := forcedKernel("", supported); k != nil || err != nil {
		t.Errorf(`forcedKernel("") = %v, %v; want nil, nil`, k, err)
	}
	for _, want := range supported {
		if k, err := forcedKernel(want.name, supported); k != want || err != nil {
			t.Errorf("forcedKernel(%q) = %v, %v", want.name, k, err)
		}
	}
	for _, c := range []struct {
		setting   string
		supported []*impl
		msg       string
	}{
		{"avx1024", supported, "unknown kernel"},
		{"AVX512", supported, "unknown kernel"},
		{"avx512", []*impl{pureGo}, "not supported"},
		{"avx2-fma", []*impl{pureGo}, "not supported"},
	} {
		k, err := forcedKernel(c.setting, c.supported)
		if k != nil || err == nil || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), kernelEnv) {
			t.Errorf("forcedKernel(%q) = %v, %v; want an error saying %q", c.setting, k, err, c.msg)
			continue
		}
		t.Log(err)
	}
}

// The automatic choice is one of the supported kernels (which one depends
// on the CPU and on the measurement: not asserted); a wide kernel is kept
// only if it is wideMinSpeedup times as fast as the next.
func TestAutoSelect(t *testing.T) {
	supported := impls()
	k := autoSelect(supported, speedup)
	if !slices.Contains(supported, k) {
		t.Fatalf("autoSelect chose %q, not among the supported", k.name)
	}
	if got := current(); !slices.Contains(supported, got) {
		t.Errorf("current() = %q, not among the supported", got.name)
	}
	t.Logf("chosen: %s; in use: %s", k.name, current().name)

	wide := &impl{name: "wide", tile: tile6x16Go, wide: tile6x32Go}
	narrow := &impl{name: "narrow", tile: tile6x16Go}
	measured := 0
	ratio := func(r float64) func(a, b *impl) float64 {
		return func(a, b *impl) float64 {
			if a != wide || b != narrow {
				t.Errorf("measured %s against %s", a.name, b.name)
			}
			measured++
			return r
		}
	}
	for _, c := range []struct {
		list  []*impl
		ratio float64
		want  *impl
	}{
		{[]*impl{wide, narrow, pureGo}, 1.5, wide},
		{[]*impl{wide, narrow, pureGo}, wideMinSpeedup, wide},
		{[]*impl{wide, narrow, pureGo}, 1.05, narrow},
		{[]*impl{wide, narrow, pureGo}, 0.7, narrow},
		{[]*impl{narrow, pureGo}, 0.5, narrow}, // nothing to measure
		{[]*impl{wide, pureGo}, 0.5, wide},     // nothing to measure against
		{[]*impl{pureGo}, 0.5, pureGo},
	} {
		measured = 0
		if got := autoSelect(c.list, ratio(c.ratio)); got != c.want {
			t.Errorf("ratio %g, %d kernels: chose %q, want %q", c.ratio, len(c.list), got.name, c.want.name)
		}
		if want := c.list[0] == wide && c.list[1] == narrow; (measured == 1) != want {
			t.Errorf("ratio %g, %d kernels: measured %d times", c.ratio, len(c.list), measured)
		}
	}
}

// speedup tells a kernel from one that does four times the work.
func TestSpeedup(t *testing.T) {
	times4 := func(k int, a *[tileRows]*float32, b []float32, c []float32, ldc int, bias []float32, relu bool) {
		for range 4 {
			tile6x16Go(k, a, b, c, ldc, bias, relu)
		}
	}
	slow := &impl{name: "slow", tile: times4}
	s := speedup(pureGo, slow)
	if !(s > 2) || math.IsInf(s, 0) {
		t.Errorf("speedup(go, 4 × go) = %g", s)
	}
	t.Logf("speedup(go, 4 × go) = %.2f", s)
	for _, k := range impls() {
		if s := speedup(k, pureGo); !(s > 0) || math.IsInf(s, 0) {
			t.Errorf("speedup(%s, go) = %g", k.name, s)
		} else {
			t.Logf("%s: %.2f× go", k.name, s)
		}
	}
}

// TestKernelEnvChild is run by TestKernelEnv in a child process with
// SCORER_KERNEL set: it prints the kernel in use.
func TestKernelEnvChild(t *testing.T) {
	if os.Getenv("KERNELS_TEST_CHILD") == "" {
		t.Skip("run by TestKernelEnv")
	}
	fmt.Printf("tiles: %s\n", current().name)
	// A dense layer through Forward, hashed.
	rng := rand.New(rand.NewPCG(13, 14))
	const n, in, out = 13, 429, 80
	x, w, b := randomFloats(rng, n*in), randomFloats(rng, in*out), randomFloats(rng, out)
	y := make([]float32, n*out)
	PackLinear(w, b, in, out).Forward(x, n, y, true)
	h := fnv.New64a()
	for _, v := range y {
		_ = binary.Write(h, binary.LittleEndian, math.Float32bits(v))
	}
	fmt.Printf("forward: %x\n", h.Sum64())
}

// A process with SCORER_KERNEL set uses that kernel, and computes the same
// results as with any other; for an unknown or unsupported name, it stops
// at start-up with a message naming the variable.
func TestKernelEnv(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	supported := map[string]bool{}
	for _, k := range impls() {
		supported[k.name] = true
	}
	forwards := map[string]string{}
	for _, name := range append(slices.Clone(kernelNames), "bogus") {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestKernelEnvChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), kernelEnv+"="+name, "KERNELS_TEST_CHILD=1")
			out, err := cmd.CombinedOutput()
			if supported[name] {
				if err != nil || !strings.Contains(string(out), "tiles: "+name+"\n") {
					t.Errorf("%s=%s: %v\n%s", kernelEnv, name, err, out)
				}
				if _, hash, ok := strings.Cut(string(out), "forward: "); ok {
					forwards[name], _, _ = strings.Cut(hash, "\n")
				}
				return
			}
			if err == nil || !strings.Contains(string(out), kernelEnv+"=\""+name+"\"") {
				t.Errorf("%s=%s: want a failure naming it, got %v\n%s", kernelEnv, name, err, out)
			}
		})
	}
	// Every kernel's process computes the same dense layer, bit for bit.
	t.Log("Forward's hash by kernel:", forwards)
	if len(forwards) != len(supported) {
		t.Errorf("hashes from %d kernels, want %d", len(forwards), len(supported))
	}
	for name, h := range forwards {
		if h != forwards["go"] {
			t.Errorf("%s=%s: Forward's hash %s, go's %s", kernelEnv, name, h, forwards["go"])
		}
	}
}
