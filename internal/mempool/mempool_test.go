package mempool

import (
	"testing"
	"unsafe"
)

// What Arrow's builders rely on, as the GoAllocator gives it: zeroed,
// 64-byte aligned buffers of the size asked; Reallocate keeps the bytes it
// had and zeroes the rest; a freed buffer comes back (zeroed) for the next
// allocation of its size class.
func TestAllocator(t *testing.T) {
	a := New()
	b := a.Allocate(100)
	if len(b) != 100 || cap(b) != 128 || uintptr(unsafe.Pointer(&b[0]))%alignment != 0 {
		t.Fatalf("Allocate(100): len %d cap %d at %p", len(b), cap(b), &b[0])
	}
	for i := range b {
		b[i] = byte(i + 1)
	}
	b = a.Reallocate(120, b) // in place: within its class
	for i, v := range b {
		if want := byte(0); i < 100 {
			want = byte(i + 1)
			if v != want {
				t.Fatalf("Reallocate kept byte %d as %d, want %d", i, v, want)
			}
		} else if v != 0 {
			t.Fatalf("Reallocate: byte %d beyond the old length is %d", i, v)
		}
	}
	b = a.Reallocate(1000, b) // to another class
	if len(b) != 1000 || b[99] != 100 || b[500] != 0 {
		t.Fatalf("Reallocate(1000): len %d, b[99] %d, b[500] %d", len(b), b[99], b[500])
	}
	a.Free(b)
	for range 10 { // sync.Pool may drop an entry; one of these comes back
		c := a.Allocate(900)
		for i, v := range c {
			if v != 0 {
				t.Fatalf("a reused buffer is not zeroed at %d", i)
			}
		}
		a.Free(c)
	}
	if a.Reused() == 0 {
		t.Error("no freed buffer was reused")
	}
	a.Free(make([]byte, 100)) // not of a class: left to the collector
	if huge := a.Allocate(1<<maxClass + 1); len(huge) != 1<<maxClass+1 {
		t.Errorf("a buffer beyond the largest class: len %d", len(huge))
	}
}
