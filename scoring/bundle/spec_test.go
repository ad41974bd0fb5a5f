package bundle_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
)

// editModel saves fullBundle in dir/b and rewrites its model.yaml.
func editModel(t *testing.T, dir string, edit func(string) string) {
	t.Helper()
	if err := fullBundle().Save(context.Background(), store.NewFileBucket(dir), "b"); err != nil {
		t.Fatal(err)
	}
	d := filepath.Join(dir, "b")
	before := string(readFile(t, d, bundle.ModelFile))
	after := edit(before)
	if after == before {
		t.Fatalf("the edit changed nothing in:\n%s", before)
	}
	write(t, d, bundle.ModelFile, []byte(after))
}

// A hand-written model.yaml may leave out what a spec file may: the spec
// in a bundle gets the same defaults.
func TestLoadGivesTheSpecItsDefaults(t *testing.T) {
	dir := t.TempDir()
	editModel(t, dir, func(s string) string { return regexp.MustCompile(`(?m)^\s+column: .*\n`).ReplaceAllString(s, "") })
	got, err := bundle.Load(context.Background(), store.NewFileBucket(dir), "b")
	if err != nil {
		t.Fatal(err)
	}
	if want := fullBundle().Features; !reflect.DeepEqual(got.Features, want) {
		t.Errorf("features without column:\n got  %+v\n want %+v", got.Features, want)
	}
}

// A spec that is invalid, or that the statistics do not cover, makes the
// bundle invalid at load; the error names the bundle and the feature.
func TestLoadRefusesABadSpec(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(string) string
		want string
	}{
		{"hash and vocabulary", func(s string) string {
			return strings.Replace(s, "hash_buckets: 3\n", "hash_buckets: 3\n      vocabulary:\n        max_size: 2\n", 1)
		}, `feature "site": a categorical needs exactly one of hash_buckets, vocabulary or ids`},
		{"unknown kind", func(s string) string {
			return strings.Replace(s, "kind: numeric", "kind: text", 1)
		}, `feature "price": unknown kind "text"`},
		{"standardize without statistics", func(s string) string {
			return regexp.MustCompile(`(?m)^    price:\n      mean: .*\n      std: .*\n`).ReplaceAllString(s, "")
		}, `feature "price": no training statistics for standardize`},
		{"vocabulary without values", func(s string) string {
			return regexp.MustCompile(`(?ms)^  vocab:\n.*?(^\S|\z)`).ReplaceAllString(s, "$1")
		}, `feature "device": no training vocabulary`},
		{"ids with missing_id out of range", func(s string) string {
			return strings.Replace(s, "hash_buckets: 3\n", "ids: 3\n      missing_id: 3\n", 1)
		}, `feature "site": missing_id 3 is not an id in [0, 3)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			editModel(t, dir, tt.edit)
			b := store.NewFileBucket(dir)
			_, err := bundle.Load(context.Background(), b, "b")
			if !errors.Is(err, bundle.ErrInvalid) || !errors.Is(err, features.ErrSpec) {
				t.Fatalf("Load: %v, want bundle.ErrInvalid and features.ErrSpec", err)
			}
			for _, want := range []string{b.URI("b"), tt.want} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

// Save writes no bundle that Load would refuse.
func TestSaveRefusesABadSpec(t *testing.T) {
	bu := fullBundle()
	delete(bu.Stats.Numeric, "price")
	dir := t.TempDir()
	err := bu.Save(context.Background(), store.NewFileBucket(dir), "b")
	if !errors.Is(err, bundle.ErrInvalid) || !strings.Contains(err.Error(), `feature "price"`) {
		t.Fatalf("Save: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("Save of an invalid bundle wrote %v", entries)
	}
}

// A categorical of ids round-trips; Load fills in its default
// out_of_range, and Save leaves the caller's spec alone.
func TestIDsFeatureRoundTrip(t *testing.T) {
	bu := fullBundle()
	bu.Features.Features[1] = features.Feature{Name: "site", Kind: features.Categorical, IDs: 4}
	dir := t.TempDir()
	b := store.NewFileBucket(dir)
	if err := bu.Save(context.Background(), b, "b"); err != nil {
		t.Fatal(err)
	}
	if f := bu.Features.Features[1]; f.Column != "" || f.OutOfRange != "" {
		t.Errorf("Save changed the bundle's spec: %+v", f)
	}
	got, err := bundle.Load(context.Background(), b, "b")
	if err != nil {
		t.Fatal(err)
	}
	want := features.Feature{Name: "site", Kind: features.Categorical, Column: "site", IDs: 4, OutOfRange: features.OutOfRangeMissing}
	if f := got.Features.Features[1]; !reflect.DeepEqual(f, want) {
		t.Errorf("loaded %+v, want %+v", f, want)
	}
}
