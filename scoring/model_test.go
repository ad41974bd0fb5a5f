package scoring

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/internal/modeltest"
)

// referenceScores is the model's forward pass written independently of the
// graph: plain float64 loops over the bundle's weights.
func referenceScores(bu *bundle.Bundle, b *features.Batch) []float64 {
	w := func(name string) []float32 { return bu.Weights[name].Data }
	cards := bu.Inputs.Cardinalities
	out := make([]float64, b.N)
	for r := range b.N {
		x := b.Dense[r*b.D : (r+1)*b.D]
		if iw := bu.Arch.ImageWidth(bu.Inputs); iw > 0 { // image embeddings: inputs after the dense ones
			x = slices.Concat(x, b.ImageEmb[r*iw:(r+1)*iw])
		}
		cat := b.Cat[r*b.K : (r+1)*b.K]
		// rowOf is the row of the concatenated tables for feature k.
		rowOf := func(k int) int {
			off := 0
			for _, c := range cards[:k] {
				off += c
			}
			return off + int(cat[k])
		}
		var logit float64
		if bu.Arch.Kind == bundle.Wide || bu.Arch.Kind == bundle.WideDeep {
			logit += float64(w("wide.bias")[0])
			for k := range cat {
				logit += float64(w("wide.emb")[rowOf(k)])
			}
			for d, v := range x {
				logit += float64(v) * float64(w("wide.dense")[d])
			}
		}
		if bu.Arch.Kind == bundle.Deep || bu.Arch.Kind == bundle.WideDeep {
			e := bu.Arch.EmbeddingDim
			var h []float64
			for k := range cat {
				for j := range e {
					h = append(h, float64(w("deep.emb")[rowOf(k)*e+j]))
				}
			}
			for _, v := range x {
				h = append(h, float64(v))
			}
			layer := func(in []float64, wName, bName string, relu bool) []float64 {
				wt, bias := w(wName), w(bName)
				n := len(bias)
				o := make([]float64, n)
				for j := range n {
					s := float64(bias[j])
					for i, v := range in {
						s += v * float64(wt[i*n+j])
					}
					if relu && s < 0 {
						s = 0
					}
					o[j] = s
				}
				return o
			}
			for i := range bu.Arch.Hidden {
				h = layer(h, fmt.Sprintf("deep.l%d.w", i), fmt.Sprintf("deep.l%d.b", i), true)
			}
			logit += layer(h, "deep.out.w", "deep.out.b", false)[0]
		}
		out[r] = 1 / (1 + math.Exp(-logit))
	}
	return out
}

type shapeCase struct {
	name   string
	kind   bundle.Kind
	dense  int
	cards  []int
	emb    int
	hidden []int
}

var shapeCases = []shapeCase{
	{"wide", bundle.Wide, 5, []int{3, 7, 2}, 0, nil},
	{"wide dense only", bundle.Wide, 4, nil, 0, nil},
	{"wide categorical only", bundle.Wide, 0, []int{4, 9}, 0, nil},
	{"deep", bundle.Deep, 5, []int{3, 7, 2}, 4, []int{8, 3}},
	{"deep no hidden", bundle.Deep, 3, []int{5, 6}, 2, nil},
	{"deep dense only", bundle.Deep, 6, nil, 0, []int{5}},
	{"deep categorical only", bundle.Deep, 0, []int{11, 4, 3}, 3, []int{6}},
	{"deep width one", bundle.Deep, 1, []int{2}, 1, []int{1, 1}},
	{"wide_deep", bundle.WideDeep, 13, []int{10, 20, 5, 8}, 8, []int{32, 16}},
	{"wide_deep one of each", bundle.WideDeep, 1, []int{1}, 1, []int{2}},
}

