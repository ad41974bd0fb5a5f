package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/adtech/scorer/internal/jobs"
)

// viewStats is what a reader of a table sees through one read path.
type viewStats struct {
	rows, ids int64
	// partitions, and distinct (partition, run id) pairs: equal when each
	// partition holds one run's files.
	partitions, partitionRuns int64
}

// globView reads a table as the README's query does: every Parquet file
// of every partition folder.
func globView(t *testing.T, dir, idCol, partCol string) viewStats {
	t.Helper()
	return queryView(t, "", fmt.Sprintf(`read_parquet('%s/*/*.parquet', hive_partitioning = true)`, dir), idCol, partCol)
}

// manifestView reads a table through its partitions' _manifest.txt, with
// the recipe of docs/store.md.
func manifestView(t *testing.T, dir, idCol, partCol string) viewStats {
	t.Helper()
	set := fmt.Sprintf(`SET VARIABLE files = (SELECT list(uri) FROM read_csv('%s/*/_manifest.txt', header = false, columns = {'uri': 'VARCHAR'}))`, dir)
	return queryView(t, set, `read_parquet(getvariable('files'), hive_partitioning = true)`, idCol, partCol)
}

// queryView runs the statement set (if any), then counts what from shows,
// on one connection.
func queryView(t *testing.T, set, from, idCol, partCol string) viewStats {
	t.Helper()
	ctx := context.Background()
	conn, err := duck(t).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }() // an in-memory database: nothing to lose
	if set != "" {
		if _, err := conn.ExecContext(ctx, set); err != nil {
			t.Fatalf("%s: %v", set, err)
		}
	}
	var s viewStats
	q := fmt.Sprintf(`SELECT count(*), count(DISTINCT %[1]s), count(DISTINCT %[2]s), count(DISTINCT (%[2]s, run_id)) FROM %[3]s`, idCol, partCol, from)
	if err := conn.QueryRowContext(ctx, q).Scan(&s.rows, &s.ids, &s.partitions, &s.partitionRuns); err != nil {
		t.Fatalf("query %s: %v", from, err)
	}
	return s
}

// TestCommittedPublishHealsWithoutRerun: a backfill killed after its
// commit, in the middle of publishing, is finished by the next command
// that opens the output store, whatever it is; the manifest view shows one
// complete state all along.
func TestCommittedPublishHealsWithoutRerun(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a real process")
	}
	want := countDemoRows(t, "2020-09")
	out := t.TempDir()
	args := append([]string{"backfill", "--month", "2020-09"}, demoArgs(out)...)
	mustSucceed(t, scorer(t, nil, args...))
	scorerKilled(t, "publish.after-manifest", args...)

	tbl := filepath.Join(out, "ad_scores")
	if m := manifestView(t, tbl, "ad_id", "month"); m.rows != want || m.ids != want || m.partitionRuns != 1 {
		t.Errorf("manifest view after the kill: %+v; want %d rows and ids from one run", m, want)
	}
	// An unrelated command: the history of the runs.
	mustSucceed(t, scorer(t, nil, "history", "--output", out))
	if g := globView(t, tbl, "ad_id", "month"); g.rows != want || g.ids != want || g.partitionRuns != 1 {
		t.Fatalf("glob view after scorer history: %+v; want %d rows and ids from one run", g, want)
	}
	checkPublished(t, out, "ad_scores", "month=2020-09")
	if m := manifestView(t, tbl, "ad_id", "month"); m.rows != want || m.ids != want || m.partitionRuns != 1 {
		t.Errorf("manifest view after healing: %+v", m)
	}
}

