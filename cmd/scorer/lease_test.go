package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startStopped starts the scorer binary with a failpoint that stops it
// (SIGSTOP) at the given point, and waits until it is stopped there.
func startStopped(t *testing.T, point string, env []string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(scorerBin, args...)
	cmd.Env = append(append(os.Environ(), env...), "SCORER_FAILPOINT="+point+":stop")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "stat"))
		if err == nil {
			// /proc/<pid>/stat: "pid (comm) S ..." with S = T when stopped.
			if f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:])); len(f) > 0 && f[0] == "T" {
				return cmd, &stderr
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the process never stopped at %s:\n%s", point, stderr.String())
	return nil, nil
}

func TestSecondRunWhileLeaseHeld(t *testing.T) {
	out := t.TempDir()
	args := append([]string{"backfill", "--month", "2020-09", "--batch-size", "1000"}, demoArgs(out)...)
	startStopped(t, "score.batch:2", nil, args...)

	before := listTree(t, out)
	r := scorerProc(t, nil, args...)
	if r.code != exitBusy {
		t.Fatalf("second run: exit code %d, want %d (busy)\n%s", r.code, exitBusy, r.stderr)
	}
	if !strings.Contains(r.stderr, "lease held by another run") {
		t.Errorf("second run does not say why:\n%s", r.stderr)
	}
	if after := listTree(t, out); len(after) != len(before) {
		t.Errorf("the refused run wrote something: before %v after %v", before, after)
	}
	// Another job is not blocked by this one.
	mustSucceed(t, scorerProc(t, nil, append([]string{"run", "--date", "2020-09-02"}, demoArgs(out)...)...))
}

func TestStalledRunLosesLeaseAndCannotCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a 2 s lease to expire")
	}
	out := t.TempDir()
	env := []string{"SCORER_LEASE_TTL=2s"}
	args := append([]string{"backfill", "--month", "2020-09", "--batch-size", "1000"}, demoArgs(out)...)
	stalled, stalledErr := startStopped(t, "score.batch:2", env, args...)

	waitLocalLeasesExpired(t, out) // the stalled run's lease expires
	// The healthy run keeps the default TTL: only the stalled one is short.
	mustSucceed(t, scorerProc(t, nil, args...))
	s := readTable(t, filepath.Join(out, "ad_scores"), "ad_id", "month")

	// The stalled run wakes up: it must notice the lost lease and publish nothing.
	if err := stalled.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	err := stalled.Wait()
	if code := stalled.ProcessState.ExitCode(); code != exitRetry {
		t.Fatalf("stalled run exited %d (%v), want %d\n%s", code, err, exitRetry, stalledErr.String())
	}
	if !strings.Contains(stalledErr.String(), "lease lost") {
		t.Errorf("stalled run does not say it lost its lease:\n%s", stalledErr.String())
	}
	after := readTable(t, filepath.Join(out, "ad_scores"), "ad_id", "month")
	if after != s || after.runs != 1 {
		t.Fatalf("the stalled run changed the table: before %+v after %+v", s, after)
	}
	checkPublished(t, out, "ad_scores", "month=2020-09")
}

// A run that stalls in the middle of publishing its committed month loses
// its lease; the next run finishes it and publishes its own month; when the
// stalled process wakes up it must stop at its next step, not publish over
// the newer month.
func TestRunStalledMidPublishCannotGoBack(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a 2 s lease to expire")
	}
	out := t.TempDir()
	env := []string{"SCORER_LEASE_TTL=2s", "SCORER_PARQUET_ROW_GROUP_ROWS=5000", "SCORER_PARQUET_PART_ROWS=10000"}
	args := append([]string{"backfill", "--month", "2020-09"}, demoArgs(out)...)
	stalled, stalledErr := startStopped(t, "publish.after-part-copied:1", env, args...)

	waitLocalLeasesExpired(t, out)
	// The healthy run keeps the default TTL: only the stalled one is short.
	envMap := map[string]string{}
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k != "SCORER_LEASE_TTL" {
			envMap[k] = v
		}
	}
	mustSucceed(t, scorerProc(t, envMap, args...))
	newer := readTable(t, filepath.Join(out, "ad_scores"), "ad_id", "month")
	before := listTree(t, filepath.Join(out, "ad_scores"))

	if err := stalled.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	_ = stalled.Wait()
	if code := stalled.ProcessState.ExitCode(); code != exitRetry || !strings.Contains(stalledErr.String(), "lease lost") {
		t.Fatalf("the stalled publisher exited %d, want %d with \"lease lost\":\n%s", code, exitRetry, stalledErr.String())
	}
	if after := listTree(t, filepath.Join(out, "ad_scores")); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("the stalled publisher changed the table:\nbefore %v\nafter  %v", before, after)
	}
	if got := readTable(t, filepath.Join(out, "ad_scores"), "ad_id", "month"); got != newer || got.runs != 1 {
		t.Fatalf("table after the stalled publisher woke: %+v, want %+v", got, newer)
	}
	checkPublished(t, out, "ad_scores", "month=2020-09")
}

// waitLocalLeasesExpired waits until every lease object in the local output
// store has expired by its own expires_at (the event a takeover waits for),
// however long the stalled holder took to get there.
func waitLocalLeasesExpired(t *testing.T, out string) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(out, "_scorer", "leases", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var latest time.Time
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var l struct {
			ExpiresAt time.Time `json:"expires_at"`
		}
		if err := json.Unmarshal(data, &l); err != nil {
			t.Fatalf("lease %s: %v", p, err)
		}
		if l.ExpiresAt.After(latest) {
			latest = l.ExpiresAt
		}
	}
	if latest.IsZero() {
		t.Fatalf("no lease in %s", out)
	}
	time.Sleep(time.Until(latest) + 100*time.Millisecond)
}
