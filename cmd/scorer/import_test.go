package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// onnxFixture is what internal/tools/onnxfixtures wrote: the model's
// inputs and ONNX Runtime's outputs.
type onnxFixture struct {
	Model  string `json:"model"`
	Inputs []struct {
		Name  string    `json:"name"`
		DType string    `json:"dtype"`
		Shape []int     `json:"shape"`
		Data  []float64 `json:"data"`
	} `json:"inputs"`
	Outputs []struct {
		Data []float64 `json:"data"`
	} `json:"outputs"`
	Cardinalities map[string][]int `json:"cardinalities"`
}

// A model exported from PyTorch goes from its .onnx file to a scored month
// as a user runs it: scorer import onnx with a spec of integer-id
// categoricals, validate, add to the registry, backfill from CSV, and the
// published scores (read back with DuckDB) are ONNX Runtime's for the same
// rows. Then a bundle whose graph was edited to an operator scorer cannot
// run is refused with exit 2, by validate and by backfill alike, naming
// the node.
func TestImportedONNXModelScoresAMonth(t *testing.T) {
	dir := t.TempDir()
	var fx onnxFixture
	data, err := os.ReadFile("../../scoring/onnx/testdata/pytorch_wide_deep.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &fx); err != nil {
		t.Fatal(err)
	}
	// The month's dump: one CSV column per model input value, ids as
	// integers; the spec reads them back.
	var header []string
	var spec strings.Builder
	spec.WriteString("label: clicked\nfeatures:\n")
	rows := fx.Inputs[0].Shape[0]
	cells := make([][]string, rows)
	for _, in := range fx.Inputs {
		width := in.Shape[1]
		for j := range width {
			col := fmt.Sprintf("%s_%d", in.Name, j)
			header = append(header, col)
			if in.DType == "float32" {
				fmt.Fprintf(&spec, "  - {name: %s, kind: numeric}\n", col)
			} else {
				fmt.Fprintf(&spec, "  - {name: %s, kind: categorical, ids: %d}\n", col, fx.Cardinalities[in.Name][j])
			}
			for r := range rows {
				cells[r] = append(cells[r], fmt.Sprint(float32(in.Data[r*width+j])))
			}
		}
	}
	var csv strings.Builder
	csv.WriteString("ad_id," + strings.Join(header, ",") + "\n")
	for r, c := range cells {
		fmt.Fprintf(&csv, "ad-%03d,%s\n", r, strings.Join(c, ","))
	}
	input := filepath.Join(dir, "in")
	writeFile(t, filepath.Join(input, "dumps", "2020-01", "ads.csv"), []byte(csv.String()))
	specPath := filepath.Join(dir, "features.yaml")
	writeFile(t, specPath, []byte(spec.String()))

	model, out, reg := filepath.Join(dir, "models", "wd"), filepath.Join(dir, "out"), filepath.Join(dir, "registry")
	r := scorerProc(t, nil, "import", "onnx", "../../scoring/onnx/testdata/pytorch_wide_deep.onnx", "--spec", specPath, "--out", model, "--version", "torch.1")
	mustSucceed(t, r)
	for _, want := range []string{"opset 17", "pytorch_wide_deep torch.1", "input dense (float32) <- dense_0, dense_1, dense_2, dense_3", "input cat (int64) <- cat_0, cat_1, cat_2", "output prob (probability)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("import output does not say %q:\n%s", want, r.stdout)
		}
	}
	mustSucceed(t, scorerProc(t, nil, "validate", "--model", model, "--input", input, "--output", out))
	mustSucceed(t, scorerProc(t, nil, "models", "add", model, "--registry", reg))
	mustSucceed(t, scorerProc(t, nil, "models", "promote", "pytorch_wide_deep", "torch.1", "--force", "--reason", "first", "--registry", reg))
	mustSucceed(t, scorerProc(t, nil, "backfill", "--month", "2020-01", "--input", input, "--output", out,
		"--registry", reg, "--model", "models:/pytorch_wide_deep@current", "--log-format", "json"))

	q := fmt.Sprintf(`SELECT ad_id, score, model_name, model_version FROM read_parquet('%s/ad_scores/*/*.parquet', hive_partitioning = true) ORDER BY ad_id`, out)
	res, err := duck(t).Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer closeRows(t, res)
	n, worst := 0, 0.0
	for res.Next() {
		var id, name, version string
		var score float64
		if err := res.Scan(&id, &score, &name, &version); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("ad-%03d", n); id != want || name != "pytorch_wide_deep" || version != "torch.1" {
			t.Fatalf("row %d: %s %s %s, want %s pytorch_wide_deep torch.1", n, id, name, version, want)
		}
		worst = max(worst, math.Abs(score-fx.Outputs[0].Data[n]))
		n++
	}
	if n != rows {
		t.Fatalf("%d scores, want %d", n, rows)
	}
	if worst > 1e-5 {
		t.Errorf("published scores differ from ONNX Runtime's by up to %g", worst)
	}

	// A bundle whose graph names an operator scorer does not run: a
	// bundle error (exit 2), found by validate and by backfill alike.
	yaml, err := os.ReadFile(filepath.Join(model, "model.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(yaml), "op: Relu", "op: LpNormalization", 1)
	if broken == string(yaml) {
		t.Fatal("model.yaml has no Relu node")
	}
	writeFile(t, filepath.Join(model, "model.yaml"), []byte(broken))
	for _, args := range [][]string{
		{"validate", "--model", model, "--input", input, "--output", out},
		{"backfill", "--month", "2020-01", "--model", model, "--input", input, "--output", filepath.Join(dir, "out2")},
	} {
		r := scorerProc(t, nil, args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "(LpNormalization, opset 17)") || !strings.Contains(r.stderr, "operator LpNormalization is not supported") {
			t.Errorf("%s with an unsupported operator: exit %d, want %d naming the node\nstderr:\n%s", args[0], r.code, exitUsage, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out2", "ad_scores")); !os.IsNotExist(err) {
		t.Errorf("the refused backfill published: %v", err)
	}
}
