package kernels

// Offsets adds a per-column offset to rows of k categorical indices and
// checks each index against its column's cardinality: what a model does
// to a batch's indices before the embedding tables (one stacked table,
// column c's rows from off[c] on). Make one per model with NewOffsets; it
// is read-only and may be shared.
type Offsets struct {
	off []int32
	lim []uint32
	// The same, repeated 8 times: a vector kernel reads 8 consecutive
	// columns from any multiple of 8 on without wrapping.
	offPat []int32
	limPat []uint32
}

// NewOffsets returns the Offsets of columns with these offsets and
// cardinalities (each at most 2³¹-1).
func NewOffsets(off []int32, card []uint32) *Offsets {
	o := &Offsets{off: append([]int32(nil), off...), lim: append([]uint32(nil), card[:len(off)]...)}
	for range 8 {
		o.offPat = append(o.offPat, o.off...)
		o.limPat = append(o.limPat, o.lim...)
	}
	return o
}

// Zero writes dst[i] = off[i%k] for every i of dst: what Apply gives for
// rows of index 0 (padding rows).
func (o *Offsets) Zero(dst []int32) {
	for i := range dst {
		dst[i] = o.off[i%len(o.off)]
	}
}

// Apply writes dst[i] = src[i] + off[i%k] for every i of src, whole rows
// of k, and returns the first i whose src[i] is outside [0, card[i%k]),
// or -1. dst must be at least as long as src.
func (o *Offsets) Apply(dst, src []int32) int { return o.apply(current(), dst, src) }

// apply is Apply on kernel kn.
func (o *Offsets) apply(kn *impl, dst, src []int32) int {
	k := len(o.off)
	if k == 0 || len(src) == 0 {
		return -1
	}
	dst = dst[:len(src)]
	done, bad := 0, false
	if kn.offsets != nil {
		done, bad = kn.offsets(dst, src, o.offPat, o.limPat)
	}
	if !offsetsGo(dst[done:], src[done:], o.off, o.lim, done%k) && !bad {
		return -1
	}
	for i, v := range src {
		if uint32(v) >= o.lim[i%k] {
			return i
		}
	}
	return -1
}

// offsetsGo is Apply's loop in Go from column c on; it reports whether an
// index was out of range. One flat loop, so that the compiler keeps every
// variable in a register (with a loop per row it spilled and reloaded
// them every element).
func offsetsGo(dst, src, off []int32, lim []uint32, c int) (bad bool) {
	k := len(off)
	lim = lim[:k]
	dst = dst[:len(src)]
	// good stays 1 while every index is in range: for lim <= 2^31,
	// uint32(v) < lim exactly when uint64(uint32(v)) - lim wraps below
	// zero, setting bit 63 (negative v are 2^31 and up as uint32).
	good := uint64(1)
	for i, v := range src {
		good &= (uint64(uint32(v)) - uint64(lim[c])) >> 63
		dst[i] = off[c] + v
		if c++; c == k {
			c = 0
		}
	}
	return good == 0
}
