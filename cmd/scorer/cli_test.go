package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestTypoSuggestsCommand(t *testing.T) {
	r := scorer(t, nil, "backfil", "--log-format", "text")
	if r.code != exitUsage || !strings.Contains(r.stderr, "Did you mean this?\n\tbackfill") {
		t.Fatalf("exit %d, want %d suggesting backfill:\n%s", r.code, exitUsage, r.stderr)
	}
}

// A flag error is one line and a hint, not the whole usage.
func TestUnknownFlagIsOneLine(t *testing.T) {
	r := scorer(t, nil, "backfill", "--monht", "2020-09", "--log-format", "text")
	want := "Error: unknown flag: --monht\nRun 'scorer backfill --help' for usage.\n"
	if r.code != exitUsage || r.stderr != want || r.stdout != "" {
		t.Fatalf("exit %d, stderr:\n%q\nwant %d and\n%q (stdout %q)", r.code, r.stderr, exitUsage, want, r.stdout)
	}
}

func TestVersion(t *testing.T) {
	a, b := scorer(t, nil, "--version"), scorer(t, nil, "version")
	mustSucceed(t, a)
	mustSucceed(t, b)
	if !strings.HasPrefix(a.stdout, "scorer ") || a.stdout != b.stdout || strings.Count(a.stdout, "\n") != 1 {
		t.Fatalf("--version %q, version %q: want the same one line", a.stdout, b.stdout)
	}
}

func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{"bash": "__start_scorer", "zsh": "#compdef scorer", "fish": "complete -c scorer"} {
		r := scorer(t, nil, "completion", shell)
		mustSucceed(t, r)
		if !strings.Contains(r.stdout, want) {
			t.Errorf("completion %s: no %q in\n%.300s", shell, want, r.stdout)
		}
	}
}

// With JSON logs asked for (in the file, the environment or a flag, even on
// a terminal), errors in the configuration and the command line are logged
// as JSON: every line of stderr is a JSON object.
func TestJSONLogsFromTheFirstLine(t *testing.T) {
	dir := t.TempDir()
	badKey := filepath.Join(dir, "bad.yaml")
	writeFile(t, badKey, []byte("log: {format: json}\nouput: x\n"))
	badValue := filepath.Join(dir, "badvalue.yaml")
	writeFile(t, badValue, []byte("log: {format: json}\nbatch_size: -1\n"))
	tests := []struct {
		name string
		env  map[string]string
		args []string
		msg  string
	}{
		{"unknown key, format in the file", nil, []string{"validate", "--config", badKey}, "ouput"},
		{"invalid value, format in the file", nil, []string{"validate", "--config", badValue}, "batch_size"},
		{"bad environment", map[string]string{"SCORER_LOG_FORMAT": "json", "SCORER_WORKERS": "many"}, []string{"validate"}, "SCORER_WORKERS"},
		{"unknown flag", nil, []string{"backfill", "--log-format", "json", "--monht", "2020-09"}, "unknown flag: --monht"},
		{"unknown command", map[string]string{"SCORER_LOG_FORMAT": "json"}, []string{"backfil"}, "backfill"},
		{"missing month", nil, []string{"backfill", "--log-format=json"}, "--month is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := scorerWith(t, &environment{isTerminal: true}, tt.env, tt.args...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want %d:\n%s", r.code, exitUsage, r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			for _, l := range lines {
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("not a JSON line: %q (%v)", l, err)
				}
				if m["level"] != "ERROR" || m["exit_code"] != float64(exitUsage) {
					t.Errorf("log line %v: want level ERROR and exit_code 2", m)
				}
			}
			if !strings.Contains(r.stderr, tt.msg) {
				t.Errorf("no %q in %s", tt.msg, r.stderr)
			}
		})
	}
}

// A flag given overrides the environment; a flag not given (whatever its
// default) does not hide it.
func TestFlagOverEnvironment(t *testing.T) {
	env := map[string]string{"SCORER_BATCH_SIZE": "0"} // invalid
	base := []string{"validate", "--input", demoStore, "--model", demoModel, "--output", t.TempDir()}
	if r := scorer(t, env, base...); r.code != exitUsage || !strings.Contains(r.stderr, "batch_size") {
		t.Fatalf("the environment's batch size was hidden: exit %d\n%s", r.code, r.stderr)
	}
	mustSucceed(t, scorer(t, env, append(base, "--batch-size", "100")...))
}

