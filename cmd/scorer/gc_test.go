package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adtech/scorer/internal/app"
)

// scorer gc on a store a queue run used, with a run record from long ago
// and the staging of a run that died a month ago: --dry-run -o json lists
// them and deletes nothing, gc deletes them and keeps the rest.
func TestGCCommand(t *testing.T) {
	out := t.TempDir()
	mustSucceed(t, scorerProc(t, nil, append([]string{"run", "--date", "2020-09-02"}, demoArgs(out)...)...))
	write := func(key, body string, age time.Duration) string {
		p := filepath.Join(out, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old := time.Now().Add(-200 * 24 * time.Hour).UTC().Format(time.RFC3339)
	record := write("_scorer/runs/queue/20200101T000000Z-0ld.json",
		`{"format_version": 1, "run_id": "20200101T000000Z-0ld", "job": "queue", "kind": "queue", "outcome": "succeeded", "started_at": "`+old+`"}`, 0)
	marker := write("_scorer/staging/20200101T000000Z-dead/_run.json", `{"run_id":"20200101T000000Z-dead","job":"queue"}`, 30*24*time.Hour)
	part := write("_scorer/staging/20200101T000000Z-dead/request_scores/date=2020-09-02/part-20200101T000000Z-dead-00000.parquet", "PAR1", 30*24*time.Hour)
	args := []string{"gc", "--output", out, "--input", demoStore, "--log-format", "json"}

	r := scorerProc(t, nil, append(args, "--dry-run", "-o", "json")...)
	mustSucceed(t, r)
	var rep app.GCReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if !rep.DryRun || rep.RunRecords.Count != 1 || rep.RunRecords.Keys[0] != "_scorer/runs/queue/20200101T000000Z-0ld.json" ||
		rep.Staging.Count != 1 || rep.Staging.Objects != 2 || rep.Archive.Days != 0 || rep.Queue.Days != 0 {
		t.Errorf("dry run report:\n%s", r.stdout)
	}
	for _, p := range []string{record, marker, part} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("the dry run deleted %s: %v", p, err)
		}
	}

	r = scorerProc(t, nil, args...)
	mustSucceed(t, r)
	for _, want := range []string{"run records       1 deleted", "staging           1 deleted (2 objects)", "archived commits  kept forever"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("gc output lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, p := range []string{record, marker, part} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s not deleted: %v", p, err)
		}
	}
	// The run's own record stays: history still shows it.
	h := scorerProc(t, nil, "history", "--output", out, "-o", "json")
	mustSucceed(t, h)
	if strings.Count(h.stdout, `"run_id"`) != 1 {
		t.Errorf("history after gc:\n%s", h.stdout)
	}

	bad := scorerProc(t, map[string]string{"SCORER_RETENTION_STAGING_DAYS": "-1"}, args...)
	if bad.code != exitUsage || !strings.Contains(bad.stderr, "retention.staging_days") {
		t.Errorf("a negative retention: exit %d\n%s", bad.code, bad.stderr)
	}
}
