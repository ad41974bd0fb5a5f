package scoring_test

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/internal/modeltest"
)

// guardedBundle is a wide_deep bundle with a feature spec and three
// reference rows, their features and scores computed here through the
// public API (pipeline, compiled model) as scorer train computes them.
func guardedBundle(t *testing.T) *bundle.Bundle {
	t.Helper()
	bu := modeltest.RandomBundle(bundle.WideDeep, 2, []int{4, 6}, 3, []int{5, 2}, 9)
	bu.Name, bu.Version = "ctr", "7"
	bu.Features = features.Spec{Features: []features.Feature{
		{Name: "price", Kind: features.Numeric, Column: "price", Log1p: true, Standardize: true},
		{Name: "site", Kind: features.Categorical, Column: "site", HashBuckets: 3},
		{Name: "age", Kind: features.Numeric, Column: "age"},
		{Name: "device", Kind: features.Categorical, Column: "device", Vocabulary: &features.VocabSpec{MaxSize: 5}},
	}}
	bu.Stats = features.Stats{
		Numeric: map[string]features.NumericStats{"price": {Mean: 1.5, Std: 0.25}},
		Vocab:   map[string][]string{"device": {"ios", "android", "web", "tv", "other"}},
	}
	for _, v := range []string{
		`{"price": 2.5, "site": "a.example", "age": 41, "device": "ios"}`,
		`{"price": null, "site": null, "age": 0.5, "device": "tv"}`,
		`{"price": 0.75, "site": "b.example", "age": null, "device": "toaster"}`,
	} {
		var r bundle.ReferenceRow
		if err := json.Unmarshal([]byte(v), &r.Values); err != nil {
			t.Fatal(err)
		}
		bu.Reference = append(bu.Reference, r)
	}
	rec, err := bu.ReferenceRecord(memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	fx, err := features.NewPipeline(bu.Features, bu.Stats)
	if err != nil {
		t.Fatal(err)
	}
	var b features.Batch
	if err := fx.Transform(rec, &b); err != nil {
		t.Fatal(err)
	}
	m, err := scoring.NewModel(bu, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Close() }()
	scores := make([]float32, b.N)
	if err := m.Score(&b, scores); err != nil {
		t.Fatal(err)
	}
	for i := range bu.Reference {
		bu.Reference[i].Dense = append([]float32(nil), b.Dense[i*b.D:(i+1)*b.D]...)
		bu.Reference[i].Cat = append([]int32(nil), b.Cat[i*b.K:(i+1)*b.K]...)
		bu.Reference[i].Score = scores[i]
	}
	return bu
}

// The skew guard passes a bundle whose rows reproduce, and finds each
// kind of change with the row, the feature (or the score) and both values.
func TestCheckReference(t *testing.T) {
	tests := []struct {
		name string
		edit func(bu *bundle.Bundle)
		want string // "" for no difference
	}{
		{"unchanged", func(*bundle.Bundle) {}, ""},
		{"score within tolerance", func(bu *bundle.Bundle) { bu.Reference[1].Score += 5e-6 }, ""},
		{"expected dense value, last bit", func(bu *bundle.Bundle) {
			bu.Reference[1].Dense[1] = math.Float32frombits(math.Float32bits(bu.Reference[1].Dense[1]) ^ 1)
		}, `skew guard: model ctr 7: reference row 2: feature "age" value 0.50000006 (float32 bits 0x3f000001), computed 0.5 (0x3f000000): the feature transform changed since training`},
		{"expected index", func(bu *bundle.Bundle) { bu.Reference[0].Cat[0]++ }, `reference row 1: feature "site" index `},
		{"numeric mean", func(bu *bundle.Bundle) { bu.Stats.Numeric["price"] = features.NumericStats{Mean: 1.5000001, Std: 0.25} }, `reference row 1: feature "price" value`},
		{"vocabulary", func(bu *bundle.Bundle) {
			bu.Stats.Vocab["device"] = []string{"android", "ios", "web", "tv", "other"}
		}, `reference row 1: feature "device" index 1, computed 2: the feature transform changed since training`},
		{"expected score", func(bu *bundle.Bundle) { bu.Reference[2].Score += 2e-5 }, `reference row 3: score `},
		{"weights", func(bu *bundle.Bundle) { bu.Weights["wide.bias"].Data[0] += 0.01 }, `: score `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bu := guardedBundle(t)
			tt.edit(bu)
			n, err := scoring.CheckReference(bu)
			if tt.want == "" {
				if err != nil || n != 3 {
					t.Fatalf("CheckReference: %d rows, %v; want 3, nil", n, err)
				}
				return
			}
			var se *scoring.SkewError
			if !errors.As(err, &se) || !errors.Is(err, scoring.ErrSkew) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CheckReference: %v, want a *SkewError saying %q", err, tt.want)
			}
		})
	}
	t.Run("score message", func(t *testing.T) {
		bu := guardedBundle(t)
		want := bu.Reference[2].Score
		bu.Reference[2].Score = want + 0.001
		_, err := scoring.CheckReference(bu)
		var se *scoring.SkewError
		if !errors.As(err, &se) || se.Row != 3 || se.Feature != "" || se.Computed != float64(want) ||
			!strings.Contains(err.Error(), "more than 1e-05): the model computes differently since training") {
			t.Fatalf("CheckReference: %v (%+v)", err, se)
		}
	})
	t.Run("no reference rows", func(t *testing.T) {
		bu := guardedBundle(t)
		bu.Reference = nil
		if n, err := scoring.CheckReference(bu); n != 0 || err != nil {
			t.Fatalf("CheckReference: %d rows, %v; want 0, nil", n, err)
		}
	})
}
