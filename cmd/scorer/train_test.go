package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// scorer train --arch wide works from the default config (its hidden
// layers are ignored), and the summary labels validation before training.
func TestTrainWideFromDefaults(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m")
	r := scorer(t, nil, "train", "--month", "2020-08", "--out", out, "--input", demoStore,
		"--spec", "../../testdata/features.yaml", "--arch", "wide", "--epochs", "1", "--validation-fraction", "0.2", "--learning-rate", "0.01")
	mustSucceed(t, r)
	val, train := strings.Index(r.stdout, "validation"), strings.Index(r.stdout, "training")
	if val < 0 || train < val || !strings.Contains(r.stdout, "log loss, constant") || strings.Contains(r.stdout, "NaN") {
		t.Errorf("summary:\n%s", r.stdout)
	}
	if strings.Contains(r.stderr, "NaN") || strings.Contains(r.stderr, "!ERROR") {
		t.Errorf("logs:\n%s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "model.yaml")); err != nil {
		t.Error(err)
	}
	// A configuration error is exit 2, never 1 ("safe to retry").
	r = scorer(t, nil, "train", "--month", "2020-08", "--out", out, "--input", demoStore,
		"--spec", "../../testdata/features.yaml", "--split", "latest")
	if r.code != exitUsage || !strings.Contains(r.stderr, "train.split") {
		t.Errorf("bad split: exit %d\n%s", r.code, r.stderr)
	}
}

// scorer validate works before a bundle exists, and checks train.spec
// strictly and against the input's columns (exit 2).
func TestValidateWithoutBundle(t *testing.T) {
	dir := t.TempDir()
	spec, err := os.ReadFile("../../testdata/features.yaml")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", string(spec))
	typo := write("typo.yaml", strings.Replace(string(spec), "kind: categorical, hash_buckets", "kind: categorial, hash_buckets", 1))
	column := write("column.yaml", strings.Replace(string(spec), "column: site_domain", "column: site_domian", 1))
	base := []string{"validate", "--input", demoStore, "--output", t.TempDir(), "--model", filepath.Join(dir, "no-model")}

	r := scorer(t, nil, append(base, "--spec", good)...)
	mustSucceed(t, r)
	for _, want := range []string{"train spec: ", "11 features", "input sample: ", "no bundle at", "stores: ok"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("validate output lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, tt := range []struct{ name, spec, want string }{
		{"unknown kind", typo, `feature \"site\": unknown kind \"categorial\"`}, // JSON logs: stderr is no terminal
		{"missing column", column, `column \"site_domian\" missing`},
		{"no spec", filepath.Join(dir, "nope.yaml"), "nope.yaml"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := scorer(t, nil, append(base, "--spec", tt.spec)...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, want %d with %q:\n%s", r.code, exitUsage, tt.want, r.stderr)
			}
		})
	}
	// With a bundle, the bundle is validated as before, and the spec too.
	r = scorer(t, nil, "validate", "--input", demoStore, "--output", t.TempDir(), "--model", demoModel, "--spec", typo)
	if r.code != exitUsage || !strings.Contains(r.stderr, "categorial") {
		t.Errorf("bundle and a bad spec: exit %d\n%s", r.code, r.stderr)
	}
}
