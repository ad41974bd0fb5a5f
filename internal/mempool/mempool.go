// Package mempool is an Arrow memory allocator that reuses freed buffers.
//
// A scoring run builds a record batch per few thousand input rows and
// releases it once the batch is written: with Arrow's GoAllocator every
// batch's column buffers are fresh garbage (about 0.7 GB per million
// Criteo-like rows, two thirds of what a run allocates; docs/performance.md).
// Allocator keeps each freed buffer in a pool of its power-of-two size class
// and hands it out again, zeroed, as the GoAllocator's buffers are. The
// pools are sync.Pools, so what is not reused is returned to the garbage
// collector, and memory stays bounded by what the run holds at once.
//
// Reuse makes one mistake visible that the garbage collector otherwise
// hides: reading an Arrow buffer after its last Release. The scoring path
// releases records only after their values were copied (into Parquet pages,
// rejects, or strings of their own); WithPoison fills freed buffers with a
// pattern so that tests find a read after release as corrupt output.
package mempool

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"
)

const (
	alignment = 64 // as Arrow's GoAllocator: cache-line aligned buffers
	minClass  = 6  // 64 bytes
	maxClass  = 26 // 64 MiB; larger buffers are not pooled
)

// Allocator implements github.com/apache/arrow-go/v18/arrow/memory.Allocator.
// It is safe for concurrent use.
type Allocator struct {
	pools  [maxClass + 1]sync.Pool
	poison bool
	reused atomic.Int64
}

// Option configures New.
type Option func(*Allocator)

// WithPoison fills every freed buffer with 0xA5 bytes before it is pooled
// (for tests: a read after the last Release then shows in the output).
func WithPoison() Option { return func(a *Allocator) { a.poison = true } }

// New returns an empty allocator.
func New(opts ...Option) *Allocator {
	a := &Allocator{}
	for _, o := range opts {
		o(a)
	}
	return a
}

// class is the size class (log2 of the buffer capacity) for size bytes.
func class(size int) int {
	if size <= 1<<minClass {
		return minClass
	}
	return bits.Len(uint(size - 1))
}

// Allocate returns a zeroed buffer of size bytes, 64-byte aligned.
func (a *Allocator) Allocate(size int) []byte {
	if size < 0 {
		panic("mempool: negative size")
	}
	c := class(size)
	if c > maxClass {
		return aligned(size)
	}
	if p, ok := a.pools[c].Get().(*[]byte); ok {
		a.reused.Add(1)
		b := (*p)[:size]
		clear(b)
		return b
	}
	return aligned(1 << c)[:size]
}

// Reused counts the buffers Allocate has handed out again.
func (a *Allocator) Reused() int64 { return a.reused.Load() }

// Reallocate resizes b to size bytes, in place when its capacity allows;
// bytes beyond b's length are zero.
func (a *Allocator) Reallocate(size int, b []byte) []byte {
	if size <= cap(b) {
		if size > len(b) {
			clear(b[len(b):size])
		}
		return b[:size]
	}
	nb := a.Allocate(size)
	copy(nb, b)
	a.Free(b)
	return nb
}

// Free returns b to its size class's pool. Buffers of other capacities
// (not from this allocator, or too large to pool) are left to the garbage
// collector.
func (a *Allocator) Free(b []byte) {
	c := class(cap(b))
	if c > maxClass || cap(b) != 1<<c {
		return
	}
	b = b[:cap(b)]
	if a.poison {
		for i := range b {
			b[i] = 0xA5
		}
	}
	a.pools[c].Put(&b)
}

// aligned is a new zeroed buffer of n bytes starting at a 64-byte
// boundary, with capacity n.
func aligned(n int) []byte {
	buf := make([]byte, n+alignment)
	shift := 0
	if r := int(uintptr(unsafe.Pointer(unsafe.SliceData(buf))) % alignment); r != 0 {
		shift = alignment - r
	}
	return buf[shift : shift+n : shift+n]
}
