package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// demoBundleCopy copies the demo bundle, reference rows included, into a
// temporary folder with the named files rewritten by their edits (a nil
// edit leaves the file out).
func demoBundleCopy(t *testing.T, edits map[string]func(string) string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	for _, name := range []string{"model.yaml", "weights.safetensors", "reference.json"} {
		data, err := os.ReadFile(filepath.Join(demoModel, name))
		if err != nil {
			t.Fatal(err)
		}
		if edit, ok := edits[name]; ok {
			if edit == nil {
				continue
			}
			edited := edit(string(data))
			if edited == string(data) {
				t.Fatalf("the edit changed nothing in %s", name)
			}
			data = []byte(edited)
		}
		writeFile(t, filepath.Join(dir, name), data)
	}
	return dir
}

// referenceLine edits line i (1-based) of reference.json's rows.
func referenceLine(i int, edit func(string) string) func(string) string {
	return func(s string) string {
		lines := strings.Split(s, "\n")
		lines[2+i] = edit(lines[2+i]) // {, "format", "rows": [, then the rows
		return strings.Join(lines, "\n")
	}
}

// The skew guard on the shipped demo bundle: its reference rows reproduce
// (validate says so), and a changed feature statistic, a changed expected
// feature or a changed expected score makes validate and backfill exit 2
// naming the bundle, the row, the feature or the score and both values,
// before reading any input: nothing is published.
func TestSkewGuard(t *testing.T) {
	t.Run("reproduces", func(t *testing.T) {
		r := scorerProc(t, nil, "validate", "--input", demoStore, "--model", demoModel, "--output", t.TempDir())
		mustSucceed(t, r)
		if !strings.Contains(r.stdout, "compiles, 16 reference rows reproduce (skew guard)") {
			t.Errorf("validate does not report the skew guard:\n%s", r.stdout)
		}
	})
	tests := []struct {
		name  string
		edits map[string]func(string) string
		want  string
	}{
		{"vocabulary entry", map[string]func(string) string{"model.yaml": func(s string) string {
			return strings.Replace(s, "    category:\n      - cat08\n      - cat07\n", "    category:\n      - cat07\n      - cat08\n", 1)
		}}, `reference row 2: feature \"category\" index 1, computed 2: the feature transform changed since training`},
		{"numeric mean", map[string]func(string) string{"model.yaml": func(s string) string {
			return regexp.MustCompile(`(?m)^(    ad_height:\n      mean: )\S+`).ReplaceAllString(s, "${1}0.5")
		}}, `reference row 1: feature \"ad_height\" value -1.1764983 (float32 bits 0xbf96977f), computed `},
		{"expected index", map[string]func(string) string{"reference.json": referenceLine(3, func(l string) string {
			return strings.Replace(l, `"cat":[108,`, `"cat":[109,`, 1)
		})}, `reference row 3: feature \"site\" index 109, computed 108: the feature transform changed since training`},
		{"expected score", map[string]func(string) string{"reference.json": referenceLine(2, func(l string) string {
			return strings.Replace(l, `"score":0.33145615`, `"score":0.3315`, 1)
		})}, `reference row 2: score 0.3315, computed 0.33145615 (off by 4.`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			model := demoBundleCopy(t, tt.edits)
			for _, cmd := range [][]string{{"validate"}, {"backfill", "--month", "2020-09"}} {
				out := t.TempDir()
				r := scorerProc(t, nil, append(cmd, "--input", demoStore, "--model", model, "--output", out, "--log-format", "json")...)
				if r.code != exitUsage {
					t.Fatalf("scorer %s: exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", cmd[0], r.code, exitUsage, r.stdout, r.stderr)
				}
				for _, want := range []string{"load model bundle " + model, "skew guard: model ctr-demo 2020-08.1: ", tt.want} {
					if !strings.Contains(r.stderr, want) {
						t.Errorf("scorer %s: the error does not say %q:\n%s", cmd[0], want, r.stderr)
					}
				}
				if _, err := os.Stat(filepath.Join(out, "ad_scores")); !os.IsNotExist(err) {
					t.Errorf("scorer %s published ad_scores (stat: %v)", cmd[0], err)
				}
			}
		})
	}
	// A bundle made before reference rows loads and scores; the log says
	// the guard had nothing to check.
	t.Run("no reference rows", func(t *testing.T) {
		model := demoBundleCopy(t, map[string]func(string) string{"reference.json": nil})
		out := t.TempDir()
		r := scorerProc(t, nil, "backfill", "--month", "2020-09", "--input", demoStore, "--model", model, "--output", out, "--log-format", "json")
		mustSucceed(t, r)
		if !strings.Contains(r.stderr, `"level":"INFO","msg":"no reference rows in the model bundle: the skew guard has nothing to check"`) {
			t.Errorf("the log does not say the bundle has no reference rows:\n%s", r.stderr)
		}
		if readTable(t, filepath.Join(out, "ad_scores"), "ad_id", "month").rows != countDemoRows(t, "2020-09") {
			t.Error("backfill did not score every row of the month")
		}
	})
}

