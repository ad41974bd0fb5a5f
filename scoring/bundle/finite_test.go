package bundle_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nlpodyssey/safetensors"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
)

// A poisoned bundle (a NaN or infinite weight, or feature statistics that
// are not finite) is refused, naming the tensor or the feature and the
// first bad value's index.
func TestValidateRefusesNonFiniteValues(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	tests := []struct {
		name   string
		modify func(bu *bundle.Bundle)
		want   string
	}{
		{"NaN weight", func(bu *bundle.Bundle) {
			p := bu.Weights["deep.l0.w"] // [2·3+2, 5]
			p.Data[7], p.Data[9] = nan, inf
		}, `tensor "deep.l0.w" has a non-finite value NaN at index 7 ([1 2] of shape [8 5])`},
		{"infinite bias", func(bu *bundle.Bundle) { bu.Weights["wide.bias"].Data[0] = -inf }, `tensor "wide.bias" has a non-finite value -Inf at index 0 ([0] of shape [1])`},
		{"NaN embedding", func(bu *bundle.Bundle) { bu.Weights["deep.emb"].Data[29] = nan }, `tensor "deep.emb" has a non-finite value NaN at index 29 ([9 2] of shape [10 3])`},
		{"NaN mean", func(bu *bundle.Bundle) { bu.Stats.Numeric["price"] = features.NumericStats{Mean: math.NaN(), Std: 1} }, `stats.numeric["price"].mean is NaN`},
		{"infinite std", func(bu *bundle.Bundle) { bu.Stats.Numeric["age"] = features.NumericStats{Mean: 1, Std: math.Inf(1)} }, `stats.numeric["age"].std is +Inf`},
		{"negative std", func(bu *bundle.Bundle) { bu.Stats.Numeric["age"] = features.NumericStats{Mean: 1, Std: -2} }, `stats.numeric["age"].std is -2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bu := fullBundle()
			tt.modify(bu)
			err := bu.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate: %v, want an error containing %q", err, tt.want)
			}
			if !errors.Is(err, bundle.ErrInvalid) {
				t.Errorf("error does not wrap bundle.ErrInvalid: %v", err)
			}
		})
	}
}

// Load refuses a weights file holding a NaN or an infinity: the error
// names the file, the tensor and the index.
func TestLoadRefusesNonFiniteWeights(t *testing.T) {
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(-1))} {
		t.Run(strings.ToLower(fmt1(bad)), func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			b := store.NewFileBucket(dir)
			bu := fullBundle()
			if err := bu.Save(ctx, b, "b"); err != nil {
				t.Fatal(err)
			}
			bu.Weights["deep.out.w"].Data[1] = bad
			write(t, filepath.Join(dir, "b"), bundle.WeightsFile, encode(t, bu.Weights))
			_, err := bundle.Load(ctx, b, "b")
			want := `tensor "deep.out.w" has a non-finite value ` + fmt1(bad) + ` at index 1 ([1 0] of shape [2 1])`
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), filepath.Join(dir, "b")) {
				t.Fatalf("Load: %v, want an error naming the bundle and containing %q", err, want)
			}
			if !errors.Is(err, bundle.ErrInvalid) {
				t.Errorf("error does not wrap bundle.ErrInvalid: %v", err)
			}
		})
	}
}

func fmt1(f float32) string {
	switch {
	case math.IsNaN(float64(f)):
		return "NaN"
	case f > 0:
		return "+Inf"
	default:
		return "-Inf"
	}
}

// encode writes weights as a safetensors file without validating them.
func encode(t *testing.T, weights map[string]*bundle.Param) []byte {
	t.Helper()
	views := map[string]safetensors.TensorView{}
	for name, p := range weights {
		data := make([]byte, 4*len(p.Data))
		for i, v := range p.Data {
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
		}
		shape := make([]uint64, len(p.Shape))
		for i, d := range p.Shape {
			shape[i] = uint64(d)
		}
		tv, err := safetensors.NewTensorView(safetensors.F32, shape, data)
		if err != nil {
			t.Fatal(err)
		}
		views[name] = tv
	}
	data, err := safetensors.Serialize(views, nil)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
