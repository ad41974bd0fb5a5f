package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// scorerKilled runs the scorer binary with a failpoint and asserts that it
// died of SIGKILL there.
func scorerKilled(t *testing.T, failpoint string, args ...string) {
	t.Helper()
	cmd := exec.Command(scorerBin, args...)
	cmd.Env = append(os.Environ(), "SCORER_FAILPOINT="+failpoint)
	outb, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("failpoint %s: want the process killed, got err %v\n%s", failpoint, err, outb)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("failpoint %s: process ended with %v, not SIGKILL\n%s", failpoint, err, outb)
	}
}

// checkPublished asserts that a table partition is complete and clean: the
// manifest lists exactly the Parquet files in the folder, _SUCCESS exists,
// no staging is left and every commit is done.
func checkPublished(t *testing.T, out, table, partition string) {
	t.Helper()
	dir := filepath.Join(out, table, partition)
	data, err := os.ReadFile(filepath.Join(dir, "_manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Files []struct{ Name string } `json:"files"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	var inManifest []string
	for _, f := range m.Files {
		inManifest = append(inManifest, f.Name)
	}
	onDisk, err := filepath.Glob(filepath.Join(dir, "*.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range onDisk {
		onDisk[i] = filepath.Base(onDisk[i])
	}
	slices.Sort(inManifest)
	if !slices.Equal(inManifest, onDisk) {
		t.Errorf("%s: manifest files %v, folder files %v", dir, inManifest, onDisk)
	}
	if _, err := os.Stat(filepath.Join(dir, "_SUCCESS")); err != nil {
		t.Errorf("%s: no _SUCCESS: %v", dir, err)
	}
	if staged := listTree(t, filepath.Join(out, "_scorer", "staging")); len(staged) > 0 {
		t.Errorf("staging left behind: %v", staged)
	}
	commits, _ := filepath.Glob(filepath.Join(out, "_scorer", "commits", "*.json"))
	for _, c := range commits {
		if _, err := os.Stat(strings.TrimSuffix(c, ".json") + ".done"); err != nil {
			t.Errorf("commit %s not done", filepath.Base(c))
		}
	}
}

// publishPoints are the failpoints of the publish protocol, in order; the
// first ones are before the commit point.
var publishPoints = []struct {
	name      string
	committed bool // the run had committed when it was killed
}{
	{"score.batch:3", false},
	{"publish.after-part-staged", false},
	{"before-commit", false},
	{"publish.after-stage", false},
	{"publish.after-commit-record", true},
	{"publish.after-part-copied", true},
	{"publish.after-manifest", true},
	{"publish.after-stale-deleted", true},
	{"publish.after-success", true},
	{"publish.before-done", true},
	{"publish.after-done", true},
}

func TestCrashDuringBackfill(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a real process at every failpoint")
	}
	want := countDemoRows(t, "2020-09")
	for _, fp := range publishPoints {
		t.Run(fp.name, func(t *testing.T) {
			out := t.TempDir()
			// Small parts and batches, so that a crash falls between parts.
			args := append([]string{"backfill", "--month", "2020-09", "--batch-size", "1000"}, demoArgs(out)...)
			env := map[string]string{"SCORER_PARQUET_ROW_GROUP_ROWS": "5000", "SCORER_PARQUET_PART_ROWS": "10000"}
			mustSucceed(t, scorer(t, env, args...))
			before := listTree(t, filepath.Join(out, "ad_scores"))

			for k, v := range env {
				t.Setenv(k, v)
			}
			scorerKilled(t, fp.name, args...)
			if !fp.committed {
				if after := listTree(t, filepath.Join(out, "ad_scores")); fmt.Sprint(after) != fmt.Sprint(before) {
					t.Fatalf("an uncommitted run changed the table:\nbefore %v\nafter  %v", before, after)
				}
			}

			mustSucceed(t, scorer(t, env, args...))
			s := readTable(t, filepath.Join(out, "ad_scores"), "ad_id", "month")
			if s.rows != want || s.distinctIDs != want || s.runs != 1 {
				t.Fatalf("after rerun: %d rows, %d ids, %d runs; want %d rows and ids from one run", s.rows, s.distinctIDs, s.runs, want)
			}
			checkPublished(t, out, "ad_scores", "month=2020-09")
		})
	}
}

func TestCrashDuringQueueRun(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a real process")
	}
	var queued int64
	if err := duck(t).QueryRow(fmt.Sprintf(`SELECT count(*) FROM read_json('%s/queue/*.jsonl')`, demoStore)).Scan(&queued); err != nil {
		t.Fatal(err)
	}
	for _, fp := range []string{"score.batch:2", "before-commit", "publish.after-commit-record", "publish.after-part-copied", "publish.before-done"} {
		t.Run(fp, func(t *testing.T) {
			out := t.TempDir()
			args := append([]string{"run", "--date", "2020-09-02", "--batch-size", "500"}, demoArgs(out)...)
			scorerKilled(t, fp, args...)
			mustSucceed(t, scorer(t, nil, args...))
			mustSucceed(t, scorer(t, nil, args...)) // and once more: nothing new
			q := readTable(t, filepath.Join(out, "request_scores"), "request_id", "date")
			if q.rows != queued || q.distinctIDs != queued {
				t.Fatalf("after a crash at %s: %d rows, %d distinct requests; want %d of each", fp, q.rows, q.distinctIDs, queued)
			}
			checkPublished(t, out, "request_scores", "date=2020-09-02")
		})
	}
}
