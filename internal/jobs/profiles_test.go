package jobs

import (
	"math"
	"testing"

	"github.com/adtech/scorer/features"
)

// The drift policy: the default thresholds, a per-feature entry replacing
// both, timestamp parts judged only when given an entry, min_rows, and a
// feature without a training profile never judged.
func TestDriftPolicyJudge(t *testing.T) {
	// Shares [missing, bins...] of 1000 rows: same, or all in another bin.
	prof := func(kind features.Kind, moved bool) features.FeatureProfile {
		f := features.FeatureProfile{Kind: kind, Count: 1000, Edges: []float64{1, 2}, Bins: []int64{500, 500, 0}}
		if kind != features.Numeric {
			f.Edges, f.Refs = nil, []int32{1, 2}
		}
		if moved {
			f.Bins = []int64{0, 0, 1000}
		}
		return f
	}
	named := func(f features.FeatureProfile, name string) features.FeatureProfile { f.Name = name; return f }
	train := &features.Profile{Features: []features.FeatureProfile{
		named(prof(features.Numeric, false), "price"),
		named(prof(features.Categorical, false), "site"),
		named(prof(features.Timestamp, false), "weekday"),
		named(prof(features.Timestamp, false), "hour"),
	}}
	cur := &features.Profile{Features: []features.FeatureProfile{
		named(prof(features.Numeric, true), "price"),
		named(prof(features.Categorical, true), "site"),
		named(prof(features.Timestamp, true), "weekday"),
		named(prof(features.Timestamp, true), "hour"),
		named(prof(features.Numeric, true), "new_feature"), // not in the training profile
	}}
	status := func(p DriftPolicy, c *features.Profile) map[string]string {
		out := map[string]string{}
		drift, worst := p.judge(c, train, nil, "")
		for _, d := range drift {
			out[d.Feature] = d.Status
			if d.Feature == "new_feature" && !math.IsNaN(d.PSI) {
				t.Errorf("PSI %g of a feature the training profile lacks, want NaN", d.PSI)
			}
		}
		out["(run)"] = worst
		return out
	}
	check := func(what string, got, want map[string]string) {
		t.Helper()
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s: %s is %q, want %q (all: %v)", what, k, got[k], w, got)
			}
		}
	}
	check("defaults", status(DriftPolicy{WarnAbove: 0.25}, cur), map[string]string{
		"price": DriftWarn, "site": DriftWarn, "weekday": DriftOK, "hour": DriftOK, "new_feature": DriftOK, "(run)": DriftWarn,
	})
	check("per feature", status(DriftPolicy{WarnAbove: 0.25, FailAbove: 100, Features: map[string]DriftLimits{
		"site": {}, "weekday": {FailAbove: 1}, "price": {WarnAbove: 0.25, FailAbove: 1},
	}}, cur), map[string]string{
		"price": DriftFail, "site": DriftOK, "weekday": DriftFail, "hour": DriftOK, "(run)": DriftFail,
	})
	check("below min_rows", status(DriftPolicy{WarnAbove: 0.25, FailAbove: 1, MinRows: 1001}, cur), map[string]string{
		"price": DriftOK, "site": DriftOK, "(run)": DriftOK,
	})
	check("unchanged", status(DriftPolicy{WarnAbove: 0.25, FailAbove: 1}, train), map[string]string{
		"price": DriftOK, "site": DriftOK, "weekday": DriftOK, "(run)": DriftOK,
	})
}
