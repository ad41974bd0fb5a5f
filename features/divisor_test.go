package features

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestDivisorMod checks divisor.mod against Go's % for divisors of every
// kind (powers of two, those whose magic fits 64 bits and those that need
// 65, the largest), on random hashes and on the edges around multiples of d.
func TestDivisorMod(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	ds := []uint64{1, 2, 3, 5, 6, 7, 10, 50, 641, 1000, 10000, 65536, 100003, 1 << 20, 1<<20 + 1, 1000000, 1<<31 - 1, 1 << 31, 1<<32 - 1, 1<<32 + 1, 1e12 + 39, 1<<63 - 1, 1 << 63, 1<<63 + 1, math.MaxUint64 - 1, math.MaxUint64}
	for range 200 {
		ds = append(ds, rng.Uint64N(1<<24)+1, rng.Uint64()>>rng.UintN(64)|1, rng.Uint64()>>rng.UintN(64)+1)
	}
	kinds := map[string]int{}
	for _, d := range ds {
		if d == 0 {
			continue
		}
		v := newDivisor(d)
		switch {
		case v.magic == 0:
			kinds["power of two"]++
		case v.add:
			kinds["65-bit magic"]++
		default:
			kinds["64-bit magic"]++
		}
		hs := []uint64{0, 1, d - 1, d, d + 1, math.MaxUint64, math.MaxUint64 - 1, math.MaxUint64 / d * d, math.MaxUint64/d*d - 1}
		for range 2000 {
			hs = append(hs, rng.Uint64())
		}
		for range 200 {
			q := rng.Uint64N(math.MaxUint64 / d)
			hs = append(hs, q*d, q*d-1, q*d+d-1)
		}
		for _, h := range hs {
			if got, want := v.mod(h), h%d; got != want {
				t.Fatalf("%d mod %d = %d, want %d (divisor %+v)", h, d, got, want, v)
			}
		}
	}
	// Each path must have been taken, or the test checks less than it says.
	for _, k := range []string{"power of two", "64-bit magic", "65-bit magic"} {
		if kinds[k] == 0 {
			t.Errorf("no divisor took the %s path: %v", k, kinds)
		}
	}
}

func FuzzDivisorMod(f *testing.F) {
	f.Add(uint64(7), uint64(12345))
	f.Add(uint64(10000), uint64(math.MaxUint64))
	f.Fuzz(func(t *testing.T, d, h uint64) {
		if d == 0 {
			return
		}
		v := newDivisor(d)
		if got, want := v.mod(h), h%d; got != want {
			t.Fatalf("%d mod %d = %d, want %d", h, d, got, want)
		}
	})
}

// BenchmarkDivisor times the bucket of 4096 hashes by Go's % (a DIV) and by
// divisor.mod, alternately in one process (hash_buckets of the reference
// spec's size, 2^16, and two others).
func BenchmarkDivisor(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	hs := make([]uint64, 4096)
	for i := range hs {
		hs[i] = rng.Uint64()
	}
	out := make([]int32, len(hs))
	for _, d := range []uint64{1 << 16, 10000, 1000003} {
		v := newDivisor(d)
		b.Run(fmt.Sprintf("buckets=%d/div", d), func(b *testing.B) {
			for b.Loop() {
				for i, h := range hs {
					out[i] = int32(1 + h%d)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(hs)), "ns/value")
		})
		b.Run(fmt.Sprintf("buckets=%d/mul", d), func(b *testing.B) {
			for b.Loop() {
				for i, h := range hs {
					out[i] = int32(1 + v.mod(h))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(hs)), "ns/value")
		})
	}
}
