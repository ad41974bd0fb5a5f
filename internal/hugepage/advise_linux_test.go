package hugepage

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapping returns the lines of /proc/self/smaps about the mapping of this
// process that holds address p, by their first field ("VmFlags:",
// "AnonHugePages:", ...).
func mapping(t *testing.T, p uintptr) map[string][]string {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer func() { _ = f.Close() }()
	var m map[string][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 {
			if m != nil {
				break
			}
			if lo <= p && p < hi {
				m = map[string][]string{}
			}
			continue
		}
		if fields := strings.Fields(line); m != nil && len(fields) > 0 {
			m[fields[0]] = fields[1:]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if m == nil {
		t.Fatalf("no mapping holds %#x", p)
	}
	return m
}

func thp(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil {
		t.Skip("kernel without transparent huge pages")
	}
}

// A buffer written before it was advised, as one the Go heap gives from
// memory it used before, is in huge pages after Collapse: the mapping that
// holds it counts at least its whole huge pages as AnonHugePages.
func TestCollapse(t *testing.T) {
	thp(t)
	b := make([]byte, 6*Size)
	for i := range b {
		b[i] = byte(i)
	}
	Collapse(b)
	w := whole(b)
	kb, err := strconv.Atoi(mapping(t, uintptr(unsafe.Pointer(&w[0])))["AnonHugePages:"][0])
	if err != nil {
		t.Fatal(err)
	}
	if want := len(w) / 1024; kb < want {
		if err := unix.Madvise(w, unix.MADV_COLLAPSE); errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			t.Skipf("kernel without MADV_COLLAPSE (%v)", err)
		}
		t.Errorf("AnonHugePages %d kB in the buffer's mapping after Collapse, want at least its %d kB of whole huge pages", kb, want)
	}
	for i, v := range b {
		if v != byte(i) {
			t.Fatalf("byte %d is %d after Collapse, was written %d", i, v, byte(i))
		}
	}
}

// The whole huge pages inside a buffer from Bytes or Float32s are advised
// (VmFlags "hg"), and its contents are those of any new slice.
func TestAdvise(t *testing.T) {
	thp(t)
	b := Bytes(4*Size + 123)
	f := Float32s(Size) // 4·Size bytes
	for _, c := range []struct {
		name string
		p    unsafe.Pointer
		n    int
	}{{"Bytes", unsafe.Pointer(&b[0]), len(b)}, {"Float32s", unsafe.Pointer(&f[0]), 4 * len(f)}} {
		p := uintptr(c.p)
		mid := (p + Size) / Size * Size // the first whole huge page starts at or before this
		if mid+Size > p+uintptr(c.n) {
			t.Fatalf("%s: no whole huge page in %d bytes", c.name, c.n)
		}
		if flags := mapping(t, mid)["VmFlags:"]; !slices.Contains(flags, "hg") {
			t.Errorf("%s: VmFlags %v of the buffer's mapping, want hg (MADV_HUGEPAGE)", c.name, flags)
		}
	}
	for i, v := range b {
		if v != 0 {
			t.Fatalf("Bytes: byte %d is %d", i, v)
		}
	}
	for i, v := range f {
		if v != 0 {
			t.Fatalf("Float32s: value %d is %v", i, v)
		}
	}
	advise(make([]byte, 100)) // smaller than a huge page: nothing to do
}
