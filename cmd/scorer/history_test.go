package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/adtech/scorer/internal/runlog"
)

// withoutRunRecords leaves the run records out of a list of object names:
// a run that fails or is refused writes nothing else, but records itself.
func withoutRunRecords(names []string) []string {
	var out []string
	for _, n := range names {
		if !strings.HasPrefix(n, runlog.Prefix) {
			out = append(out, n)
		}
	}
	return out
}

// historyJSON runs scorer history --json on an output store.
func historyJSON(t *testing.T, out string, extra ...string) []runlog.Record {
	t.Helper()
	r := scorer(t, nil, append([]string{"history", "--output", out, "--json"}, extra...)...)
	mustSucceed(t, r)
	var recs []runlog.Record
	if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil {
		t.Fatalf("history --json: %v\n%s", err, r.stdout)
	}
	return recs
}

// Manual runs are recorded, whatever their outcome: a success, a run with
// nothing to do, bad input, and a run refused because the job's lease is
// held (by a run stopped in the middle).
func TestManualRunsAreRecorded(t *testing.T) {
	out := t.TempDir()
	if r := scorer(t, nil, "history", "--output", out); r.code != 0 || !strings.Contains(r.stdout, "no runs recorded") {
		t.Fatalf("history of an empty store: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mustSucceed(t, scorer(t, nil, append([]string{"run", "--date", "2020-09-02", "--batch-size", "1000"}, demoArgs(out)...)...))
	mustSucceed(t, scorer(t, nil, append([]string{"run", "--date", "2020-09-02"}, demoArgs(out)...)...))
	if r := scorer(t, nil, append([]string{"backfill", "--month", "2020-07"}, demoArgs(out)...)...); r.code != exitBadInput {
		t.Fatalf("backfill of a month without dumps: exit %d", r.code)
	}
	args := append([]string{"backfill", "--month", "2020-09", "--batch-size", "1000"}, demoArgs(out)...)
	startStopped(t, "score.batch:2", nil, args...)
	if r := scorerProc(t, nil, args...); r.code != exitBusy {
		t.Fatalf("second backfill: exit %d, want %d", r.code, exitBusy)
	}

	recs := historyJSON(t, out)
	type row struct {
		job     string
		outcome runlog.Outcome
		code    int
	}
	want := []row{ // newest first
		{"backfill.month=2020-09", runlog.Busy, exitBusy},
		{"backfill.month=2020-09", runlog.Running, 0}, // the stopped one
		{"backfill.month=2020-07", runlog.BadInput, exitBadInput},
		{"queue", runlog.NothingToDo, 0},
		{"queue", runlog.Succeeded, 0},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d: %+v", len(recs), len(want), recs)
	}
	for i, w := range want {
		r := recs[i]
		if r.Job != w.job || r.Outcome != w.outcome || r.ExitCode != w.code || r.Trigger != runlog.Manual {
			t.Errorf("record %d: %s %s exit %d (%s), want %s %s exit %d (manual)", i, r.Job, r.Outcome, r.ExitCode, r.Trigger, w.job, w.outcome, w.code)
		}
	}
	ok := recs[4]
	if ok.RowsScored != 4000 || ok.RowsRead != 4000 || len(ok.InputFiles) != 2 || ok.InputBytes == 0 ||
		len(ok.OutputFiles) == 0 || ok.OutputBytes == 0 || ok.Model.String() != "ctr-demo 2020-08.1" || ok.Partition != "date=2020-09-02" {
		t.Errorf("record of the queue run: %+v", ok)
	}
	if rep := ok.Report; rep == nil || rep.RowsPerSecond <= 0 || rep.Scores == nil || rep.Scores.Count != 4000 ||
		rep.Scores.Quantiles.P01 > rep.Scores.Quantiles.P50 || rep.Scores.Quantiles.P50 > rep.Scores.Quantiles.P99 ||
		rep.Scores.Min <= 0 || rep.Scores.Max >= 1 {
		t.Errorf("report of the queue run: %+v", ok.Report)
	}
	if ops := ok.StoreOps; ops == nil || ops.Input.Read != 2 || ops.Input.ReadBytes != ok.InputBytes || ops.Output.Write == 0 {
		t.Errorf("store ops of the queue run: %+v", ok.StoreOps)
	}
	if !strings.Contains(recs[2].Error, "no input files") {
		t.Errorf("bad input record's error: %q", recs[2].Error)
	}

	// The table, filtered, and one run in full.
	r := scorer(t, nil, "history", "--output", out, "--job", "queue")
	mustSucceed(t, r)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "OUTCOME") || !strings.Contains(lines[1], "nothing_to_do") || !strings.Contains(lines[2], "succeeded") {
		t.Errorf("history --job queue:\n%s", r.stdout)
	}
	r = scorer(t, nil, "history", "--output", out, "--run", ok.RunID)
	mustSucceed(t, r)
	for _, s := range []string{
		"rows scored +4000\n", "quantiles +p01 0\\.", "histogram\n", "queue/requests-2020-09-02T00\\.jsonl",
		"input ops +1 list \\(2 objects\\), 0 stat, 2 read \\(", "output ops +[0-9]+ list .* [1-9][0-9]* write",
	} {
		if !regexp.MustCompile(s).MatchString(r.stdout) {
			t.Errorf("history --run lacks %q:\n%s", s, r.stdout)
		}
	}
	if r := scorer(t, nil, "history", "--output", out, "--run", "nope"); r.code != exitUsage {
		t.Errorf("history --run of an unknown run: exit %d", r.code)
	}
}
