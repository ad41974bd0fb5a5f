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

	"github.com/adtech/scorer/internal/app"
	"github.com/adtech/scorer/internal/runlog"
)

// The champion/challenger loop end to end, on the built binary, as an
// operator runs it: train a challenger, add both bundles to a registry,
// promote the champion, backfill with the challenger beside it, evaluate,
// try to promote the (worse) challenger, force it, roll back. Every table
// is read back with DuckDB, and the metrics are recomputed here from the
// score tables and the dumps' labels.
//
// Nothing depends on timing: each step is a process that has exited before
// the next starts. The one thing that depends on training is that the wide
// challenger evaluates worse than the demo champion (AUC ~0.730 against
// ~0.738, log loss ~0.482 against ~0.474, far beyond the default gate of
// 0.002); the test checks that from its own computation before relying on it.
func TestChampionChallengerLoopEndToEnd(t *testing.T) {
	const (
		month    = "2020-09"
		champion = "2020-08.1"    // testdata/models/ctr-demo
		wide     = "2020-08.wide" // trained here
	)
	dir := t.TempDir()
	abs := func(p string) string {
		t.Helper()
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	input, demo, spec := abs(demoStore), abs(demoModel), abs("../../testdata/features.yaml")
	out, reg := filepath.Join(dir, "out"), filepath.Join(dir, "registry")
	config := func(name string, challengers ...string) string {
		t.Helper()
		body := fmt.Sprintf("input: %s\noutput: %s\nregistry: %s\nmodel: models:/ctr-demo@current\nlog:\n  format: json\n", input, out, reg)
		if len(challengers) > 0 {
			body += "challengers: [" + strings.Join(challengers, ", ") + "]\n"
		}
		p := filepath.Join(dir, name)
		writeFile(t, p, []byte(body))
		return p
	}
	withChallenger := config("challenger.yaml", "models:/ctr-demo/"+wide)
	championOnly := config("champion.yaml")
	cmd := func(cfg string, args ...string) result {
		t.Helper()
		return scorerProc(t, nil, append(args, "--config", cfg)...)
	}
	wantCode := func(t *testing.T, what string, r result, code int, msgs ...string) {
		t.Helper()
		if r.code != code {
			t.Fatalf("%s: exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", what, r.code, code, r.stdout, r.stderr)
		}
		for _, m := range msgs {
			if !strings.Contains(r.stdout+r.stderr, m) {
				t.Errorf("%s: output does not mention %q\nstdout:\n%s\nstderr:\n%s", what, m, r.stdout, r.stderr)
			}
		}
	}
	list := func() modelListingJSON {
		t.Helper()
		r := cmd(championOnly, "models", "list", "-o", "json")
		mustSucceed(t, r)
		var ls []modelListingJSON
		if err := json.Unmarshal([]byte(r.stdout), &ls); err != nil {
			t.Fatalf("models list -o json: %v\n%s", err, r.stdout)
		}
		if len(ls) != 1 || ls[0].Name != "ctr-demo" {
			t.Fatalf("models list -o json: want the one model ctr-demo, got %s", r.stdout)
		}
		return ls[0]
	}
	currentOf := func(l modelListingJSON) string {
		if l.Current == nil {
			return ""
		}
		var flagged []string
		for _, v := range l.Versions {
			if v.Current {
				flagged = append(flagged, v.Version)
			}
		}
		if len(flagged) != 1 || flagged[0] != l.Current.Version {
			t.Errorf("current alias %s, but the versions flagged current are %v", l.Current.Version, flagged)
		}
		return l.Current.Version
	}
	scoreVersions := func(tbl string) map[string]int64 {
		t.Helper()
		return countBy(t, fmt.Sprintf(`SELECT model_version, count(*) FROM read_parquet('%s/%s/*/*.parquet') GROUP BY ALL`, out, tbl))
	}
	currentJSON := filepath.Join(reg, "models", "ctr-demo", "current.json")

	// 1. A real training run of the wide challenger; both bundles into the
	// registry (adding one twice is a no-op); none current yet.
	wideDir := filepath.Join(dir, "wide")
	mustSucceed(t, scorerProc(t, nil, "train", "--month", "2020-08", "--arch", "wide", "--out", wideDir,
		"--version", wide, "--input", input, "--spec", spec, "--log-format", "json"))
	for _, b := range []string{demo, wideDir, demo} {
		wantCode(t, "models add "+b, cmd(championOnly, "models", "add", b), exitOK, "added ctr-demo")
	}
	// Versions are immutable: other weights under a taken version are refused.
	otherDir := filepath.Join(dir, "wide-seed-2")
	mustSucceed(t, scorerProc(t, nil, "train", "--month", "2020-08", "--arch", "wide", "--out", otherDir,
		"--version", wide, "--seed", "2", "--epochs", "1", "--input", input, "--spec", spec, "--log-format", "json"))
	wantCode(t, "models add of other weights under "+wide, cmd(championOnly, "models", "add", otherDir), exitUsage, "version exists")
	l := list()
	var versions []string
	for _, v := range l.Versions {
		versions = append(versions, v.Version)
	}
	slices.Sort(versions)
	if !slices.Equal(versions, []string{champion, wide}) || currentOf(l) != "" || len(l.Events) != 0 {
		t.Fatalf("after models add: versions %v, current %+v, %d events; want [%s %s], none current, no events",
			versions, l.Current, len(l.Events), champion, wide)
	}

	// 2. models:/ctr-demo@current before any promotion: a configuration
	// error that says what to do. The first promotion has no gate.
	r := cmd(withChallenger, "backfill", "--month", month)
	wantCode(t, "backfill before any promotion", r, exitUsage, "has no current version", "scorer models promote")
	if _, err := os.Stat(filepath.Join(out, "ad_scores")); !os.IsNotExist(err) {
		t.Errorf("the refused backfill made ad_scores (%v)", err)
	}
	wantCode(t, "first promote", cmd(championOnly, "models", "promote", "ctr-demo", champion, "--reason", "first", "--by", "alice"), exitOK)
	if l := list(); currentOf(l) != champion || len(l.Events) != 1 || l.Events[0].By != "alice" || l.Events[0].Reason != "first" || l.Events[0].Forced {
		t.Fatalf("after the first promote: current %+v, events %+v", l.Current, l.Events)
	}

	// 3. The champion and the challenger in one pass: ad_scores carries the
	// label column, the challengers table the challenger's scores.
	mustSucceed(t, cmd(withChallenger, "backfill", "--month", month))
	dumpRows := countDemoRows(t, month)
	if got := scoreVersions("ad_scores"); len(got) != 1 || got[champion] != dumpRows {
		t.Errorf("ad_scores model versions %v, want %s in all %d rows", got, champion, dumpRows)
	}
	if got := scoreVersions("ad_scores_challengers"); len(got) != 1 || got[wide] != 40000 || dumpRows != 40000 {
		t.Errorf("ad_scores_challengers model versions %v (dumps: %d rows), want %s in 40000 rows", got, dumpRows, wide)
	}
	dumps := fmt.Sprintf("read_csv('%s/dumps/%s/*.csv.gz', header = true)", input, month)
	var joined, differ int64
	if err := duck(t).QueryRow(fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE s.clicked::DOUBLE IS DISTINCT FROM d.clicked::DOUBLE)
		FROM read_parquet('%s/ad_scores/*/*.parquet') s JOIN %s d USING (ad_id)`, out, dumps)).Scan(&joined, &differ); err != nil {
		t.Fatal(err)
	}
	if joined != dumpRows || differ != 0 {
		t.Errorf("ad_scores joined to the dumps by ad_id: %d rows (want %d), %d with another clicked (want 0)", joined, dumpRows, differ)
	}

	// 4. evaluate: the JSON, the evaluations table and a computation of our
	// own agree.
	r = cmd(championOnly, "evaluate", "--month", month, "-o", "json")
	mustSucceed(t, r)
	var ev evaluationOut
	if err := json.Unmarshal([]byte(r.stdout), &ev); err != nil {
		t.Fatalf("evaluate -o json: %v\n%s", err, r.stdout)
	}
	if ev.Table != "ad_scores" || ev.Partition != "month="+month || ev.Unmatched != 0 {
		t.Errorf("evaluate -o json: table %q partition %q unmatched %d", ev.Table, ev.Partition, ev.Unmatched)
	}
	overall := map[string]evalRowOut{} // by version, segment_column ""
	for _, row := range ev.Rows {
		if row.SegmentColumn == "" {
			overall[row.ModelVersion] = row
		}
	}
	if len(overall) != 2 || overall[champion].Role != "champion" || overall[wide].Role != "challenger" {
		t.Fatalf("evaluate -o json: rows on all rows %+v, want %s as champion and %s as challenger", overall, champion, wide)
	}
	type metric struct{ auc, logLoss float64 }
	mine := map[string]metric{}
	for version, tbl := range map[string]string{champion: "ad_scores", wide: "ad_scores_challengers"} {
		auc, ll, n := metricsFromTables(t, fmt.Sprintf("%s/%s/*/*.parquet", out, tbl), dumps)
		mine[version] = metric{auc, ll}
		row := overall[version]
		if row.AUC == nil || row.LogLoss == nil || row.LabelledRows != n || row.ScoredRows != n {
			t.Fatalf("%s: evaluate -o json row %+v; want %d scored and labelled rows with an AUC and a log loss", version, row, n)
		}
		if math.Abs(*row.AUC-auc) > 1e-9 || math.Abs(*row.LogLoss-ll) > 1e-9 {
			t.Errorf("%s: evaluate says AUC %.12f log loss %.12f; computed from %s and the dumps: %.12f, %.12f",
				version, *row.AUC, *row.LogLoss, tbl, auc, ll)
		}
	}
	stored := storedEvaluations(t, fmt.Sprintf(`SELECT model_version, role, auc, log_loss FROM read_parquet('%s/evaluations/**/*.parquet')
		WHERE segment_column = '' AND scored_table = 'ad_scores' AND scored_partition = 'month=%s'`, out, month))
	if len(stored) != 2 {
		t.Fatalf("evaluations table: %d rows on all rows for %s, want 2: %+v", len(stored), month, stored)
	}
	for _, s := range stored {
		row, ok := overall[s.version]
		if !ok || row.Role != s.role || *row.AUC != s.auc || *row.LogLoss != s.logLoss {
			t.Errorf("evaluations table row %+v differs from the JSON output %+v", s, row)
		}
	}
	// With the dumps as the labels source instead of the label column: the
	// same metrics, every score row matched.
	r = cmd(championOnly, "evaluate", "--month", month, "--labels", "dumps/"+month, "-o", "json")
	mustSucceed(t, r)
	var evLabels evaluationOut
	if err := json.Unmarshal([]byte(r.stdout), &evLabels); err != nil {
		t.Fatalf("evaluate --labels -o json: %v\n%s", err, r.stdout)
	}
	if evLabels.LabelsSource == "" || evLabels.Unmatched != 0 {
		t.Errorf("evaluate --labels: labels source %q, %d unmatched rows", evLabels.LabelsSource, evLabels.Unmatched)
	}
	for _, row := range evLabels.Rows {
		if row.SegmentColumn != "" {
			continue
		}
		if m := mine[row.ModelVersion]; row.AUC == nil || row.LogLoss == nil || math.Abs(*row.AUC-m.auc) > 1e-9 || math.Abs(*row.LogLoss-m.logLoss) > 1e-9 {
			t.Errorf("evaluate --labels: %s %+v, want AUC %.12f log loss %.12f", row.ModelVersion, row, m.auc, m.logLoss)
		}
	}
	if mine[wide].auc >= mine[champion].auc-0.002 {
		t.Fatalf("the wide challenger's AUC %.4f is not more than 0.002 below the champion's %.4f: the rest of this test assumes it is",
			mine[wide].auc, mine[champion].auc)
	}

	// 5. The gate refuses the worse challenger (exit 6) and changes
	// nothing; --force promotes it and records that, with the evidence.
	aliasBefore, err := os.ReadFile(currentJSON)
	if err != nil {
		t.Fatal(err)
	}
	r = cmd(championOnly, "models", "promote", "ctr-demo", wide, "-o", "json")
	wantCode(t, "promote of the worse challenger", r, app.ExitRefused, "promotion refused",
		fmt.Sprintf("AUC %.4f is", mine[wide].auc), fmt.Sprintf("below the current %.4f", mine[champion].auc), "promote.max_auc_drop")
	var refused struct {
		Alias json.RawMessage `json:"alias"`
		Gate  gateJSON        `json:"gate"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &refused); err != nil {
		t.Fatalf("refused promote -o json: %v\n%s", err, r.stdout)
	}
	if string(refused.Alias) != "null" || refused.Gate.Refused == "" || refused.Gate.Forced {
		t.Errorf("refused promote -o json: %s", r.stdout)
	}
	if aliasAfter, err := os.ReadFile(currentJSON); err != nil || string(aliasAfter) != string(aliasBefore) {
		t.Errorf("the refused promote changed %s (%v):\nbefore %s\nafter %s", currentJSON, err, aliasBefore, aliasAfter)
	}
	if l := list(); currentOf(l) != champion || len(l.Events) != 1 {
		t.Fatalf("after the refused promote: current %+v, %d events; want %s and 1", l.Current, len(l.Events), champion)
	}
	wantCode(t, "forced promote", cmd(championOnly, "models", "promote", "ctr-demo", wide, "--force", "--reason", "hotfix"), exitOK, "(forced)")
	l = list()
	if currentOf(l) != wide || l.Current.Previous != champion || !l.Current.Forced || len(l.Events) != 2 {
		t.Fatalf("after the forced promote: current %+v, %d events", l.Current, len(l.Events))
	}
	e := l.Events[1]
	if e.Seq != 2 || e.Action != "promote" || e.From != champion || e.To != wide || !e.Forced || e.Reason != "hotfix" || e.By == "" {
		t.Errorf("forced promote event: %+v", e)
	}
	var evidence gateJSON
	if err := json.Unmarshal(e.Evidence, &evidence); err != nil {
		t.Fatalf("forced promote evidence: %v\n%s", err, e.Evidence)
	}
	if c, k := evidence.Current, evidence.Candidate; c == nil || k == nil || !evidence.Forced || evidence.Refused == "" ||
		evidence.Table != "ad_scores" || evidence.Partition != "month="+month ||
		c.ModelVersion != champion || k.ModelVersion != wide ||
		c.AUC == nil || k.AUC == nil || c.LogLoss == nil || k.LogLoss == nil ||
		*c.AUC != *overall[champion].AUC || *k.AUC != *overall[wide].AUC ||
		*c.LogLoss != *overall[champion].LogLoss || *k.LogLoss != *overall[wide].LogLoss {
		t.Errorf("forced promote evidence does not hold the two evaluations: %s", e.Evidence)
	}
	for _, v := range l.Versions {
		if ev := v.Evaluation; ev == nil || ev.AUC == nil || *ev.AUC != *overall[v.Version].AUC {
			t.Errorf("models list: version %s's latest evaluation %+v, want AUC %v", v.Version, ev, *overall[v.Version].AUC)
		}
	}

	// 6. The next run loads the new current version when it starts.
	// The configuration still lists the promoted version as a challenger:
	// it is the champion now, so the run skips it (with a warning) instead
	// of failing every scheduled run until someone edits the config.
	r = cmd(withChallenger, "backfill", "--month", month)
	mustSucceed(t, r)
	if !strings.Contains(r.stderr, "challenger skipped") {
		t.Errorf("backfill with the new champion also a challenger: no warning in\n%s", r.stderr)
	}
	if got := scoreVersions("ad_scores"); len(got) != 1 || got[wide] != dumpRows {
		t.Errorf("after the forced promote, ad_scores model versions %v, want %s in all %d rows", got, wide, dumpRows)
	}
	if got := scoreVersions("ad_scores_challengers"); len(got) != 0 {
		t.Errorf("the skipped challenger still scored: ad_scores_challengers has %v", got)
	}
	mustSucceed(t, cmd(championOnly, "backfill", "--month", month))
	if got := scoreVersions("ad_scores"); len(got) != 1 || got[wide] != dumpRows {
		t.Errorf("after the forced promote, ad_scores model versions %v, want %s in all %d rows", got, wide, dumpRows)
	}
	// The partition is replaced whole: no challenger scores of an older run
	// stay beside the new champion's.
	if got := scoreVersions("ad_scores_challengers"); len(got) != 0 {
		t.Errorf("a backfill without challengers left ad_scores_challengers with %v", got)
	}
	var ids []string
	for id := range countBy(t, fmt.Sprintf(`SELECT run_id, count(*) FROM read_parquet('%s/ad_scores/*/*.parquet') GROUP BY ALL`, out)) {
		ids = append(ids, id)
	}
	if len(ids) != 1 {
		t.Fatalf("ad_scores holds runs %v, want one", ids)
	}
	hr := scorerProc(t, nil, "history", "--output", out, "-o", "json", "--limit", "0")
	mustSucceed(t, hr)
	var recs []runlog.Record
	if err := json.Unmarshal([]byte(hr.stdout), &recs); err != nil {
		t.Fatalf("history -o json: %v\n%s", err, hr.stdout)
	}
	i := slices.IndexFunc(recs, func(r runlog.Record) bool { return r.RunID == ids[0] })
	if i < 0 {
		t.Fatalf("history -o json has no record of run %s:\n%s", ids[0], hr.stdout)
	}
	if rec := recs[i]; rec.Outcome != runlog.Succeeded || rec.Model == nil || rec.Model.Name != "ctr-demo" || rec.Model.Version != wide ||
		rec.Job != "backfill.month="+month || rec.RowsScored != dumpRows {
		t.Errorf("run record of %s: %+v, want a succeeded backfill of ctr-demo %s", ids[0], rec, wide)
	}

	// 7. Rollback returns to the version current before; the next run uses
	// it. Rolling back again returns to the forced version: by design a
	// rollback swaps the alias with its Previous, and the version rolled back
	// from becomes Previous (scoring/registry/doc.go, "Rollback twice
	// returns to where it started"); it is no walk back through the log.
	wantCode(t, "rollback", cmd(championOnly, "models", "rollback", "ctr-demo", "--reason", "bad"), exitOK, "current is now "+champion)
	l = list()
	if currentOf(l) != champion || l.Current.Previous != wide || len(l.Events) != 3 {
		t.Fatalf("after the rollback: current %+v, %d events", l.Current, len(l.Events))
	}
	if e := l.Events[2]; e.Seq != 3 || e.Action != "rollback" || e.From != wide || e.To != champion || e.Reason != "bad" || e.Forced {
		t.Errorf("rollback event: %+v", e)
	}
	mustSucceed(t, cmd(championOnly, "backfill", "--month", month))
	if got := scoreVersions("ad_scores"); len(got) != 1 || got[champion] != dumpRows {
		t.Errorf("after the rollback, ad_scores model versions %v, want %s in all %d rows", got, champion, dumpRows)
	}
	wantCode(t, "second rollback", cmd(championOnly, "models", "rollback", "ctr-demo"), exitOK, "current is now "+wide)
	l = list()
	if currentOf(l) != wide || l.Current.Previous != champion || len(l.Events) != 4 {
		t.Fatalf("after the second rollback: current %+v, %d events", l.Current, len(l.Events))
	}
	for i, e := range l.Events {
		if e.Seq != i+1 {
			t.Errorf("event %d has seq %d: the log has gaps or is out of order", i, e.Seq)
		}
	}

	// 8. Errors.
	aliasBefore, err = os.ReadFile(currentJSON)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("promote an unknown version", func(t *testing.T) {
		r := scorerProc(t, nil, "models", "promote", "ctr-demo", "no-such-version", "--force", "--config", championOnly)
		wantCode(t, "promote --force of an unknown version", r, exitUsage, `has no version \"no-such-version\"`)
		r = scorerProc(t, nil, "models", "promote", "ctr-demo", "no-such-version", "--config", championOnly)
		wantCode(t, "promote of an unknown version", r, exitUsage, `has no version \"no-such-version\"`)
	})
	if aliasAfter, err := os.ReadFile(currentJSON); err != nil || string(aliasAfter) != string(aliasBefore) {
		t.Errorf("the failed promotes changed %s (%v)", currentJSON, err)
	}
	// A month never scored: its score table partition is not published,
	// which evaluate reports as bad input (3), like a backfill of a month
	// without dumps.
	wantCode(t, "evaluate of a month never scored", cmd(championOnly, "evaluate", "--month", "2020-10"), exitBadInput, "ad_scores/month=2020-10 is not published")
	wantCode(t, "evaluate --month --date", cmd(championOnly, "evaluate", "--month", month, "--date", "2020-09-02"), exitUsage, "one of --month")
	wantCode(t, "evaluate without a partition", cmd(championOnly, "evaluate"), exitUsage, "one of --month")
}

