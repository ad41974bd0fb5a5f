package onnx_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/onnx"
)

// fixture is one model of testdata/ with ONNX Runtime's outputs for its
// inputs (internal/tools/onnxfixtures writes them).
type fixture struct {
	Model         string           `json:"model"`
	Opset         int              `json:"opset"`
	Style         string           `json:"style"`
	Description   string           `json:"description"`
	Inputs        []fixtureTensor  `json:"inputs"`
	Outputs       []fixtureTensor  `json:"outputs"`
	Cardinalities map[string][]int `json:"cardinalities"`
}

type fixtureTensor struct {
	Name  string    `json:"name"`
	DType string    `json:"dtype"`
	Shape []int     `json:"shape"`
	Data  []float64 `json:"data"`
}

func loadFixture(t *testing.T, path string) fixture {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return f
}

// fixtureSpec is a feature spec with one feature per input value: numeric
// features for float inputs, categoricals of the input's cardinalities for
// integer inputs (hash buckets card-1: a table of card rows). The test
// feeds the model inputs directly, so only the widths and cardinalities of
// the spec matter here.
func fixtureSpec(f fixture) (features.Spec, map[string][]string) {
	var spec features.Spec
	bind := map[string][]string{}
	for _, in := range f.Inputs {
		width := 1
		for _, d := range in.Shape[1:] {
			width *= d
		}
		for j := range width {
			name := fmt.Sprintf("%s_%d", in.Name, j)
			if in.DType == "float32" {
				spec.Features = append(spec.Features, features.Feature{Name: name, Column: name, Kind: features.Numeric})
			} else {
				spec.Features = append(spec.Features, features.Feature{Name: name, Column: name, Kind: features.Categorical, HashBuckets: f.Cardinalities[in.Name][j] - 1})
			}
			bind[in.Name] = append(bind[in.Name], name)
		}
	}
	return spec, bind
}

// Every fixture model, imported and compiled by scorer, scores what ONNX
// Runtime scored for the same inputs, within 1e-5, at several batch sizes.
// fixtures are the fixtures of testdata/: the image towers if towers is
// set (TestTowerParityWithONNXRuntime), else the scoring models.
func fixtures(t *testing.T, towers bool) []fixture {
	t.Helper()
	paths, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	var out []fixture
	for _, path := range paths {
		if f := loadFixture(t, path); (f.Style == towerStyle) == towers {
			out = append(out, f)
		}
	}
	return out
}

func TestParityWithONNXRuntime(t *testing.T) {
	fs := fixtures(t, false)
	if len(fs) < 5 {
		t.Fatalf("%d fixtures", len(fs))
	}
	for _, f := range fs {
		t.Run(strings.TrimSuffix(f.Model, ".onnx"), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", f.Model))
			if err != nil {
				t.Fatal(err)
			}
			spec, bind := fixtureSpec(f)
			for _, explicit := range []bool{false, true} {
				opts := onnx.Options{Name: "fixture", Spec: spec, File: f.Model}
				if explicit {
					opts.Bind = bind
				}
				bu, err := onnx.Import(data, opts)
				if err != nil {
					t.Fatal(err)
				}
				if bu.Graph.Opset != f.Opset {
					t.Errorf("opset %d, want %d", bu.Graph.Opset, f.Opset)
				}
				in := &features.Batch{}
				rows := f.Inputs[0].Shape[0]
				in.Reset(rows, bu.Inputs.Dense, bu.Inputs.K())
				d, k := 0, 0
				for _, x := range f.Inputs { // columns in spec order: inputs in graph order
					width := len(x.Data) / rows
					for r := range rows {
						for j := range width {
							v := x.Data[r*width+j]
							if x.DType == "float32" {
								in.Dense[r*in.D+d+j] = float32(v)
							} else {
								in.Cat[r*in.K+k+j] = int32(v)
							}
						}
					}
					if x.DType == "float32" {
						d += width
					} else {
						k += width
					}
				}
				want := f.Outputs[0].Data
				for _, batch := range []int{1, 7, 64, 1024} {
					got := scores(t, bu, batch, in)
					worst := 0.0
					for i, w := range want {
						worst = max(worst, math.Abs(float64(got[i])-w))
					}
					if worst > 1e-5 {
						t.Errorf("batch %d: scores differ from ONNX Runtime's by up to %g", batch, worst)
					}
					if batch == 64 && !explicit {
						t.Logf("%s (%s, opset %d): largest difference from ONNX Runtime %.2g", f.Model, f.Style, f.Opset, worst)
					}
				}
			}
		})
	}
}

// Scoring an imported graph allocates nothing per batch, whatever its
// operators, as for the built-in models.
func TestImportedScoringAllocatesNothing(t *testing.T) {
	for _, f := range fixtures(t, false) {
		data, err := os.ReadFile(filepath.Join("testdata", f.Model))
		if err != nil {
			t.Fatal(err)
		}
		spec, _ := fixtureSpec(f)
		bu, err := onnx.Import(data, onnx.Options{Name: "fixture", Spec: spec})
		if err != nil {
			t.Fatal(err)
		}
		m, err := scoring.NewModel(bu, 64)
		if err != nil {
			t.Fatal(err)
		}
		in := &features.Batch{}
		in.Reset(64, bu.Inputs.Dense, bu.Inputs.K()) // zeros: index 0 fits every table
		out := make([]float32, 64)
		if allocs := testing.AllocsPerRun(20, func() {
			if err := m.Score(in, out); err != nil {
				t.Fatal(err)
			}
		}); allocs != 0 {
			t.Errorf("%s: %v allocations per batch", f.Model, allocs)
		}
		_ = m.Close()
	}
}
