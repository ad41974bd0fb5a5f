package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/adtech/scorer/internal/app"
)

// The exit codes, as the tests name them.
const (
	exitOK       = app.ExitOK
	exitRetry    = app.ExitRetry
	exitUsage    = app.ExitUsage
	exitBadInput = app.ExitBadInput
	exitBusy     = app.ExitBusy
	exitAborted  = app.ExitAborted
)

const (
	demoStore = "../../testdata/store"
	demoModel = "../../testdata/models/ctr-demo"
)

// scorerBin is the scorer binary built once, with -tags failpoints, for the
// tests that need a real process (crash tests kill it).
var scorerBin string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "scorer-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer func() { _ = os.RemoveAll(dir) }() // a temporary folder: nothing to do if it stays
		scorerBin = filepath.Join(dir, "scorer")
		// With failpoints: the crash tests kill it at named points
		// (SCORER_FAILPOINT); without that variable it runs as released.
		cmd := exec.Command("go", "build", "-tags", "failpoints", "-o", scorerBin, ".")
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build scorer:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// scorer runs a command line in-process with the given environment; stdin
// and stderr are not terminals.
func scorer(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	return scorerWith(t, &environment{}, env, args...)
}

// scorerWith is scorer with an environment to start from (terminals,
// stdin); its outputs and variables are set here.
func scorerWith(t *testing.T, e *environment, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e.stdout, e.stderr = &stdout, &stderr
	e.getenv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code := run(context.Background(), e, args)
	return result{code, stdout.String(), stderr.String()}
}

// scorerProc runs the built scorer binary, as a user or a scheduler would.
func scorerProc(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	cmd := exec.Command(scorerBin, args...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run %s: %v", scorerBin, err)
	}
	return result{cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()}
}

// demoArgs point a command at the demo data and a fresh output store.
func demoArgs(out string, extra ...string) []string {
	return append([]string{"--input", demoStore, "--model", demoModel, "--output", out, "--log-format", "json"}, extra...)
}

func mustSucceed(t *testing.T, r result) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

// duck opens an in-memory DuckDB.
func duck(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

// tableStats reads a table as an analyst would: every Parquet file under
// the table folder with hive partitioning.
type tableStats struct {
	rows, distinctIDs             int64
	minScore, maxScore            float64
	models, versions, runs, parts int64
	partition                     string
}

func readTable(t *testing.T, dir, idCol, partCol string) tableStats {
	t.Helper()
	var s tableStats
	q := fmt.Sprintf(`SELECT count(*), count(DISTINCT %[1]s), min(score), max(score),
		count(DISTINCT model_name), count(DISTINCT model_version), count(DISTINCT run_id),
		count(DISTINCT %[2]s), min(%[2]s)::VARCHAR
		FROM read_parquet('%[3]s/*/*.parquet', hive_partitioning = true)`, idCol, partCol, dir)
	if err := duck(t).QueryRow(q).Scan(&s.rows, &s.distinctIDs, &s.minScore, &s.maxScore,
		&s.models, &s.versions, &s.runs, &s.parts, &s.partition); err != nil {
		t.Fatalf("query %s: %v", dir, err)
	}
	return s
}

// closeRows closes a query's rows and fails the test on an error of the
// query or the close.
func closeRows(t *testing.T, rows *sql.Rows) {
	t.Helper()
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		t.Error(err)
	}
}

