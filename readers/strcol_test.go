package readers

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// A string column built in Go slices becomes the Arrow array of its values
// and nulls, record after record (the slices reused, grown while a record
// is being built), from buffers that are garbage before it writes them (as
// the pooled allocator's are), and releases every buffer with the array; a
// row taken back (truncate) leaves neither its bytes nor its null.
func TestStrColArray(t *testing.T) {
	mem := memory.NewCheckedAllocator(poisoned{memory.NewGoAllocator()})
	defer mem.AssertSize(t, 0)
	c := &strCol{}
	c.grow(2)
	for _, rec := range [][]*string{
		{ptr("a"), nil, ptr(""), ptr("bcd"), nil, ptr("é"), ptr("x"), ptr("y"), ptr("z")},
		{ptr("only")},
		{nil},
	} {
		for i, v := range rec {
			if v == nil {
				c.setNull(i)
			} else {
				c.set(i, *v)
			}
			if i+2 > len(c.valid) {
				c.grow(2 * len(c.valid))
			}
			// Each row is followed by one taken back, null or not.
			if i%2 == 0 {
				c.set(i+1, "taken back")
			} else {
				c.setNull(i + 1)
			}
			c.truncate(i + 1)
		}
		a, err := c.array(mem, len(rec))
		if err != nil {
			t.Fatal(err)
		}
		s := a.(*array.String)
		if s.Len() != len(rec) {
			t.Fatalf("%d values, want %d", s.Len(), len(rec))
		}
		nulls, size := 0, 0
		for r, v := range rec {
			if v == nil {
				nulls++
			} else {
				size += len(*v)
			}
			if (v == nil) != s.IsNull(r) || (v != nil && s.Value(r) != *v) {
				t.Errorf("value %d: %q (null %v), want %v", r, s.Value(r), s.IsNull(r), v)
			}
		}
		if s.NullN() != nulls || len(s.ValueBytes()) != size {
			t.Errorf("%d nulls and %d bytes, want %d and %d", s.NullN(), len(s.ValueBytes()), nulls, size)
		}
		a.Release()
	}
}

// poisoned hands out memory filled with 0xA5, as a reused buffer may be.
type poisoned struct{ memory.Allocator }

func (p poisoned) Allocate(n int) []byte {
	b := p.Allocator.Allocate(n)
	for i := range b {
		b[i] = 0xA5
	}
	return b
}

func (p poisoned) Reallocate(n int, b []byte) []byte {
	old := len(b)
	b = p.Allocator.Reallocate(n, b)
	for i := old; i < len(b); i++ {
		b[i] = 0xA5
	}
	return b
}

// packBits gives the bitmap that setting each valid value's bit one at a
// time gives, for every length around the 8-at-a-time step.
func TestPackBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 70 {
		src := make([]byte, n)
		want := make([]byte, bitutil.BytesForBits(int64(n)))
		for j := range src {
			if rng.IntN(3) > 0 {
				src[j] = 1
				bitutil.SetBit(want, j)
			}
		}
		got := bytes.Repeat([]byte{0xA5}, len(want)) // garbage before
		packBits(got, src)
		if !bytes.Equal(got, want) {
			t.Fatalf("%d values %v: %08b, want %08b", n, src, got, want)
		}
	}
}

// A fixed-width column becomes the Arrow array of its values and nulls,
// of the type asked for, from buffers that are garbage before it writes
// them, grown while a record is being built; a row taken back leaves
// neither its value nor its null.
func TestNumColArray(t *testing.T) {
	mem := memory.NewCheckedAllocator(poisoned{memory.NewGoAllocator()})
	defer mem.AssertSize(t, 0)
	c := &numCol[int64]{}
	c.grow(3)
	for round, rec := range [][]*int64{
		{ptr(int64(1)), nil, ptr(int64(-3)), ptr(int64(0)), nil, nil, ptr(int64(7)), ptr(int64(8)), ptr(int64(9)), nil},
		{ptr(int64(42))},
	} {
		for i, v := range rec {
			if v == nil {
				c.setNull(i)
			} else {
				c.set(i, *v)
			}
			if i+2 > len(c.valid) {
				c.grow(2 * len(c.valid))
			}
			// Each row is followed by one taken back (the next row
			// overwrites it), null or not.
			if i%2 == 0 {
				c.setNull(i + 1)
			} else {
				c.set(i+1, 99)
			}
		}
		a := c.array(mem, arrow.FixedWidthTypes.Timestamp_us, len(rec))
		ts, ok := a.(*array.Timestamp)
		if !ok || ts.Len() != len(rec) {
			t.Fatalf("round %d: %T of %d values, want a timestamp array of %d", round, a, a.Len(), len(rec))
		}
		nulls := 0
		for r, v := range rec {
			if v == nil {
				nulls++
			}
			if (v == nil) != ts.IsNull(r) || (v != nil && int64(ts.Value(r)) != *v) {
				t.Errorf("round %d value %d: %v (null %v), want %v", round, r, ts.Value(r), ts.IsNull(r), v)
			}
		}
		if ts.NullN() != nulls {
			t.Errorf("round %d: %d nulls, want %d", round, ts.NullN(), nulls)
		}
		a.Release()
	}
}

// appendShort appends what append does, for every length around its
// inline moves' bounds, with and without room left in dst, and leaves the
// bytes before it alone.
func TestAppendShort(t *testing.T) {
	src := "0123456789abcdefghijklmnopqrstuvwxyz"
	for k := range 21 {
		for _, room := range []int{0, k - 1, k, 64} {
			room = max(room, 0)
			dst := append(make([]byte, 0, 3+room), "xyz"...)
			v := src[7 : 7+k] // a view into a longer string, as fields are
			got := appendShort(dst, v)
			if want := "xyz" + v; string(got) != want {
				t.Errorf("%d bytes, room %d: %q, want %q", k, room, got, want)
			}
		}
	}
}
