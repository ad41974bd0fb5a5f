package bundle

import (
	"math"
	"slices"
	"testing"
)

// Weights are read in place when the file's buffer allows, copied
// otherwise, with the same values.
func TestFloat32View(t *testing.T) {
	buf := make([]byte, 4*4+1)
	for i, v := range []float32{1.5, -2, 0, 3.25} {
		bits := math.Float32bits(v)
		for j := range 4 {
			buf[4*i+j] = byte(bits >> (8 * j))
		}
	}
	aligned := float32View(buf[:16])
	if !slices.Equal(aligned, []float32{1.5, -2, 0, 3.25}) {
		t.Fatalf("aligned view %v", aligned)
	}
	shifted := make([]byte, 17)
	copy(shifted[1:], buf[:16])
	if v := float32View(shifted[1:]); v != nil {
		t.Errorf("misaligned buffer viewed as %v, want a copy", v)
	}
	if v := float32View(buf[:15]); v != nil {
		t.Errorf("odd length viewed as %v", v)
	}
}