// An imported ONNX model gets reference rows from --data and none without
// it, and says so; with them it passes the guard at load.
func TestImportReferenceRows(t *testing.T) {
	dir := t.TempDir()
	args := []string{"import", "onnx", "../../testdata/onnx/ctr-pytorch.onnx", "--spec", "../../testdata/onnx/features.yaml", "--stats", "../../testdata/onnx/stats.yaml"}
	with, without := filepath.Join(dir, "with"), filepath.Join(dir, "without")

	r := scorerProc(t, nil, append(args, "--out", without)...)
	mustSucceed(t, r)
	if !strings.Contains(r.stdout, "no reference rows (no --data): the skew guard has nothing to check") {
		t.Errorf("import without --data does not say there are no reference rows:\n%s", r.stdout)
	}

	r = scorerProc(t, nil, append(args, "--out", with, "--data", demoStore+"/dumps/2020-08/ads-2020-08-000.csv.gz")...)
	mustSucceed(t, r)
	if !strings.Contains(r.stdout, "16 reference rows from ") {
		t.Errorf("import --data does not report its reference rows:\n%s", r.stdout)
	}
	var ref struct {
		Rows []struct {
			Values map[string]json.RawMessage `json:"values"`
			Cat    []int32                    `json:"cat"`
		} `json:"rows"`
	}
	data, err := os.ReadFile(filepath.Join(with, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &ref); err != nil || len(ref.Rows) != 16 || len(ref.Rows[0].Cat) != 6 {
		t.Fatalf("reference.json of the imported bundle: %v, %d rows", err, len(ref.Rows))
	}
	for _, model := range []string{with, without} {
		r = scorerProc(t, nil, "validate", "--input", demoStore, "--model", model, "--output", t.TempDir())
		mustSucceed(t, r)
		want := map[string]string{with: "16 reference rows reproduce (skew guard)", without: "no reference rows (skew guard off)"}[model]
		if !strings.Contains(r.stdout, want) {
			t.Errorf("validate %s does not say %q:\n%s", model, want, r.stdout)
		}
	}

	// Its rows catch a change of the statistics it was imported with.
	yml, err := os.ReadFile(filepath.Join(with, "model.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	edited := regexp.MustCompile(`(?m)^(    ad_width:\n      mean: )\S+`).ReplaceAllString(string(yml), "${1}1")
	if edited == string(yml) {
		t.Fatal("the edit changed nothing")
	}
	writeFile(t, filepath.Join(with, "model.yaml"), []byte(edited))
	r = scorerProc(t, nil, "validate", "--input", demoStore, "--model", with, "--output", t.TempDir())
	if r.code != exitUsage || !strings.Contains(r.stderr, `reference row 1: feature \"ad_width\" value`) {
		t.Errorf("validate of the imported bundle with another ad_width mean: exit %d\n%s", r.code, r.stderr)
	}
}