// countCSVRows counts the data rows of the demo month, independently of
// scorer's readers.
func countDemoRows(t *testing.T, month string) int64 {
	t.Helper()
	var n int64
	if err := duck(t).QueryRow(fmt.Sprintf(`SELECT count(*) FROM read_csv('%s/dumps/%s/*.csv.gz', header = true)`, demoStore, month)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestBackfillAndQueueEndToEnd(t *testing.T) {
	out := t.TempDir()
	mustSucceed(t, scorerProc(t, nil, append([]string{"backfill", "--month", "2020-09"}, demoArgs(out)...)...))

	want := countDemoRows(t, "2020-09")
	s := readTable(t, filepath.Join(out, "ad_scores"), "ad_id", "month")
	if s.rows != want || s.distinctIDs != want {
		t.Errorf("ad_scores: %d rows, %d distinct ids; want %d of each", s.rows, s.distinctIDs, want)
	}
	if s.minScore <= 0 || s.maxScore >= 1 {
		t.Errorf("scores span [%g, %g], want inside (0, 1)", s.minScore, s.maxScore)
	}
	if s.models != 1 || s.versions != 1 || s.runs != 1 || s.parts != 1 || s.partition != "2020-09" {
		t.Errorf("ad_scores: %+v; want one model, version, run and partition 2020-09", s)
	}
	var name, version string
	if err := duck(t).QueryRow(fmt.Sprintf(`SELECT any_value(model_name), any_value(model_version)
		FROM read_parquet('%s/ad_scores/*/*.parquet')`, out)).Scan(&name, &version); err != nil {
		t.Fatal(err)
	}
	if name != "ctr-demo" || version != "2020-08.1" {
		t.Errorf("model recorded as %s %s, want ctr-demo 2020-08.1", name, version)
	}

	// The queue: every request once, and once only across reruns.
	for i := range 2 {
		r := scorerProc(t, nil, append([]string{"run", "--date", "2020-09-02"}, demoArgs(out)...)...)
		mustSucceed(t, r)
		if i == 1 && !strings.Contains(r.stdout, "nothing to score") {
			t.Errorf("second run scored again:\n%s", r.stdout)
		}
	}
	var queued int64
	if err := duck(t).QueryRow(fmt.Sprintf(`SELECT count(*) FROM read_json('%s/queue/*.jsonl')`, demoStore)).Scan(&queued); err != nil {
		t.Fatal(err)
	}
	q := readTable(t, filepath.Join(out, "request_scores"), "request_id", "date")
	if q.rows != queued || q.distinctIDs != queued || q.partition != "2020-09-02" || q.runs != 1 {
		t.Errorf("request_scores: %+v; want %d rows and ids, one run, date 2020-09-02", q, queued)
	}
}

func TestScoresDoNotDependOnWorkersOrBatchSize(t *testing.T) {
	if testing.Short() {
		t.Skip("scores the demo month three times")
	}
	type cfg struct{ workers, batch string }
	var ref map[string]float64
	for _, c := range []cfg{{"1", "4096"}, {"2", "100"}, {fmt.Sprint(runtime.NumCPU() + 1), "777"}} {
		out := t.TempDir()
		mustSucceed(t, scorer(t, nil, append([]string{"backfill", "--month", "2020-09", "--workers", c.workers, "--batch-size", c.batch}, demoArgs(out)...)...))
		rows, err := duck(t).Query(fmt.Sprintf(`SELECT ad_id, score FROM read_parquet('%s/ad_scores/*/*.parquet')`, out))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for rows.Next() {
			var id string
			var score float64
			if err := rows.Scan(&id, &score); err != nil {
				t.Fatal(err)
			}
			got[id] = score
		}
		closeRows(t, rows)
		if ref == nil {
			ref = got
			continue
		}
		if len(got) != len(ref) {
			t.Fatalf("workers=%s batch=%s: %d rows, want %d", c.workers, c.batch, len(got), len(ref))
		}
		for id, s := range ref {
			if d := got[id] - s; d > 1e-6 || d < -1e-6 {
				t.Fatalf("workers=%s batch=%s: %s scored %g, want %g", c.workers, c.batch, id, got[id], s)
			}
		}
	}
}

func TestUsageAndConfigErrors(t *testing.T) {
	dir := t.TempDir()
	badKey := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badKey, []byte("ouput: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		msg  string
	}{
		{"no command", nil, nil, exitUsage, "Usage"},
		{"unknown command", nil, []string{"frobnicate"}, exitUsage, `unknown command \"frobnicate\"`}, // JSON logs: stderr is no terminal
		{"unknown flag", nil, []string{"backfill", "--mnth", "2020-09"}, exitUsage, "mnth"},
		{"missing month", nil, []string{"backfill"}, exitUsage, "--month is required"},
		{"bad month", nil, []string{"backfill", "--month", "2020-13"}, exitUsage, "want YYYY-MM"},
		{"unknown config key", nil, []string{"backfill", "--month", "2020-09", "--config", badKey}, exitUsage, "ouput"},
		{"bad env value", map[string]string{"SCORER_WORKERS": "many"}, []string{"validate"}, exitUsage, "SCORER_WORKERS"},
		{"invalid value", map[string]string{"SCORER_MAX_BAD_ROWS": "-3"}, []string{"validate"}, exitUsage, "max_bad_rows"},
		{"missing model", nil, []string{"backfill", "--month", "2020-09", "--input", demoStore, "--output", dir, "--model", filepath.Join(dir, "nope")}, exitUsage, "load model bundle"},
		{"help", nil, []string{"backfill", "--help"}, exitOK, "scorer backfill --month YYYY-MM [flags]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := scorer(t, tt.env, tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit code %d, want %d\nstdout:%s\nstderr:%s", r.code, tt.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout+r.stderr, tt.msg) {
				t.Fatalf("output does not mention %q:\nstdout:%s\nstderr:%s", tt.msg, r.stdout, r.stderr)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	r := scorer(t, nil, "validate", "--input", demoStore, "--model", demoModel, "--output", t.TempDir())
	mustSucceed(t, r)
	for _, want := range []string{"config: ok", "ctr-demo 2020-08.1", "compiles", "stores: ok"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("validate output lacks %q:\n%s", want, r.stdout)
		}
	}
}
