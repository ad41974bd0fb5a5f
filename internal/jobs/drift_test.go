package jobs

import (
	"context"
	"errors"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/demodata"
	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/training"
	"github.com/adtech/scorer/writers/table"
)

// trainDemoWide trains a wide model on the demo store's 2020-08 dumps: a
// bundle with its training profile.
func trainDemoWide(t *testing.T) *bundle.Bundle {
	t.Helper()
	spec, err := features.LoadSpec("../../testdata/features.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := training.DefaultConfig()
	cfg.Arch = bundle.Architecture{Kind: bundle.Wide}
	cfg.Epochs, cfg.BatchSize, cfg.Seed = 2, 512, 1
	bu, err := Train(context.Background(), TrainJob{
		Input: store.NewFileBucket(demoStoreDir), Dir: "dumps", Month: "2020-08", Spec: spec,
		Name: "ctr-drift", Version: "t1", Config: cfg, BatchSize: 4096, CSV: readers.CSVOptions{Header: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if bu.Profile == nil {
		t.Fatal("the trained bundle has no training profile")
	}
	return bu
}

// csvRows reads every gzip CSV under dir (key order) as maps by column.
func csvRows(t *testing.T, dir string) []map[string]string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.csv.gz"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no dumps under %s (%v)", dir, err)
	}
	slices.Sort(paths)
	var rows []map[string]string
	for _, p := range paths {
		recs, err := demodata.ReadDump(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs[1:] {
			m := map[string]string{}
			for i, c := range recs[0] {
				m[c] = r[i]
			}
			rows = append(rows, m)
		}
	}
	return rows
}

// writeDumps writes rows as one gzip CSV dump under dir/dumps/month.
func writeDumps(t *testing.T, dir, month string, header []string, rows []map[string]string) {
	t.Helper()
	p := filepath.Join(dir, "dumps", month, "ads-"+month+"-000.csv.gz")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	recs := [][]string{header}
	for _, r := range rows {
		rec := make([]string, len(header))
		for i, c := range header {
			rec[i] = r[c]
		}
		recs = append(recs, rec)
	}
	if err := demodata.WriteDump(p, recs); err != nil {
		t.Fatal(err)
	}
}

// refShares computes, independently of package features, a feature's
// shares over the reference bins the bundle's training profile defines:
// numeric [missing, bins by edge...], hashed categorical [missing, oov
// (none), each reference bucket..., other]. index maps a raw value to its
// bucket (0: unknown).
func refShares(rows []map[string]string, f *features.FeatureProfile, column string, index func(string) int32) []float64 {
	var counts []float64
	if f.Kind == features.Numeric {
		counts = make([]float64, 1+len(f.Edges)+1)
		for _, r := range rows {
			v, err := strconv.ParseFloat(r[column], 64)
			if r[column] == "" || err != nil || math.IsNaN(v) {
				counts[0]++
				continue
			}
			bin := len(f.Edges)
			for i, e := range f.Edges {
				if v <= e {
					bin = i
					break
				}
			}
			counts[1+bin]++
		}
	} else {
		counts = make([]float64, 2+len(f.Refs)+1)
		for _, r := range rows {
			if r[column] == "" {
				counts[0]++
				continue
			}
			idx := index(r[column])
			if idx == 0 {
				counts[1]++
				continue
			}
			if k := slices.Index(f.Refs, idx); k >= 0 {
				counts[2+k]++
			} else {
				counts[2+len(f.Refs)]++
			}
		}
	}
	for i := range counts {
		counts[i] /= float64(len(rows))
	}
	return counts
}

// psi is the population stability index of shares p against q, empty
// shares taken as 1e-4 (docs/monitoring.md).
func psi(p, q []float64) float64 {
	var s float64
	for i := range p {
		a, b := max(p[i], 1e-4), max(q[i], 1e-4)
		s += (a - b) * math.Log(a/b)
	}
	return s
}

// siteIndex is the site feature's bucket: 1 + FNV-1a(value) mod 1000
// (docs/features.md), with the standard library's FNV.
func siteIndex(v string) int32 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(v))
	return int32(1 + h.Sum64()%1000)
}

