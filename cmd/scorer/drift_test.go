package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/adtech/scorer/internal/app"
	"github.com/adtech/scorer/internal/demodata"
	"github.com/adtech/scorer/internal/runlog"
)

// blankColumn rewrites every gzip CSV dump of a month in the store at dir
// with column emptied (null) in every row.
func blankColumn(t *testing.T, dir, month, column string) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "dumps", month, "*.csv.gz"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no dumps of %s under %s (%v)", month, dir, err)
	}
	for _, p := range paths {
		recs, err := demodata.ReadDump(p)
		if err != nil {
			t.Fatal(err)
		}
		col := slices.Index(recs[0], column)
		if col < 0 {
			t.Fatalf("%s has no column %s", p, column)
		}
		for _, r := range recs[1:] {
			r[col] = ""
		}
		if err := demodata.WriteDump(p, recs); err != nil {
			t.Fatal(err)
		}
	}
}

// A month whose country column came blank, scored with the demo bundle
// (which carries its training profile): with drift.fail_above set, the
// backfill exits 7 naming the feature, publishes nothing and records the
// outcome drifted; without it, it publishes, warns in the summary and the
// run record, and writes the report, which scorer report writes again.
func TestDriftExitCodeAndReport(t *testing.T) {
	in := filepath.Join(t.TempDir(), "store")
	copyDir(t, demoStore, in)
	blankColumn(t, in, "2020-09", "country")
	out := t.TempDir()
	args := []string{"backfill", "--month", "2020-09", "--input", in, "--model", demoModel, "--output", out, "--log-format", "json", "-o", "json"}

	r := scorerProc(t, map[string]string{"SCORER_DRIFT_FAIL_ABOVE": "1"}, args...)
	if r.code != app.ExitDrift {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, app.ExitDrift, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "country (PSI ") || !strings.Contains(r.stderr, "drifted from the training data; nothing published") {
		t.Errorf("the error does not name the drifted feature:\n%s", r.stderr)
	}
	for _, tbl := range []string{"ad_scores", "ad_scores_profiles", "ad_scores_drift"} {
		if _, err := os.Stat(filepath.Join(out, tbl, "month=2020-09", "_manifest.json")); !os.IsNotExist(err) {
			t.Errorf("%s published after a drift failure (%v)", tbl, err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, app.ReportKey("ad_scores", "month=2020-09"))); !os.IsNotExist(err) {
		t.Errorf("a report written for a run that published nothing (%v)", err)
	}
	rec := lastRecord(t, out)
	if rec.Outcome != runlog.Drifted || rec.ExitCode != app.ExitDrift || rec.Drift == nil || rec.Drift.Status != "fail" {
		t.Fatalf("run record %+v, want outcome drifted with a drift verdict", rec)
	}
	country := slices.IndexFunc(rec.Drift.Features, func(f runlog.DriftFeature) bool { return f.Feature == "country" })
	if country < 0 || rec.Drift.Features[country].Status != "fail" || rec.Drift.Features[country].PSI == nil ||
		*rec.Drift.Features[country].PSI <= 1 || *rec.Drift.Features[country].MissingRate != 1 {
		t.Errorf("run record's drift %+v, want country failed (PSI > 1, missing rate 1)", rec.Drift.Features)
	}

	r = scorerProc(t, nil, args...)
	mustSucceed(t, r)
	var sum struct {
		DriftStatus string `json:"drift_status"`
		Drift       []struct {
			Feature string   `json:"feature"`
			Status  string   `json:"status"`
			PSI     *float64 `json:"psi"`
		} `json:"drift"`
		Report string `json:"report"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatalf("summary: %v\n%s", err, r.stdout)
	}
	var warned []string
	for _, d := range sum.Drift {
		if d.Status != "ok" {
			warned = append(warned, d.Feature)
		}
	}
	if sum.DriftStatus != "warn" || !slices.Equal(warned, []string{"country"}) {
		t.Errorf("summary drift %s %v, want warn on country alone", sum.DriftStatus, warned)
	}
	html, err := os.ReadFile(sum.Report)
	if err != nil {
		t.Fatalf("the summary's report: %v", err)
	}
	if !strings.Contains(string(html), `data-feature="country"`) {
		t.Errorf("the report has no drift row of country")
	}
	if err := os.Remove(sum.Report); err != nil {
		t.Fatal(err)
	}
	r = scorerProc(t, nil, "report", "--month", "2020-09", "--output", out)
	mustSucceed(t, r)
	if strings.TrimSpace(r.stdout) != sum.Report {
		t.Errorf("scorer report printed %q, want %q", r.stdout, sum.Report)
	}
	if again, err := os.ReadFile(sum.Report); err != nil || !strings.Contains(string(again), `data-feature="country"`) {
		t.Errorf("scorer report did not write the report again (%v)", err)
	}
	r = scorerProc(t, nil, "report", "--month", "2020-10", "--output", out)
	if r.code != exitBadInput || !strings.Contains(r.stderr, "has no published profile of month=2020-10") {
		t.Errorf("report of a month never scored: exit %d, want %d\n%s", r.code, exitBadInput, r.stderr)
	}
}

// lastRecord is the newest run record in the output store at out.
func lastRecord(t *testing.T, out string) runlog.Record {
	t.Helper()
	hr := scorerProc(t, nil, "history", "--output", out, "-o", "json", "--limit", "1")
	mustSucceed(t, hr)
	var recs []runlog.Record
	if err := json.Unmarshal([]byte(hr.stdout), &recs); err != nil || len(recs) != 1 {
		t.Fatalf("history -o json: %v\n%s", err, hr.stdout)
	}
	return recs[0]
}
