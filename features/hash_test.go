package features

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
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

// hashValues is Hash of every value, whatever the lengths, the nulls and
// the offset of the column in its buffers.
func TestHashValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var dst []uint64
	for _, n := range []int{0, 1, 3, 4, 5, 7, 8, 100, 4099} {
		col := stringColumn(rng, n)
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
		col.Release()
	}
}

// BenchmarkHashValues hashes a column value by value (Hash) and with
// hashValues, alternating in one process: 8 hex digits a value (the
// reference data), the same with a fifth of them null, and mixed lengths.
func BenchmarkHashValues(b *testing.B) {
	const n = 4096
	hex := func(nulls int) *array.String { // 8 hex digits, nulls in 100
		rng := rand.New(rand.NewPCG(1, 2))
		bl := array.NewStringBuilder(memory.DefaultAllocator)
		defer bl.Release()
		for range n {
			if rng.IntN(100) < nulls {
				bl.AppendNull()
			} else {
				bl.Append(fmt.Sprintf("%08x", rng.Uint32()))
			}
		}
		return bl.NewStringArray()
	}
	var dst []uint64
	for _, c := range []struct {
		name string
		col  *array.String
	}{{"hex8", hex(0)}, {"hex8-nulls20", hex(20)}, {"mixed", stringColumn(rand.New(rand.NewPCG(3, 4)), n)}} {
		b.Run("values="+c.name, func(b *testing.B) {
			dst = make([]uint64, c.col.Len())
			var ns [2]time.Duration // Hash, hashValues
			i := 0
			for b.Loop() {
				for k := range 2 {
					v := (i + k) % 2
					t0 := time.Now()
					if v == 0 {
						for r := range dst {
							dst[r] = Hash(c.col.Value(r))
						}
					} else {
						dst = hashValues(dst, c.col)
					}
					ns[v] += time.Since(t0)
				}
				i++
			}
			per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(i*c.col.Len()) }
			b.ReportMetric(per(ns[0]), "ns/value-Hash")
			b.ReportMetric(per(ns[1]), "ns/value-hashValues")
		})
	}
}