// TestRecoverCommand: scorer recover heals on demand and says what it did.
func TestRecoverCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a real process")
	}
	out := t.TempDir()
	args := append([]string{"backfill", "--month", "2020-09"}, demoArgs(out)...)
	scorerKilled(t, "publish.after-part-copied", args...)

	r := scorerProc(t, nil, "recover", "--output", out, "-o", "json", "--log-format", "json")
	mustSucceed(t, r)
	var rep jobs.HealReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("recover -o json: %v\n%s", err, r.stdout)
	}
	if len(rep.Jobs) != 1 || rep.Jobs[0].Job != jobs.BackfillJob("2020-09") || len(rep.Jobs[0].RolledForward) != 1 || rep.Jobs[0].Busy || rep.Jobs[0].Error != "" {
		t.Fatalf("recover reported %+v; want the month's run rolled forward", rep)
	}
	checkPublished(t, out, "ad_scores", "month=2020-09")

	r = scorerProc(t, nil, "recover", "--output", out)
	mustSucceed(t, r)
	if !strings.Contains(r.stdout, "nothing to heal") {
		t.Errorf("second recover printed %q, want nothing to heal", r.stdout)
	}
}

// crashPoints are the failpoints a random crash picks from: every phase of
// a run, the publish protocol included. each: the point fires once per
// object, so the crash may come at its first, second or third hit.
var crashPoints = []struct {
	name string
	each bool
}{
	{"score.batch", true},
	{"publish.after-part-staged", true},
	{"publish.after-stage", false},
	{"before-commit", false},
	{"publish.after-commit-record", false},
	{"publish.after-part-copied", true},
	{"publish.after-manifest", true},
	{"publish.after-stale-deleted", true},
	{"publish.after-success", true},
	{"publish.before-done", false},
	{"publish.after-done", false},
}

