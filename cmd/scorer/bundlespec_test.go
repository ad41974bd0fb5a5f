package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// editedDemoModel copies the demo bundle into a temporary folder with its
// model.yaml rewritten by edit.
func editedDemoModel(t *testing.T, edit func(string) string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	for _, name := range []string{"model.yaml", "weights.safetensors"} {
		data, err := os.ReadFile(filepath.Join(demoModel, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "model.yaml" {
			edited := edit(string(data))
			if edited == string(data) {
				t.Fatal("the edit changed nothing in model.yaml")
			}
			data = []byte(edited)
		}
		writeFile(t, filepath.Join(dir, name), data)
	}
	return dir
}

// The feature spec in a bundle gets the defaults of a spec file, and a
// spec that is invalid, or that the bundle's statistics do not cover, is a
// bundle error at load: exit 2 from validate and from backfill alike
// (before, a bundle spec without column passed validate and failed
// backfill with exit 3, and a column read as two types passed validate and
// failed backfill with exit 1).
func TestBundleSpecErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(string) string
		code int
		want string // the error names the feature so
	}{
		{"no column", func(s string) string {
			return regexp.MustCompile(`(?m)^      column: (bid_price|position|ad_width|ad_height|device|country)\n`).ReplaceAllString(s, "")
		}, exitOK, ""},
		{"invalid spec", func(s string) string {
			return strings.Replace(s, "      hash_buckets: 1000\n", "      hash_buckets: 1000\n      vocabulary:\n        max_size: 3\n", 1)
		}, exitUsage, `feature \"site\": a categorical needs exactly one of hash_buckets, vocabulary or ids`},
		{"standardize without statistics", func(s string) string {
			return regexp.MustCompile(`(?m)^    position:\n      mean: .*\n      std: .*\n`).ReplaceAllString(s, "")
		}, exitUsage, `feature \"position\": no training statistics for standardize`},
		{"column read as two types", func(s string) string {
			return strings.Replace(s, "      column: site_domain\n", "      column: position\n", 1)
		}, exitUsage, `feature \"site\" reads column \"position\" as utf8`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			model := editedDemoModel(t, tt.edit)
			for _, cmd := range [][]string{{"validate"}, {"backfill", "--month", "2020-09"}} {
				out := t.TempDir()
				r := scorerProc(t, nil, append(cmd, "--input", demoStore, "--model", model, "--output", out, "--log-format", "json")...)
				if r.code != tt.code {
					t.Fatalf("scorer %s: exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", cmd[0], r.code, tt.code, r.stdout, r.stderr)
				}
				if tt.code == exitOK {
					if cmd[0] == "backfill" && readTable(t, filepath.Join(out, "ad_scores"), "ad_id", "month").rows != countDemoRows(t, "2020-09") {
						t.Error("backfill did not score every row of the month")
					}
					continue
				}
				for _, want := range []string{model, "invalid model bundle", tt.want} {
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
}