// treeHash is every file under dir with its bytes.
func treeHash(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			out[rel+"/"] = "dir"
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		out[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A dry run reads and prints, and writes nothing: the output store is
// byte-identical afterwards. It names what a run would read, skip (the
// queue's ledger) and replace.
func TestDryRunTouchesNothing(t *testing.T) {
	out := t.TempDir()
	mustSucceed(t, scorer(t, nil, append([]string{"run", "--date", "2020-09-02"}, demoArgs(out)...)...))
	before := treeHash(t, out)

	r := scorer(t, nil, append([]string{"backfill", "--month", "2020-09", "--dry-run"}, demoArgs(out)...)...)
	mustSucceed(t, r)
	for _, want := range []string{"would read 2 file(s)", "dumps/2020-09/", "would replace partition", "month=2020-09"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("backfill --dry-run: no %q in\n%s", want, r.stdout)
		}
	}
	r = scorer(t, nil, append([]string{"run", "--date", "2020-09-03", "--dry-run"}, demoArgs(out)...)...)
	mustSucceed(t, r)
	for _, want := range []string{"would read 0 file(s)", "already scored", "queue/", "nothing to score"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("run --dry-run: no %q in\n%s", want, r.stdout)
		}
	}
	r = scorer(t, nil, append([]string{"run", "--dry-run", "-o", "json"}, demoArgs(out)...)...)
	mustSucceed(t, r)
	var plan struct {
		DryRun        bool `json:"dry_run"`
		Read          []struct{ URI string }
		AlreadyScored []struct{ URI string } `json:"already_scored"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil || !plan.DryRun || len(plan.Read) != 0 || len(plan.AlreadyScored) == 0 {
		t.Errorf("run --dry-run -o json: %+v (%v)\n%s", plan, err, r.stdout)
	}

	after := treeHash(t, out)
	if len(after) != len(before) {
		t.Fatalf("a dry run changed the output store: %d entries, was %d", len(after), len(before))
	}
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("a dry run changed %s", k)
		}
	}
	// A dry run of a fresh store creates nothing, not even the folder.
	fresh := filepath.Join(t.TempDir(), "fresh")
	mustSucceed(t, scorer(t, nil, append([]string{"backfill", "--month", "2020-09", "--dry-run"}, demoArgs(fresh)...)...))
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("a dry run created %s (%v)", fresh, err)
	}
}

// -o json prints the summary as one JSON object with the run's counts.
func TestSummaryJSON(t *testing.T) {
	out := t.TempDir()
	r := scorer(t, nil, append([]string{"backfill", "--month", "2020-09", "-o", "json"}, demoArgs(out)...)...)
	mustSucceed(t, r)
	var s summary
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("-o json: %v\n%s", err, r.stdout)
	}
	want := countDemoRows(t, "2020-09")
	if s.RowsScored != want || s.RowsIn != want || s.RowsRejected != 0 || len(s.InputFiles) != 2 ||
		len(s.OutputFiles) == 0 || s.Partition != "month=2020-09" || s.ModelName != "ctr-demo" || s.NothingToDo {
		t.Errorf("summary %+v: want %d rows scored from 2 files", s, want)
	}
	recs := historyJSON(t, out)
	if len(recs) != 1 || recs[0].RunID != s.RunID || recs[0].RowsScored != s.RowsScored {
		t.Errorf("the summary's run %s is not the recorded one: %+v", s.RunID, recs)
	}
	// The queue run with nothing to do says so.
	mustSucceed(t, scorer(t, nil, append([]string{"run", "--date", "2020-09-02"}, demoArgs(out)...)...))
	r = scorer(t, nil, append([]string{"run", "--date", "2020-09-02", "--format=json"}, demoArgs(out)...)...)
	mustSucceed(t, r)
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || !s.NothingToDo || s.RowsScored != 0 {
		t.Errorf("empty queue: %+v (%v)", s, err)
	}
	if r := scorer(t, nil, "run", "-o", "yaml"); r.code != exitUsage {
		t.Errorf("-o yaml: exit %d, want %d", r.code, exitUsage)
	}
}

// The matrix kernel: scorer version names it, and SCORER_KERNEL naming
// none this CPU supports is a usage error (exit 2) before any work.
func TestKernelChoice(t *testing.T) {
	r := scorerProc(t, nil, "version")
	mustSucceed(t, r)
	if !regexp.MustCompile(`kernel (avx512|avx2-fma|go)\)`).MatchString(r.stdout) {
		t.Errorf("scorer version: %q names no kernel", r.stdout)
	}
	forced := scorerProc(t, map[string]string{"SCORER_KERNEL": "go"}, "version")
	mustSucceed(t, forced)
	if !strings.Contains(forced.stdout, "kernel go)") {
		t.Errorf("SCORER_KERNEL=go: scorer version says %q", forced.stdout)
	}
	out := t.TempDir()
	bad := scorerProc(t, map[string]string{"SCORER_KERNEL": "sse9"}, append([]string{"backfill", "--month", "2020-09"}, demoArgs(out)...)...)
	if bad.code != 2 || !strings.Contains(bad.stderr, `SCORER_KERNEL=\"sse9\": unknown kernel`) {
		t.Errorf("SCORER_KERNEL=sse9: exit %d, stderr %s; want 2 naming the variable", bad.code, bad.stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "ad_scores")); err == nil {
		t.Error("the refused run wrote a table")
	}
}
