package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The README's three commands for a model trained elsewhere, and the model
// as a challenger: the demo ONNX model (trained in numpy on 2020-08,
// written as torch.onnx.export writes it: testdata/onnx) is imported with
// its spec and statistics, scores 2020-09 beside the shipped champion, and
// is evaluated on the month's labels. Its published scores (read back with
// DuckDB) are ONNX Runtime's for the same CSV rows, computed from raw CSV
// by the generator's own Python features (ctr-pytorch.expected.json), and
// its AUC is the one the generator computed from ONNX Runtime's scores.
func TestImportedDemoModelAsChallenger(t *testing.T) {
	var want struct {
		Rows []struct {
			AdID  string  `json:"ad_id"`
			Score float64 `json:"score"`
		} `json:"rows"`
		AUC float64 `json:"auc_2020_09"`
	}
	data, err := os.ReadFile("../../testdata/onnx/ctr-pytorch.expected.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &want); err != nil || len(want.Rows) < 100 {
		t.Fatalf("expected scores: %d rows, %v", len(want.Rows), err)
	}
	dir := t.TempDir()
	model, out := filepath.Join(dir, "models", "ctr-onnx"), filepath.Join(dir, "out")
	mustSucceed(t, scorerProc(t, nil, "import", "onnx", "../../testdata/onnx/ctr-pytorch.onnx",
		"--spec", "../../testdata/onnx/features.yaml", "--stats", "../../testdata/onnx/stats.yaml", "--out", model, "--version", "torch.1"))
	mustSucceed(t, scorerProc(t, nil, append([]string{"backfill", "--month", "2020-09", "--challenger", model}, demoArgs(out)...)...))

	scores := map[string]float64{}
	rows, err := duck(t).Query(fmt.Sprintf(`SELECT ad_id, score FROM read_parquet('%s/ad_scores_challengers/*/*.parquet')
		WHERE model_name = 'ctr-pytorch' AND model_version = 'torch.1'`, out))
	if err != nil {
		t.Fatal(err)
	}
	defer closeRows(t, rows)
	for rows.Next() {
		var id string
		var s float64
		if err := rows.Scan(&id, &s); err != nil {
			t.Fatal(err)
		}
		scores[id] = s
	}
	if n := countDemoRows(t, "2020-09"); int64(len(scores)) != n {
		t.Fatalf("the imported challenger scored %d rows, the month has %d", len(scores), n)
	}
	worst := 0.0
	for _, r := range want.Rows {
		s, ok := scores[r.AdID]
		if !ok {
			t.Fatalf("no score for %s", r.AdID)
		}
		worst = max(worst, math.Abs(s-r.Score))
	}
	if worst > 1e-5 {
		t.Errorf("the imported model's scores differ from ONNX Runtime's by up to %g", worst)
	}

	r := scorerProc(t, nil, "evaluate", "--month", "2020-09", "--input", demoStore, "--output", out, "--labels", "dumps/2020-09", "-o", "json")
	mustSucceed(t, r)
	var ev evaluationOut
	if err := json.Unmarshal([]byte(r.stdout), &ev); err != nil {
		t.Fatalf("evaluate -o json: %v\n%s", err, r.stdout)
	}
	found := false
	for _, row := range ev.Rows {
		if row.SegmentColumn == "" && row.ModelVersion == "torch.1" {
			found = true
			if row.Role != "challenger" || row.AUC == nil || math.Abs(*row.AUC-want.AUC) > 5e-6 {
				t.Errorf("imported challenger's evaluation %+v, want role challenger and AUC %.6f (ONNX Runtime's scores)", row, want.AUC)
			}
		}
	}
	if !found {
		t.Errorf("evaluate has no row for the imported challenger: %s", r.stdout)
	}
}

// The same on GCS: the ONNX file read from a bucket, the reference rows
// taken from a month folder there (--data), the bundle written to one,
// and the month scored from there (the fake-gcs-server emulator).
func TestImportONNXOnGCS(t *testing.T) {
	g := newGCS(t)
	g.seedDemo(t)
	model, err := os.ReadFile("../../testdata/onnx/ctr-pytorch.onnx")
	if err != nil {
		t.Fatal(err)
	}
	g.put(t, "models", "exported/ctr-pytorch.onnx", model)
	dir := t.TempDir()
	for _, f := range []string{"features.yaml", "stats.yaml"} { // the spec and stats are local files
		data, err := os.ReadFile(filepath.Join("../../testdata/onnx", f))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, f), data)
	}
	r := scorerProc(t, g.env(), "import", "onnx", "gs://models/exported/ctr-pytorch.onnx",
		"--spec", filepath.Join(dir, "features.yaml"), "--stats", filepath.Join(dir, "stats.yaml"), "--out", "gs://models/ctr-onnx/1", "--version", "1",
		"--data", "gs://ads/input/dumps/2020-08")
	mustSucceed(t, r)
	if !strings.Contains(r.stdout, "gs://models/exported/ctr-pytorch.onnx") || !strings.Contains(r.stdout, "16 reference rows from gs://ads/input/dumps/2020-08") {
		t.Errorf("import output does not name the source and the reference rows' data:\n%s", r.stdout)
	}
	if got := g.names(t, "models", "ctr-onnx/1/"); !slices.Equal(got, []string{"model.yaml", "profile.json", "reference.json", "weights.safetensors"}) {
		t.Fatalf("bundle objects %v", got)
	}
	mustSucceed(t, scorerProc(t, g.env(), "backfill", "--month", "2020-09", "--input", "gs://ads/input",
		"--model", "gs://models/ctr-onnx/1", "--output", "gs://analytics/out", "--log-format", "json"))
	out := g.download(t, "analytics", "out/")
	var n int64
	var version string
	if err := duck(t).QueryRow(fmt.Sprintf(`SELECT count(*), any_value(model_version) FROM read_parquet('%s/ad_scores/*/*.parquet')`, out)).Scan(&n, &version); err != nil {
		t.Fatal(err)
	}
	if n != countDemoRows(t, "2020-09") || version != "1" {
		t.Errorf("%d rows scored by version %q, want the month's %d by 1", n, version, countDemoRows(t, "2020-09"))
	}
}
