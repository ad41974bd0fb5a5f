package features

import "math/bits"

// divisor takes remainders by a fixed d without a division instruction: a
// hashed feature's bucket is 1 + hash % buckets for every value of a column,
// and the 64-bit DIV was a quarter of the hashed categoricals' transform
// (catOp.fill), 2.5% of the end-to-end CPU (pprof). The quotient is the high half
// of a 128-bit product with a magic number, then shifted, as compilers do for
// a constant divisor (Granlund and Montgomery, "Division by invariant
// integers using multiplication", 1994; the 65-bit case as libdivide's
// u64 algorithm), so mod is exactly h % d for every h (TestDivisorMod).
type divisor struct {
	d     uint64
	magic uint64
	shift uint
	add   bool   // the magic needs 65 bits: its top bit is added back
	mask  uint64 // d-1 when d is a power of two (magic unused)
}

// newDivisor prepares remainders by d > 0.
func newDivisor(d uint64) divisor {
	if d == 0 {
		panic("features: divisor of 0")
	}
	if d&(d-1) == 0 {
		return divisor{d: d, mask: d - 1}
	}
	l := uint(bits.Len64(d) - 1) // floor(log2 d): 2^l < d < 2^(l+1)
	// m = floor(2^(64+l) / d) fits 64 bits as 2^l < d.
	m, rem := bits.Div64(1<<l, 0, d)
	if e := d - rem; e < 1<<l {
		// 2^(64+l) is a power that works: magic = m+1 < 2^64.
		return divisor{d: d, magic: m + 1, shift: l}
	}
	// The 65-bit magic floor(2^(65+l) / d) + 1, its top bit implicit.
	m += m
	if twice := rem + rem; twice >= d || twice < rem {
		m++
	}
	return divisor{d: d, magic: m + 1, shift: l, add: true}
}

// mod is h % d.
func (v *divisor) mod(h uint64) uint64 {
	if v.magic == 0 {
		return h & v.mask
	}
	q, _ := bits.Mul64(v.magic, h)
	if v.add {
		q = (((h - q) >> 1) + q) >> v.shift
	} else {
		q >>= v.shift
	}
	return h - q*v.d
}
