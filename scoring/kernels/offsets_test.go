package kernels

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// Offsets.Apply, on every kernel this build and CPU support, offsets every
// index by its column's offset and finds the first index out of its
// column's range (negative, at the cardinality, far above), for column
// counts that do and do not divide 8 and batches with a tail.
func TestOffsets(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, k := range []int{1, 3, 8, 13, 26} {
		off, card := make([]int32, k), make([]uint32, k)
		total := int32(0)
		for c := range k {
			card[c] = uint32(1 + rng.IntN(100))
			off[c], total = total, total+int32(card[c])
		}
		o := NewOffsets(off, card)
		// Zero is Apply of index 0, for rows and a part row.
		padded := make([]int32, 3*k)
		o.Apply(padded, make([]int32, 3*k))
		zero := make([]int32, 3*k-1)
		o.Zero(zero)
		if !slices.Equal(zero, padded[:len(zero)]) {
			t.Fatalf("k=%d: Zero gives %v, Apply of zeros %v", k, zero, padded)
		}
		for _, rows := range []int{1, 5, 64, 77} {
			src := make([]int32, rows*k)
			for i := range src {
				src[i] = int32(rng.IntN(int(card[i%k])))
			}
			want := make([]int32, len(src))
			for i, v := range src {
				want[i] = v + off[i%k]
			}
			for _, kn := range impls() {
				name := fmt.Sprintf("%s/k=%d/rows=%d", kn.name, k, rows)
				if kn.offsets != nil {
					if _, bad := kn.offsets(make([]int32, len(src)), src, o.offPat, o.limPat); bad {
						t.Fatalf("%s: the vector kernel calls good indices bad", name)
					}
				}
				if got := applyWith(kn, o, src); !slices.Equal(got.dst, want) || got.at != -1 {
					t.Fatalf("%s: first bad %d, want -1; offsets right: %v", name, got.at, slices.Equal(got.dst, want))
				}
				for _, bad := range []int32{-1, -1 << 31, 0, 1 << 30} {
					at := rng.IntN(len(src))
					b := slices.Clone(src)
					b[at] = bad
					if bad == 0 {
						b[at] = int32(card[at%k]) // at the cardinality
					}
					later := min(at+1+rng.IntN(len(src)), len(src)-1)
					if later > at {
						b[later] = -5 // a second bad one after the first
					}
					if got := applyWith(kn, o, b); got.at != at {
						t.Fatalf("%s: index %d at %d: first bad %d, want %d", name, b[at], at, got.at, at)
					}
				}
			}
		}
	}
}

type applied struct {
	dst []int32
	at  int
}

// applyWith is Apply with kernel kn in place of the process's.
func applyWith(kn *impl, o *Offsets, src []int32) applied {
	dst := make([]int32, len(src))
	return applied{dst, o.apply(kn, dst, src)}
}