func TestScoreMatchesReference(t *testing.T) {
	for i, c := range shapeCases {
		t.Run(c.name, func(t *testing.T) {
			bu := modeltest.RandomBundle(c.kind, c.dense, c.cards, c.emb, c.hidden, uint64(i))
			b := modeltest.RandomBatch(50, bu.Inputs, uint64(100+i))
			want := referenceScores(bu, b)
			for _, bs := range []int{1, 16, 64} {
				m, err := NewModel(bu, bs)
				if err != nil {
					t.Fatal(err)
				}
				got := make([]float32, b.N)
				err = m.Score(b, got)
				_ = m.Close()
				if err != nil {
					t.Fatal(err)
				}
				for r := range got {
					if d := math.Abs(float64(got[r]) - want[r]); d > 1e-5 {
						t.Fatalf("batch size %d, row %d: score %g, reference %g (diff %g)", bs, r, got[r], want[r], d)
					}
				}
			}
		})
	}
}

func TestScoreIndependentOfBatchSize(t *testing.T) {
	bu := modeltest.RandomBundle(bundle.WideDeep, 13, []int{100, 50, 7, 30, 2}, 8, []int{32, 16}, 1)
	b := modeltest.RandomBatch(1000, bu.Inputs, 2)
	var first []float32
	for _, bs := range []int{1000, 1, 7, 64, 999, 1001, 4096} {
		for instance := range 2 {
			m, err := NewModel(bu, bs)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]float32, b.N)
			err = m.Score(b, got)
			if err == nil { // score again: a reused model gives the same
				again := make([]float32, b.N)
				err = m.Score(b, again)
				if err == nil && !slices.Equal(got, again) {
					t.Errorf("batch size %d: second Score differs from the first", bs)
				}
			}
			_ = m.Close()
			if err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first = got
				continue
			}
			for r := range got {
				if d := math.Abs(float64(got[r] - first[r])); d > 1e-6 {
					t.Fatalf("batch size %d (instance %d), row %d: %g, want %g", bs, instance, r, got[r], first[r])
				}
			}
		}
	}
	// Scoring a prefix, or one row alone, gives the same scores.
	m, err := NewModel(bu, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Close() }()
	for _, n := range []int{0, 1, 5, 63, 64, 65} {
		sub := &features.Batch{N: n, D: b.D, K: b.K, Dense: b.Dense[:n*b.D], Cat: b.Cat[:n*b.K]}
		got := make([]float32, n)
		if err := m.Score(sub, got); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, first[:n]) {
			t.Errorf("first %d rows scored alone differ", n)
		}
	}
}