// TestRandomCrashesLeaveOneCompleteState kills backfills and queue runs at
// random failpoints, then runs an unrelated command, and checks both read
// paths: globbing the tables and reading through _manifest.txt each show
// exactly one complete state. SCORER_CRASH_ITERATIONS sets the number of
// kills (default 8), SCORER_CRASH_SEED replays a failure (the seed is
// logged).
func TestRandomCrashesLeaveOneCompleteState(t *testing.T) {
	if testing.Short() {
		t.Skip("kills real processes")
	}
	iterations := 8
	if v := os.Getenv("SCORER_CRASH_ITERATIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("SCORER_CRASH_ITERATIONS: %v", err)
		}
		iterations = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SCORER_CRASH_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SCORER_CRASH_SEED: %v", err)
		}
		seed = n
	}
	t.Logf("seed %d: replay with SCORER_CRASH_SEED=%d", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	in, out := t.TempDir(), t.TempDir()
	months := []string{"2020-08", "2020-09"}
	var wantAds int64
	for _, m := range months {
		copyDir(t, filepath.Join(demoStore, "dumps", m), filepath.Join(in, "dumps", m))
		wantAds += countDemoRows(t, m)
	}
	args := func(cmd ...string) []string {
		return append(cmd, "--input", in, "--model", demoModel, "--output", out, "--log-format", "json", "--batch-size", "500")
	}
	env := map[string]string{"SCORER_PARQUET_ROW_GROUP_ROWS": "5000", "SCORER_PARQUET_PART_ROWS": "10000"}
	backfill := func(m string) []string { return args("backfill", "--month", m) }
	queue := args("run", "--date", "2020-09-02")
	history := []string{"history", "--output", out, "--log-format", "json"}
	recover := []string{"recover", "--output", out, "--log-format", "json"}
	var queued int64
	addQueueFile := func(i int) {
		queued += writeQueueFile(t, in, fmt.Sprintf("it%02d", i), 1500)
	}
	addQueueFile(0)
	for _, m := range months {
		mustSucceed(t, scorerProc(t, env, backfill(m)...))
	}
	mustSucceed(t, scorerProc(t, env, queue...))

	for i := 1; i <= iterations; i++ {
		addQueueFile(i)
		fp := crashPoints[rng.IntN(len(crashPoints))]
		point := fp.name
		if fp.each {
			point += fmt.Sprintf(":%d", 1+rng.IntN(3))
		}
		month := months[rng.IntN(len(months))]
		// The crashing command, and an unrelated one after it: another
		// job, the run records, or recover.
		crashing, next := backfill(month), [][]string{queue, history, recover}
		if rng.IntN(2) == 0 {
			crashing, next = queue, [][]string{backfill(month), history, recover}
		}
		after := next[rng.IntN(len(next))]
		killed := scorerMaybeKilled(t, env, point, crashing...)
		t.Logf("%d: %s at %s (killed: %v), then %s", i, strings.Join(crashing[:3], " "), point, killed, after[0])
		mustSucceed(t, scorerProc(t, env, after...))

		ads, requests := filepath.Join(out, "ad_scores"), filepath.Join(out, "request_scores")
		for _, view := range []struct {
			name string
			read func(t *testing.T, dir, idCol, partCol string) viewStats
		}{{"glob", globView}, {"manifest", manifestView}} {
			a := view.read(t, ads, "ad_id", "month")
			if a.rows != wantAds || a.ids != wantAds || a.partitions != int64(len(months)) || a.partitionRuns != a.partitions {
				t.Fatalf("seed %d, iteration %d: %s view of ad_scores: %+v; want %d rows and ids, one run per month", seed, i, view.name, a, wantAds)
			}
			q := view.read(t, requests, "request_id", "date")
			if q.rows != q.ids || q.rows > queued || q.partitions != 1 {
				t.Fatalf("seed %d, iteration %d: %s view of request_scores: %+v; want each of at most %d requests once", seed, i, view.name, q, queued)
			}
		}
		if g, m := globView(t, filepath.Join(out, "request_scores"), "request_id", "date"), manifestView(t, filepath.Join(out, "request_scores"), "request_id", "date"); g != m {
			t.Fatalf("seed %d, iteration %d: request_scores glob view %+v, manifest view %+v", seed, i, g, m)
		}
		if left := leftTempFiles(t, out); len(left) > 0 {
			t.Fatalf("seed %d, iteration %d: temporary files of killed writers left: %v", seed, i, left)
		}
	}
	// Every request queued is scored once, after one more queue run.
	mustSucceed(t, scorerProc(t, env, queue...))
	if q := manifestView(t, filepath.Join(out, "request_scores"), "request_id", "date"); q.rows != queued || q.ids != queued {
		t.Fatalf("seed %d: after a last queue run, %+v; want %d requests once each", seed, q, queued)
	}
}

// scorerMaybeKilled runs the binary with a failpoint: it is killed there,
// or, if the run never reaches the point, succeeds.
func scorerMaybeKilled(t *testing.T, env map[string]string, point string, args ...string) bool {
	t.Helper()
	cmd := exec.Command(scorerBin, args...)
	cmd.Env = append(os.Environ(), "SCORER_FAILPOINT="+point)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	outb, err := cmd.CombinedOutput()
	if err == nil {
		return false
	}
	var ee *exec.ExitError
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !errors.As(err, &ee) || !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("failpoint %s: want the process killed or done, got %v\n%s", point, err, outb)
	}
	return true
}

// writeQueueFile writes a queue file of n requests (the demo's, with ids
// made unique by prefix) and returns n.
func writeQueueFile(t *testing.T, in, prefix string, n int) int64 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(demoStore, "queue", "requests-2020-09-02T00.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	lines := strings.SplitAfter(string(data), "\n")
	for _, l := range lines[:n] {
		b.WriteString(strings.Replace(l, `"request_id":"requests-`, `"request_id":"`+prefix+`-`, 1))
	}
	dir := filepath.Join(in, "queue")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "requests-"+prefix+".jsonl"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return int64(n)
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

// leftTempFiles lists the temporary files under <out>/.tmp (not its lock).
func leftTempFiles(t *testing.T, out string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(out, ".tmp"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.Name() != ".lock" {
			names = append(names, e.Name())
		}
	}
	return names
}