// modelListingJSON is one model of scorer models list -o json, as a user
// reads it (field names matched case-insensitively, as encoding/json does).
type modelListingJSON struct {
	Name    string `json:"name"`
	Current *struct {
		Version  string `json:"version"`
		Previous string `json:"previous"`
		Forced   bool   `json:"forced"`
	} `json:"current"`
	Versions []struct {
		Version    string       `json:"version"`
		Current    bool         `json:"current"`
		Evaluation *evalSummary `json:"evaluation"`
	} `json:"versions"`
	Events []struct {
		Seq      int             `json:"seq"`
		Action   string          `json:"action"`
		From     string          `json:"from"`
		To       string          `json:"to"`
		By       string          `json:"by"`
		Reason   string          `json:"reason"`
		Forced   bool            `json:"forced"`
		Evidence json.RawMessage `json:"evidence"`
	} `json:"events"`
}

type evalSummary struct {
	ModelVersion string   `json:"model_version"`
	Role         string   `json:"role"`
	AUC          *float64 `json:"auc"`
	LogLoss      *float64 `json:"log_loss"`
}

// gateJSON is what the evaluation gate compared, in promote -o json and in
// a promotion event's evidence.
type gateJSON struct {
	Table     string       `json:"scored_table"`
	Partition string       `json:"scored_partition"`
	Current   *evalSummary `json:"current"`
	Candidate *evalSummary `json:"candidate"`
	Refused   string       `json:"refused"`
	Forced    bool         `json:"forced"`
}

