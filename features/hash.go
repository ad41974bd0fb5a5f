package features

import (
	"encoding/binary"
	"slices"

	"github.com/apache/arrow-go/v18/arrow/array"
)

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// Hash is the stable hash behind hash_buckets: 64-bit FNV-1a over the UTF-8
// bytes of the value. A hashed categorical value v maps to
// 1 + Hash(v) % buckets; a cross of values a and b hashes a + "\x1f" + b.
// Index 0 is kept for a missing value. The function is part of the bundle
// format: changing it changes every model's inputs.
func Hash(s string) uint64 { return fnvFrom(fnvOffset64, s) }

func hashCross(a, b string) uint64 { return fnvFrom((Hash(a)^0x1f)*fnvPrime64, b) }

// fnvFrom continues the FNV-1a hash h over the bytes of b.
func fnvFrom[T string | []byte](h uint64, b T) uint64 {
	for i := 0; i < len(b); i++ {
		h = (h ^ uint64(b[i])) * fnvPrime64
	}
	return h
}

// hashValues sets dst[i] to Hash of value i of col, for every row (a null
// row's slot gets the hash of whatever bytes its offsets span, usually
// none: the caller skips it), and returns dst resized to col's length.
//
// It is Hash, computed faster for the common case of hashed columns: FNV-1a
// is a chain of one multiplication per byte, so one value at a time runs at
// the multiplier's latency (about 4 cycles a byte). Values of 8 bytes or
// none (Criteo's categoricals are 8 hex digits or missing) are hashed eight
// at a time with AVX-512 where the CPU has it (hash8x8: eight chains in the
// lanes of one register), else four at a time, four independent chains,
// each byte taken from one 8-byte load (BenchmarkHashValues: about 1.5x
// one at a time; docs/performance.md has AVX-512's).
func hashValues(dst []uint64, col *array.String) []uint64 {
	n := col.Len()
	dst = slices.Grow(dst[:0], n)[:n]
	if n == 0 {
		return dst
	}
	offs := col.ValueOffsets()[: n+1 : n+1]
	data := col.ValueBytes()
	base := offs[0]
	i := 0
	for {
		i += hash8x8(dst[i:], data, offs[i:], base)
		if !hashAVX512 || i+8 > n {
			break
		}
		// A value of another length among the next eight: those by four.
		hash4At(dst, data, offs, base, i)
		hash4At(dst, data, offs, base, i+4)
		i += 8
	}
	for ; i+4 <= n; i += 4 {
		hash4At(dst, data, offs, base, i)
	}
	for ; i < n; i++ {
		dst[i] = fnvFrom(fnvOffset64, data[offs[i]-base:offs[i+1]-base])
	}
	return dst
}

// hash4At sets dst[i:i+4] to the hashes of values i to i+3.
func hash4At(dst []uint64, data []byte, offs []int32, base int32, i int) {
	o := (*[5]int32)(offs[i : i+5])
	d := (*[4]uint64)(dst[i : i+4])
	if !hash4(d, data, o, base) {
		for k := range 4 {
			d[k] = fnvFrom(fnvOffset64, data[o[k]-base:o[k+1]-base])
		}
	}
}

// hash4 sets d to the hashes of the four values that o delimits in data
// (o[i]-base is a position in data) if each has 8 bytes or none, and
// reports whether it did.
func hash4(d *[4]uint64, data []byte, o *[5]int32, base int32) bool {
	if o[4]-o[0] == 32 && o[1]-o[0] == 8 && o[2]-o[1] == 8 && o[3]-o[2] == 8 { // the common case
		a := o[0] - base
		q := data[a : a+32 : a+32]
		d[0], d[1], d[2], d[3] = hash4x8(binary.LittleEndian.Uint64(q[0:]), binary.LittleEndian.Uint64(q[8:]),
			binary.LittleEndian.Uint64(q[16:]), binary.LittleEndian.Uint64(q[24:]))
		return true
	}
	l0, l1, l2, l3 := o[1]-o[0], o[2]-o[1], o[3]-o[2], o[4]-o[3]
	switch l := l0 | l1 | l2 | l3; {
	case l&^8 != 0: // some length is neither 0 nor 8
		return false
	case l == 0:
		d[0], d[1], d[2], d[3] = fnvOffset64, fnvOffset64, fnvOffset64, fnvOffset64
		return true
	}
	// data holds 8 bytes or more: an empty value loads the first 8 (load8)
	// and its hash is replaced (empty), without a branch.
	h0, h1, h2, h3 := hash4x8(load8(data, o[0]-base, l0), load8(data, o[1]-base, l1),
		load8(data, o[2]-base, l2), load8(data, o[3]-base, l3))
	d[0], d[1], d[2], d[3] = empty(h0, l0), empty(h1, l1), empty(h2, l2), empty(h3, l3)
	return true
}

// load8 is the little-endian load of the 8 bytes at data[at:] if l is 8,
// else (l is 0) of the first 8 bytes of data.
func load8(data []byte, at, l int32) uint64 {
	return binary.LittleEndian.Uint64(data[at&-(l>>3):])
}

// empty is h for a value of 8 bytes, the hash of "" for one of none
// (l is 0 or 8).
func empty(h uint64, l int32) uint64 {
	m := -uint64(l >> 3) // all ones for 8 bytes, 0 for none
	return h&m | fnvOffset64&^m
}

// hash4x8 is Hash of four 8-byte values, each given as its little-endian
// load, interleaved so that the four chains of multiplications overlap.
func hash4x8(w0, w1, w2, w3 uint64) (h0, h1, h2, h3 uint64) {
	const p = fnvPrime64
	h0, h1, h2, h3 = fnvOffset64, fnvOffset64, fnvOffset64, fnvOffset64
	h0, h1, h2, h3 = (h0^(w0&0xff))*p, (h1^(w1&0xff))*p, (h2^(w2&0xff))*p, (h3^(w3&0xff))*p
	h0, h1, h2, h3 = (h0^(w0>>8&0xff))*p, (h1^(w1>>8&0xff))*p, (h2^(w2>>8&0xff))*p, (h3^(w3>>8&0xff))*p
	h0, h1, h2, h3 = (h0^(w0>>16&0xff))*p, (h1^(w1>>16&0xff))*p, (h2^(w2>>16&0xff))*p, (h3^(w3>>16&0xff))*p
	h0, h1, h2, h3 = (h0^(w0>>24&0xff))*p, (h1^(w1>>24&0xff))*p, (h2^(w2>>24&0xff))*p, (h3^(w3>>24&0xff))*p
	h0, h1, h2, h3 = (h0^(w0>>32&0xff))*p, (h1^(w1>>32&0xff))*p, (h2^(w2>>32&0xff))*p, (h3^(w3>>32&0xff))*p
	h0, h1, h2, h3 = (h0^(w0>>40&0xff))*p, (h1^(w1>>40&0xff))*p, (h2^(w2>>40&0xff))*p, (h3^(w3>>40&0xff))*p
	h0, h1, h2, h3 = (h0^(w0>>48&0xff))*p, (h1^(w1>>48&0xff))*p, (h2^(w2>>48&0xff))*p, (h3^(w3>>48&0xff))*p
	h0, h1, h2, h3 = (h0^(w0>>56))*p, (h1^(w1>>56))*p, (h2^(w2>>56))*p, (h3^(w3>>56))*p
	return
}