// TestDriftFlagsExactlyTheInjectedFeatures trains on the demo's August,
// scores its September as it is (no feature drifts) and with three
// upstream changes injected: bid_price now in cents, a new site naming
// scheme, the country column blanked. Exactly those three features cross
// the warning threshold, their PSI equals an independent computation from
// the raw rows, and with fail_above set the run fails publishing nothing.
func TestDriftFlagsExactlyTheInjectedFeatures(t *testing.T) {
	ctx := context.Background()
	bu := trainDemoWide(t)
	policy := DriftPolicy{WarnAbove: 0.25, MinRows: 1000}

	score := func(in, out string, p DriftPolicy) (*Summary, error) {
		return Score(ctx, ScoreJob{
			Job: BackfillJob(demoMonth), Input: store.NewFileBucket(in), Output: store.NewFileBucket(out), Bundle: bu,
			Dir: "dumps/" + demoMonth, Table: demoTable, Partition: demoPartition, Mode: table.Replace,
			IDColumns: []string{"ad_id"}, LabelColumns: []string{"clicked"}, RequireRows: true,
			BatchSize: 4096, ReadConcurrency: 2, CSV: readers.CSVOptions{Header: true}, LeaseTTL: time.Minute, Drift: p,
		})
	}
	flagged := func(sum *Summary) []string {
		var out []string
		for _, d := range sum.Drift {
			if d.Kind != string(features.ScoreKind) && d.Status != DriftOK {
				out = append(out, d.Feature)
			}
		}
		slices.Sort(out)
		return out
	}

	clean, err := score(demoStoreDir, t.TempDir(), policy)
	if err != nil {
		t.Fatal(err)
	}
	if got := flagged(clean); len(got) > 0 || clean.DriftStatus != DriftOK {
		t.Fatalf("a month like the training month: flagged %v (status %s): %+v", got, clean.DriftStatus, clean.Drift)
	}
	for _, d := range clean.Drift {
		if !(d.PSI < 0.1) {
			t.Errorf("%s: PSI %g on a month from the same distribution, want < 0.1", d.Feature, d.PSI)
		}
	}

	// The drifted month.
	sept := csvRows(t, filepath.Join(demoStoreDir, "dumps", demoMonth))
	for _, r := range sept {
		if v, err := strconv.ParseFloat(r["bid_price"], 64); r["bid_price"] != "" && err == nil {
			r["bid_price"] = strconv.FormatFloat(v*100, 'f', -1, 64)
		}
		r["site_domain"] = "www." + strings.TrimSuffix(r["site_domain"], ".example") + ".com"
		r["country"] = ""
	}
	in := t.TempDir()
	header := []string{"ad_id", "served_at", "site_domain", "ad_category", "device", "country", "ad_width", "ad_height", "bid_price", "position", "clicked"}
	writeDumps(t, in, demoMonth, header, sept)
	out := t.TempDir()
	sum, err := score(in, out, policy)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := flagged(sum), []string{"bid_price", "country", "site"}; !slices.Equal(got, want) {
		t.Fatalf("flagged %v, want %v: %+v", got, want, sum.Drift)
	}
	if sum.DriftStatus != DriftWarn {
		t.Errorf("status %s, want warn", sum.DriftStatus)
	}

	// PSI from the raw rows, with the bins the training profile defines,
	// against the drift table as DuckDB reads it.
	aug := csvRows(t, filepath.Join(demoStoreDir, "dumps", "2020-08"))
	files, _ := publishedFiles(t, out, DriftTable(demoTable), demoPartition)
	db := duck(t)
	for _, c := range []struct{ feature, column string }{{"bid_price", "bid_price"}, {"site", "site_domain"}, {"country", "country"}, {"device", "device"}} {
		ref := bu.Profile.Feature(c.feature)
		index := siteIndex
		if ref.Kind == features.Categorical && ref.Refs != nil && c.feature != "site" {
			vocab := bu.Stats.Vocab[c.feature]
			index = func(v string) int32 { return int32(slices.Index(vocab, v) + 1) }
		}
		want := psi(refShares(sept, ref, c.column, index), refShares(aug, ref, c.column, index))
		var got float64
		if err := db.QueryRow("SELECT psi FROM read_parquet(?) WHERE feature = ?", files, c.feature).Scan(&got); err != nil {
			t.Fatalf("%s: %v", c.feature, err)
		}
		if math.Abs(got-want) > 1e-9*max(1, want) {
			t.Errorf("%s: PSI %g in the drift table, %g computed from the rows", c.feature, got, want)
		}
	}

	// Failing on it: nothing published, the error names the features.
	out2 := t.TempDir()
	policy.FailAbove = 1
	_, err = score(in, out2, policy)
	if !errors.Is(err, ErrDrift) {
		t.Fatalf("with fail_above: %v, want ErrDrift", err)
	}
	for _, f := range []string{"bid_price", "site", "country"} {
		if !strings.Contains(err.Error(), f+" (PSI") {
			t.Errorf("the error does not name %s: %v", f, err)
		}
	}
	for _, tbl := range []string{demoTable, ProfilesTable(demoTable), DriftTable(demoTable)} {
		if _, err := os.Stat(filepath.Join(out2, tbl, demoPartition, table.ManifestName)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s published after a drift failure (%v)", tbl, err)
		}
	}
}

// A previous partition whose profile cannot be read (its manifest lists a
// file that is gone) leaves the drift against it out, with a warning; the
// run still compares with training and publishes.
func TestDriftWithAnUnreadablePreviousProfile(t *testing.T) {
	out := t.TempDir()
	dir := filepath.Join(out, ProfilesTable(demoTable), "month=2020-08")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := `{"format_version":1,"table":"` + ProfilesTable(demoTable) + `","partition":"month=2020-08","files":[{"name":"part-gone.parquet","rows":1,"bytes":1}],"total_rows":1}`
	if err := os.WriteFile(filepath.Join(dir, table.ManifestName), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	bu := loadDemoBundle(t)
	sum := backfill(t, demoStoreDir, out, demoMonth, bu)
	if sum.DriftStatus != DriftOK || len(sum.Drift) == 0 {
		t.Fatalf("drift %s %+v, want ok", sum.DriftStatus, sum.Drift)
	}
	for _, d := range sum.Drift {
		if !math.IsNaN(d.PSIPrev) || d.PrevPartition != "" || math.IsNaN(d.PSI) {
			t.Errorf("%s: PSI %g, against %q %g; want against training only", d.Feature, d.PSI, d.PrevPartition, d.PSIPrev)
		}
	}
}
