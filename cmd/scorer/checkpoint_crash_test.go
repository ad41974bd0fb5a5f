package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCrashDuringCheckpoint kills scorer gc (SIGKILL) at every step of the
// checkpoint it writes before collecting the queue: the checkpoint written,
// each commit log object copied to the archive, each deleted from the log.
// After each kill the queue still scores every request exactly once (the
// ledger is whole), and the next gc finishes the archiving.
func TestCrashDuringCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a real process at every checkpoint step")
	}
	src := filepath.Join(demoStore, "queue")
	demo, err := os.ReadFile(filepath.Join(src, "requests-2020-09-02T00.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	// Two runs commit two records and two done markers: four copies and
	// four deletes.
	for _, point := range []string{
		"gc.after-checkpoint",
		"gc.after-archive-copy:1", "gc.after-archive-copy:2", "gc.after-archive-copy:4",
		"gc.after-archive-delete:1", "gc.after-archive-delete:2", "gc.after-archive-delete:4",
	} {
		t.Run(point, func(t *testing.T) {
			in, out := t.TempDir(), t.TempDir()
			queue := filepath.Join(in, "queue")
			if err := os.MkdirAll(queue, 0o755); err != nil {
				t.Fatal(err)
			}
			// put queues a copy of the demo requests under fresh ids.
			put := func(name string) {
				t.Helper()
				data := strings.ReplaceAll(string(demo), `"requests-2020-09-02T00-`, `"`+name+`-`)
				if err := os.WriteFile(filepath.Join(queue, name+".jsonl"), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{"--input", in, "--output", out, "--log-format", "json"}
			runArgs := append([]string{"run", "--date", "2020-09-02", "-o", "json", "--model", demoModel}, args...)
			run := func(wantFiles int) {
				t.Helper()
				r := scorerProc(t, nil, runArgs...)
				mustSucceed(t, r)
				var sum struct {
					InputFiles []string `json:"input_files"`
				}
				if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
					t.Fatalf("run -o json: %v\n%s", err, r.stdout)
				}
				if len(sum.InputFiles) != wantFiles {
					t.Fatalf("the queue run read %v, want %d new file(s)", sum.InputFiles, wantFiles)
				}
			}
			put("a")
			run(1)
			put("b")
			run(1)
			// Commits stored an hour ago: old enough to be checkpointed
			// (the local store's object time is the file's).
			commits := filepath.Join(out, "_scorer", "commits")
			entries, err := os.ReadDir(commits)
			if err != nil || len(entries) != 4 {
				t.Fatalf("commit log: %v, %v; want two records and two done markers", entries, err)
			}
			old := time.Now().Add(-time.Hour)
			for _, e := range entries {
				if err := os.Chtimes(filepath.Join(commits, e.Name()), old, old); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("SCORER_RETENTION_QUEUE_DAYS", "1") // the files are new: gc only checkpoints
			scorerKilled(t, point, append([]string{"gc"}, args...)...)

			// The ledger is whole: a run scores the new file alone.
			put("c")
			run(1)
			run(0)
			s := readTable(t, filepath.Join(out, "request_scores"), "request_id", "date")
			perFile := int64(strings.Count(strings.TrimSpace(string(demo)), "\n") + 1)
			if want := 3 * perFile; s.rows != want || s.distinctIDs != want {
				t.Fatalf("after the kill: %d rows, %d distinct requests; want %d of each", s.rows, s.distinctIDs, want)
			}

			// The next gc finishes: a and b archived, c's commit (stored
			// just now) still in the log.
			mustSucceed(t, scorerProc(t, nil, append([]string{"gc"}, args...)...))
			var left []string
			entries, err = os.ReadDir(commits)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				left = append(left, e.Name())
			}
			archived, err := filepath.Glob(filepath.Join(out, "_scorer", "archive", "commits", "*"))
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != 2 || len(archived) != 4 || !slices.ContainsFunc(left, func(n string) bool { return strings.HasSuffix(n, ".done") }) {
				t.Errorf("after the next gc: log %v, archive %d objects; want the last run's record and marker, and four archived", left, len(archived))
			}
			run(0)
		})
	}
}
