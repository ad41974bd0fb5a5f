package features

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// fnv1a is the reference: the standard library's 64-bit FNV-1a.
func fnv1a(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// stringColumn builds a string column of n values: runs of 8-byte values
// (hex digits, as Criteo's), values of other lengths (0 to 19 bytes, some
// not ASCII) and nulls, mixed so that groups of four are sometimes all
// 8 bytes and sometimes not.
func stringColumn(rng *rand.Rand, n int) *array.String {
	b := array.NewStringBuilder(memory.DefaultAllocator)
	defer b.Release()
	for b.Len() < n {
		switch rng.IntN(4) {
		case 0:
			b.AppendNull()
		case 1:
			v := make([]byte, rng.IntN(20))
			for i := range v {
				v[i] = byte(rng.IntN(256))
			}
			b.Append(string(v))
		default:
			for range rng.IntN(12) {
				b.Append(fmt.Sprintf("%08x", rng.Uint32()))
			}
		}
	}
	return b.NewStringArray()
}

// hexColumn builds a Criteo-like column of n values: 8 hex digits, or null
// for nulls in 100 of them.
func hexColumn(rng *rand.Rand, n, nulls int) *array.String {
	b := array.NewStringBuilder(memory.DefaultAllocator)
	defer b.Release()
	for range n {
		if rng.IntN(100) < nulls {
			b.AppendNull()
		} else {
			b.Append(fmt.Sprintf("%08x", rng.Uint32()))
		}
	}
	return b.NewStringArray()
}

// hashWays are the ways hashValues can run on this machine: without AVX-512
// always, with it where the CPU has it. Each sets hashAVX512; the caller
// restores it.
func hashWays() []bool {
	if hashAVX512 {
		return []bool{false, true}
	}
	return []bool{false}
}

// hashValues is Hash of every value, whatever the lengths, the nulls and
// the offset of the column in its buffers, with and without AVX-512.
func TestHashValues(t *testing.T) {
	defer func(v bool) { hashAVX512 = v }(hashAVX512)
	for _, avx := range hashWays() {
		hashAVX512 = avx
		t.Run(fmt.Sprintf("avx512=%v", avx), testHashValues)
	}
}

func testHashValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var dst []uint64
	for _, n := range []int{0, 1, 3, 4, 5, 7, 8, 9, 16, 17, 100, 4099} {
		for _, col := range []*array.String{stringColumn(rng, n), hexColumn(rng, n, 0), hexColumn(rng, n, 40)} {
			dst = checkHashValues(t, dst, col)
			col.Release()
		}
	}
}

// checkHashValues checks hashValues of col and of its slices from 1 and 3.
func checkHashValues(t *testing.T, dst []uint64, col *array.String) []uint64 {
	t.Helper()
	n := col.Len()
	{
		for _, off := range []int{0, 1, 3} {
			if off > col.Len() {
				continue
			}
			c := array.NewSlice(col, int64(off), int64(col.Len())).(*array.String)
			dst = hashValues(dst, c)
			if len(dst) != c.Len() {
				t.Fatalf("n=%d off=%d: %d hashes for %d values", n, off, len(dst), c.Len())
			}
			for i, h := range dst {
				if c.IsNull(i) {
					continue
				}
				if want := fnv1a(c.Value(i)); h != want {
					t.Fatalf("n=%d off=%d: value %d (%q): hash %#x, FNV-1a %#x", n, off, i, c.Value(i), h, want)
				}
				if h != Hash(c.Value(i)) {
					t.Fatalf("n=%d off=%d: value %d (%q): hashValues and Hash differ", n, off, i, c.Value(i))
				}
			}
			c.Release()
		}
	}
	return dst
}

// The AVX-512 hash stops before a group of eight with a value of another
// length than 0 or 8, or one that would end past the data, and hashes the
// groups before it.
func TestHash8x8Stops(t *testing.T) {
	if !hashAVX512 {
		t.Skip("no AVX-512 hash on this CPU or build")
	}
	data := []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + "ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZghijklmnopqrstuvwxyz")
	offs := func(lengths ...int32) []int32 {
		o := []int32{5} // a base other than 0
		for _, l := range lengths {
			o = append(o, o[len(o)-1]+l)
		}
		return o
	}
	eights := []int32{8, 8, 0, 8, 8, 8, 0, 8}
	for _, c := range []struct {
		name string
		offs []int32
		size int
		want int
	}{
		{"two groups", offs(append(slices.Clone(eights), eights...)...), len(data), 16},
		{"a 7 in the second", offs(append(slices.Clone(eights), 8, 8, 7, 8, 8, 8, 8, 8)...), len(data), 8},
		{"a 16 in the first", offs(16, 8, 8, 8, 8, 8, 8, 0), len(data), 0},
		{"a negative length", offs(8, 8, 8, 8, 8, -8, 8, 8), len(data), 0},
		{"past the data", offs(eights...), 40, 0},
		{"seven values", offs(8, 8, 8, 8, 8, 8, 8), len(data), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := make([]uint64, len(c.offs)-1)
			got := hash8x8(dst, data[:c.size], c.offs, 5)
			if got != c.want {
				t.Fatalf("hashed %d values, want %d", got, c.want)
			}
			for i := range got {
				v := string(data[c.offs[i]-5 : c.offs[i+1]-5])
				if dst[i] != fnv1a(v) {
					t.Errorf("value %d (%q): %#x, FNV-1a %#x", i, v, dst[i], fnv1a(v))
				}
			}
		})
	}
}

// BenchmarkHashValues hashes a column value by value (Hash), with
// hashValues four at a time, and with hashValues eight at a time with
// AVX-512 where the CPU has it, alternating in one process: 8 hex digits a
// value (the reference data), the same with a fifth of them null, and
// mixed lengths.
func BenchmarkHashValues(b *testing.B) {
	const n = 4096
	defer func(v bool) { hashAVX512 = v }(hashAVX512)
	ways := []string{"Hash", "hashValues-by4"}
	if hashAVX512 {
		ways = append(ways, "hashValues-avx512")
	}
	var dst []uint64
	for _, c := range []struct {
		name string
		col  *array.String
	}{{"hex8", hexColumn(rand.New(rand.NewPCG(1, 2)), n, 0)}, {"hex8-nulls20", hexColumn(rand.New(rand.NewPCG(1, 2)), n, 20)}, {"mixed", stringColumn(rand.New(rand.NewPCG(3, 4)), n)}} {
		b.Run("values="+c.name, func(b *testing.B) {
			dst = make([]uint64, c.col.Len())
			ns := make([]time.Duration, len(ways))
			i := 0
			for b.Loop() {
				for k := range ways {
					v := (i + k) % len(ways)
					t0 := time.Now()
					switch ways[v] {
					case "Hash":
						for r := range dst {
							dst[r] = Hash(c.col.Value(r))
						}
					default:
						hashAVX512 = ways[v] == "hashValues-avx512"
						dst = hashValues(dst, c.col)
					}
					ns[v] += time.Since(t0)
				}
				i++
			}
			for v, way := range ways {
				b.ReportMetric(float64(ns[v].Nanoseconds())/float64(i*c.col.Len()), "ns/value-"+way)
			}
		})
	}
}
