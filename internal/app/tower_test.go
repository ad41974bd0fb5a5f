package app

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/onnx"
)

// scorer train with train.image.onnx: the PyTorch tower of the ONNX
// fixtures is the model's image tower, kept as it is (frozen), recorded in
// the bundle, and the saved bundle passes its skew guard.
func TestTrainImportedTower(t *testing.T) {
	spec, err := os.ReadFile("../../testdata/features-images.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The fixture takes 16 px images.
	specPath := filepath.Join(t.TempDir(), "features.yaml")
	if err := os.WriteFile(specPath, []byte(strings.Replace(string(spec), "image: {size: 32}", "image: {size: 16}", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	const towerFile = "../../scoring/onnx/testdata/pytorch_tower.onnx"
	data, err := os.ReadFile(towerFile)
	if err != nil {
		t.Fatal(err)
	}
	want, err := onnx.ImportTower(data)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	cfg.Input = "../../testdata/store-images"
	cfg.Train.Spec, cfg.Train.Epochs, cfg.Train.BatchSize = specPath, 1, 1024
	cfg.Train.Image.ONNX = towerFile
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	bu, _, err := New(cfg, Options{}).Train(context.Background(), TrainRequest{Month: "2020-08", Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if a := bu.Arch.Image; a == nil || !slices.Equal(a.Channels, want.Arch.Channels) || a.Embedding != want.Arch.Embedding {
		t.Fatalf("tower %+v, want the imported %+v", a, want.Arch)
	}
	for name, p := range want.Weights {
		if !slices.Equal(bu.Weights[name].Data, p.Data) {
			t.Errorf("%s is not the imported tower's", name)
		}
	}
	if !strings.Contains(bu.Training.ImageTower, "pytorch_tower.onnx") || !strings.Contains(bu.Training.ImageTower, "frozen") {
		t.Errorf("training record %q does not say where the tower came from", bu.Training.ImageTower)
	}
	saved, err := bundle.Load(context.Background(), store.NewFileBucket(out), "")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := scoring.CheckReference(saved); err != nil || n == 0 || len(saved.ImageProbe) != want.Arch.Embedding {
		t.Fatalf("skew guard of the saved bundle: %d rows, probe %v, %v", n, saved.ImageProbe, err)
	}
}
