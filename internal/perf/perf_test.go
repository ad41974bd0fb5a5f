package perf

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"github.com/adtech/scorer/scoring"
)

func TestBundlesValidateAndScore(t *testing.T) {
	in, err := NewGenerator(3).Batch(50)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{MLP, LogReg} {
		bu, err := Bundle(name, 1)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := Bundle(name, 1)
		for k, p := range bu.Weights {
			if !slicesEqual(p.Data, again.Weights[k].Data) {
				t.Fatalf("%s: %s differs between two bundles of the same seed", name, k)
			}
		}
		m, err := scoring.NewModel(bu, 16)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float32, in.N)
		err = m.Score(in, out)
		_ = m.Close()
		if err != nil {
			t.Fatal(err)
		}
		for r, p := range out {
			if !(p > 0 && p < 1) || math.IsNaN(float64(p)) {
				t.Fatalf("%s: row %d: score %g", name, r, p)
			}
		}
	}
}

func slicesEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestGeneratorIsSeeded(t *testing.T) {
	var a, b bytes.Buffer
	if err := NewGenerator(5).WriteCSV(&a, 100); err != nil {
		t.Fatal(err)
	}
	if err := NewGenerator(5).WriteCSV(&b, 100); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("same seed, different rows")
	}
	lines := strings.Split(strings.TrimSuffix(a.String(), "\n"), "\n")
	if len(lines) != 101 || strings.Count(lines[0], ",") != len(Columns())-1 || strings.Count(lines[50], ",") != len(Columns())-1 {
		t.Fatalf("%d lines, header %q", len(lines), lines[0])
	}
}

func TestWriteNPY(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteNPY(&buf, []float32{1, 2, 3, 4, 5, 6}, 2, 3); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	hl := int(binary.LittleEndian.Uint16(b[8:10]))
	header := string(b[10 : 10+hl])
	if string(b[:8]) != "\x93NUMPY\x01\x00" || (10+hl)%64 != 0 || !strings.Contains(header, "'shape': (2, 3)") || !strings.HasSuffix(header, "\n") {
		t.Fatalf("header %q", header)
	}
	if got := math.Float32frombits(binary.LittleEndian.Uint32(b[10+hl+4*5:])); got != 6 || len(b) != 10+hl+24 {
		t.Fatalf("last value %g, %d bytes", got, len(b))
	}
}
