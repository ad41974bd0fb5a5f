package main

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// poisonedModel copies the demo bundle into a temporary folder, setting
// the given values of its weights (tensor name -> flat index -> value) in
// the weights file's bytes, so that no validation on the way can refuse
// them. It returns the bundle's folder.
func poisonedModel(t *testing.T, set map[string]map[int]float32) string {
	t.Helper()
	dir := t.TempDir()
	yml, err := os.ReadFile(filepath.Join(demoModel, "model.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	weights, err := os.ReadFile(filepath.Join(demoModel, "weights.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(weights)
	var header map[string]json.RawMessage
	if err := json.Unmarshal(weights[8:8+n], &header); err != nil {
		t.Fatal(err)
	}
	for name, values := range set {
		var tensor struct {
			DataOffsets [2]int `json:"data_offsets"`
		}
		if err := json.Unmarshal(header[name], &tensor); err != nil {
			t.Fatalf("tensor %s: %v", name, err)
		}
		for i, v := range values {
			off := 8 + int(n) + tensor.DataOffsets[0] + 4*i
			if off+4 > 8+int(n)+tensor.DataOffsets[1] {
				t.Fatalf("tensor %s has no index %d", name, i)
			}
			binary.LittleEndian.PutUint32(weights[off:], math.Float32bits(v))
		}
	}
	writeFile(t, filepath.Join(dir, "model.yaml"), yml)
	writeFile(t, filepath.Join(dir, "weights.safetensors"), weights)
	return dir
}

// A poisoned model fails the run with exit code 2 and publishes nothing:
// non-finite weights at load (the tensor and index named), and logits
// that are not finite or beyond max_abs_logit (default 50) at scoring
// (the row's ids named). With the limit off, a saturated model's scores
// still stay inside (0, 1).
func TestPoisonedModelIsRefused(t *testing.T) {
	nan := float32(math.NaN())
	tests := []struct {
		name string
		set  map[string]map[int]float32
		env  map[string]string
		code int
		msgs []string
	}{
		{
			"NaN weight",
			map[string]map[int]float32{"deep.l0.w": {3: nan}},
			nil, exitUsage,
			[]string{`tensor \"deep.l0.w\" has a non-finite value NaN at index 3`, "load model bundle"},
		},
		{
			"huge bias",
			map[string]map[int]float32{"wide.bias": {0: -1e38}},
			nil, exitUsage,
			[]string{"logit -1e+38 is beyond ±50 (max_abs_logit)", `ad_id=`},
		},
		{
			"overflowing logit",
			map[string]map[int]float32{"wide.bias": {0: 3e38}, "deep.out.b": {0: 3e38}},
			nil, exitUsage,
			[]string{"logit +Inf is not finite", `ad_id=`, "the model"},
		},
		{"huge bias, limit off", map[string]map[int]float32{"wide.bias": {0: -1e38}}, map[string]string{"SCORER_MAX_ABS_LOGIT": "0"}, exitOK, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			args := []string{"backfill", "--month", "2020-09", "--input", demoStore, "--output", out, "--model", poisonedModel(t, tt.set), "--log-format", "json"}
			r := scorer(t, tt.env, args...)
			if r.code != tt.code {
				t.Fatalf("exit code %d, want %d\nstdout:%s\nstderr:%s", r.code, tt.code, r.stdout, r.stderr)
			}
			for _, msg := range tt.msgs {
				if !strings.Contains(r.stderr, msg) {
					t.Errorf("stderr does not mention %q:\n%s", msg, r.stderr)
				}
			}
			if tt.code != exitOK {
				if _, err := os.Stat(filepath.Join(out, "ad_scores")); !os.IsNotExist(err) {
					t.Errorf("a refused model published ad_scores (%v)", err)
				}
				return
			}
			s := readTable(t, filepath.Join(out, "ad_scores"), "ad_id", "month")
			if s.rows == 0 || s.minScore <= 0 || s.maxScore >= 1 {
				t.Errorf("%d scores span [%g, %g], want inside (0, 1)", s.rows, s.minScore, s.maxScore)
			}
		})
	}
}

// Paths are confined to their stores, whatever sets them: a flag, the
// environment or the config file. Each is refused with exit code 2 and the
// setting named, before anything is written (in particular not under
// ./evil.host/ for --output file://evil.host/tmp/x).
func TestPathsAreConfined(t *testing.T) {
	input, err := filepath.Abs(demoStore)
	if err != nil {
		t.Fatal(err)
	}
	model, err := filepath.Abs(demoModel)
	if err != nil {
		t.Fatal(err)
	}
	cwd := t.TempDir()
	t.Chdir(cwd) // where a relative path would land
	config := filepath.Join(t.TempDir(), "c.yaml")
	writeFile(t, config, []byte("backfill:\n  dir: /etc\n"))
	out := filepath.Join(t.TempDir(), "out")
	base := []string{"--input", input, "--model", model, "--log-format", "json"}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		msgs []string
	}{
		{
			"flag: output with a host", nil,
			[]string{"backfill", "--month", "2020-09", "--output", "file://evil.host/tmp/x"},
			[]string{"output: ", `names host \"evil.host\"`},
		},
		{
			"flag: input with a host", nil,
			[]string{"run", "--output", out, "--input", "file://evil.host" + input},
			[]string{"input: ", `names host \"evil.host\"`},
		},
		{
			"env: queue dir climbs out",
			map[string]string{"SCORER_QUEUE_DIR": "../../../../etc"},
			[]string{"run", "--output", out},
			[]string{"queue.dir: ", `has a \"..\" element`},
		},
		{
			"env: output with a host",
			map[string]string{"SCORER_OUTPUT": "file://evil.host/tmp/x"},
			[]string{"backfill", "--month", "2020-09"},
			[]string{"output: ", "evil.host"},
		},
		{
			"config: absolute dumps dir", nil,
			[]string{"backfill", "--month", "2020-09", "--output", out, "--config", config},
			[]string{"backfill.dir: ", "is absolute"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{tt.args[0]}, base...), tt.args[1:]...) // the case's flags last: they win
			r := scorer(t, tt.env, args...)
			if r.code != exitUsage {
				t.Fatalf("exit code %d, want %d\nstdout:%s\nstderr:%s", r.code, exitUsage, r.stdout, r.stderr)
			}
			for _, msg := range tt.msgs {
				if !strings.Contains(r.stderr, msg) {
					t.Errorf("stderr does not mention %q:\n%s", msg, r.stderr)
				}
			}
		})
	}
	if entries, _ := os.ReadDir(cwd); len(entries) != 0 {
		t.Errorf("refused runs wrote %v into the working folder", entries)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("refused runs made the output store (%v)", err)
	}
}

// A logit that is not finite because the row's own input is out of
// float32's range (position has no clip in the demo spec) is bad input,
// exit code 3, naming the row's ids: not the model's fault.
func TestInputOutOfFloat32RangeIsBadInput(t *testing.T) {
	const colPosition = 9
	lines := demoCSV(t, "huge", 20)
	lines[4] = setField(lines[4], colPosition, "1e39")
	in, out := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(in, "dumps/2020-09/a.csv"), []byte(strings.Join(lines, "\n")+"\n"))
	r := scorer(t, nil, "backfill", "--month", "2020-09", "--input", in, "--model", demoModel, "--output", out, "--log-format", "json")
	if r.code != exitBadInput {
		t.Fatalf("exit code %d, want %d\nstderr:\n%s", r.code, exitBadInput, r.stderr)
	}
	id := strings.Split(lines[4], ",")[0]
	for _, msg := range []string{`ad_id=\"` + id + `\"`, "is not finite", "the input is at fault"} {
		if !strings.Contains(r.stderr, msg) {
			t.Errorf("stderr does not mention %q:\n%s", msg, r.stderr)
		}
	}
}