func TestScoreConcurrentModelsShareBundle(t *testing.T) {
	bu := modeltest.RandomBundle(bundle.WideDeep, 4, []int{10, 20}, 4, []int{8}, 3)
	before := map[string][]float32{}
	for name, p := range bu.Weights {
		before[name] = slices.Clone(p.Data)
	}
	b := modeltest.RandomBatch(300, bu.Inputs, 4)
	want := referenceScores(bu, b)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := NewModel(bu, 32+w)
			if err != nil {
				errs[w] = err
				return
			}
			defer func() { _ = m.Close() }()
			got := make([]float32, b.N)
			for range 3 {
				if err := m.Score(b, got); err != nil {
					errs[w] = err
					return
				}
				for r := range got {
					if math.Abs(float64(got[r])-want[r]) > 1e-5 {
						errs[w] = fmt.Errorf("worker %d row %d: %g, want %g", w, r, got[r], want[r])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for name, p := range bu.Weights {
		if !slices.Equal(p.Data, before[name]) {
			t.Errorf("scoring changed the bundle's %s", name)
		}
	}
}

func TestScoreErrors(t *testing.T) {
	bu := modeltest.RandomBundle(bundle.WideDeep, 2, []int{3, 5}, 2, []int{4}, 5)
	bu.Features = features.Spec{Features: []features.Feature{
		{Name: "price", Kind: features.Numeric},
		{Name: "site", Kind: features.Categorical, HashBuckets: 2},
		{Name: "hour", Kind: features.Timestamp, Part: features.HourOfDay},
		{Name: "age", Kind: features.Numeric},
	}}
	good := func() *features.Batch {
		return &features.Batch{N: 2, D: 2, K: 2, Dense: []float32{1, 2, 3, 4}, Cat: []int32{0, 4, 2, 1}}
	}
	tests := []struct {
		name  string
		batch func() *features.Batch
		out   int
		want  string // in the message; "" means success
		input bool   // error wraps ErrInput
	}{
		{"ok", good, 2, "", false},
		{"larger output", good, 5, "", false},
		{"empty", func() *features.Batch { return &features.Batch{D: 2, K: 2} }, 0, "", false},
		{"nil batch", func() *features.Batch { return nil }, 2, "nil batch", true},
		{"dense width", func() *features.Batch { b := good(); b.D = 3; b.Dense = make([]float32, 6); return b }, 2, "3 dense features, model has 2", true},
		{"categorical width", func() *features.Batch { b := good(); b.K = 1; b.Cat = b.Cat[:2]; return b }, 2, "1 categorical features, model has 2", true},
		{"short dense", func() *features.Batch { b := good(); b.Dense = b.Dense[:3]; return b }, 2, "3 dense values", true},
		{"short categorical", func() *features.Batch { b := good(); b.Cat = b.Cat[:3]; return b }, 2, "3 categorical values", true},
		{"index at cardinality", func() *features.Batch { b := good(); b.Cat[3] = 5; return b }, 2, `row 1: categorical feature 1 ("hour"): index 5 out of range [0, 5)`, true},
		{"negative index", func() *features.Batch { b := good(); b.Cat[0] = -1; return b }, 2, `row 0: categorical feature 0 ("site"): index -1`, true},
		{"short output", good, 1, "room for 1 scores", false},
	}
	m, err := NewModel(bu, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Close() }()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := m.Score(tt.batch(), make([]float32, tt.out))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Score: %v", err)
			case tt.want == "":
				return
			case err == nil:
				t.Fatalf("Score succeeded, want error %q", tt.want)
			case !strings.Contains(err.Error(), tt.want):
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if errors.Is(err, ErrInput) != tt.input {
				t.Errorf("errors.Is(%v, ErrInput) = %v, want %v", err, !tt.input, tt.input)
			}
		})
	}
	// The model still scores correctly after rejected batches.
	b := good()
	got := make([]float32, 2)
	if err := m.Score(b, got); err != nil {
		t.Fatal(err)
	}
	want := referenceScores(bu, b)
	for r := range got {
		if math.Abs(float64(got[r])-want[r]) > 1e-5 {
			t.Errorf("row %d: %g, want %g", r, got[r], want[r])
		}
	}
}

func TestModelLifecycle(t *testing.T) {
	bu := modeltest.RandomBundle(bundle.Wide, 2, []int{3}, 0, nil, 6)
	if _, err := NewModel(bu, 0); err == nil {
		t.Error("NewModel with batch size 0 succeeded")
	}
	bad := modeltest.RandomBundle(bundle.Wide, 2, []int{3}, 0, nil, 6)
	delete(bad.Weights, "wide.bias")
	if _, err := NewModel(bad, 8); !errors.Is(err, bundle.ErrInvalid) {
		t.Errorf("NewModel of an invalid bundle: %v, want bundle.ErrInvalid", err)
	}
	m, err := NewModel(bu, 8)
	if err != nil {
		t.Fatal(err)
	}
	if m.BatchSize() != 8 || m.Inputs().Dense != 2 {
		t.Errorf("BatchSize %d, Inputs %+v", m.BatchSize(), m.Inputs())
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	b := modeltest.RandomBatch(1, bu.Inputs, 1)
	if err := m.Score(b, make([]float32, 1)); err == nil {
		t.Error("Score after Close succeeded")
	}
}