// evaluationOut is scorer evaluate -o json.
type evaluationOut struct {
	Table        string       `json:"table"`
	Partition    string       `json:"partition"`
	LabelsSource string       `json:"labels_source"`
	Unmatched    int64        `json:"unmatched_rows"`
	Rows         []evalRowOut `json:"rows"`
}

type evalRowOut struct {
	ModelVersion  string   `json:"model_version"`
	Role          string   `json:"role"`
	SegmentColumn string   `json:"segment_column"`
	ScoredRows    int64    `json:"scored_rows"`
	LabelledRows  int64    `json:"labelled_rows"`
	AUC           *float64 `json:"auc"`
	LogLoss       *float64 `json:"log_loss"`
}

// countBy runs a query of (string, count) rows into a map.
func countBy(t *testing.T, q string) map[string]int64 {
	t.Helper()
	rows, err := duck(t).Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer closeRows(t, rows)
	m := map[string]int64{}
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		m[k] = n
	}
	return m
}

type storedEval struct {
	version, role string
	auc, logLoss  float64
}

func storedEvaluations(t *testing.T, q string) []storedEval {
	t.Helper()
	rows, err := duck(t).Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer closeRows(t, rows)
	var out []storedEval
	for rows.Next() {
		var s storedEval
		if err := rows.Scan(&s.version, &s.role, &s.auc, &s.logLoss); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// metricsFromTables computes, independently of scorer, the AUC (the
// Mann-Whitney statistic, ties counted half) and the log loss (scores
// clipped to [1e-7, 1-1e-7]) of the scores in the Parquet files matching
// glob against the clicked column of the dumps, joined by ad_id. n is the
// number of rows joined.
func metricsFromTables(t *testing.T, glob, dumps string) (auc, logLoss float64, n int64) {
	t.Helper()
	rows, err := duck(t).Query(fmt.Sprintf(`SELECT s.score::DOUBLE, d.clicked::INTEGER
		FROM read_parquet('%s') s JOIN %s d USING (ad_id) ORDER BY 1`, glob, dumps))
	if err != nil {
		t.Fatal(err)
	}
	defer closeRows(t, rows)
	type row struct {
		score float64
		y     int
	}
	var rs []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.score, &r.y); err != nil {
			t.Fatal(err)
		}
		if r.y != 0 && r.y != 1 {
			t.Fatalf("label %d is not 0 or 1", r.y)
		}
		rs = append(rs, r)
	}
	var pos, neg, sumLL float64
	var u float64 // Σ over clicks of the non-clicks scored lower, ties half
	for i := 0; i < len(rs); {
		j := i
		var p, q float64
		for ; j < len(rs) && rs[j].score == rs[i].score; j++ {
			if rs[j].y == 1 {
				p++
			} else {
				q++
			}
		}
		u += p * (neg + q/2)
		pos, neg = pos+p, neg+q
		i = j
	}
	for _, r := range rs {
		c := min(max(r.score, 1e-7), 1-1e-7)
		if r.y == 1 {
			sumLL -= math.Log(c)
		} else {
			sumLL -= math.Log(1 - c)
		}
	}
	if pos == 0 || neg == 0 {
		t.Fatalf("%s: %g clicks and %g non-clicks: no AUC", glob, pos, neg)
	}
	return u / (pos * neg), sumLL / float64(len(rs)), int64(len(rs))
}
