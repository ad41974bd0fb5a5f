package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adtech/scorer/internal/demodata"
)

// shardStore writes a month of n small dump files and returns the input
// store and the number of rows.
func shardStore(t *testing.T, n, rows int) (string, int64) {
	t.Helper()
	in := t.TempDir()
	g := demodata.New(11)
	from := time.Date(2020, 9, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		name := fmt.Sprintf("ads-%02d", i)
		f, err := os.Create(filepath.Join(mkdir(t, filepath.Join(in, "dumps", "2020-09")), name+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		if err := demodata.WriteCSV(f, g.Rows(name, rows, from, from.AddDate(0, 1, 0)), false); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return in, int64(n * rows)
}

func mkdir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestShardedBackfill(t *testing.T) {
	in, total := shardStore(t, 9, 300)
	out := t.TempDir()
	args := func(shard string) []string {
		a := []string{"backfill", "--month", "2020-09", "--input", in, "--model", demoModel, "--output", out, "--log-format", "json", "--batch-size", "100"}
		if shard != "" {
			a = append(a, "--shard", shard)
		}
		return a
	}
	published := func() bool {
		_, err := os.Stat(filepath.Join(out, "ad_scores", "month=2020-09", "_SUCCESS"))
		return err == nil
	}

	mustSucceed(t, scorerProc(t, nil, args("0/4")...))
	scorerKilled(t, "score.batch:2", args("1/4")...) // shard 1 dies mid-way
	// Shard 2 twice at once (two pods with one index), then once more (a
	// retry): duplicates are harmless.
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Add(1)
		go func() { defer wg.Done(); codes[i] = scorerProc(t, nil, args("2/4")...).code }()
	}
	wg.Wait()
	if !slices.Contains(codes, exitOK) || slices.ContainsFunc(codes, func(c int) bool { return c != exitOK && c != exitBusy }) {
		t.Fatalf("two copies of shard 2 exited %v, want one 0 and the other 0 or 4", codes)
	}
	mustSucceed(t, scorerProc(t, nil, args("2/4")...))
	// Kubernetes Indexed Job variables instead of the flag.
	mustSucceed(t, scorerProc(t, map[string]string{"JOB_COMPLETION_INDEX": "3", "SCORER_SHARD_COUNT": "4"}, args("")...))
	if published() {
		t.Fatal("the month was published before every shard finished")
	}

	// Another shard count, or an unsharded run, is refused while the plan is open.
	for _, a := range [][]string{args("0/3"), args("")} {
		if r := scorerProc(t, nil, a...); r.code != exitUsage || !strings.Contains(r.stderr, "in 4 shards is in progress") {
			t.Fatalf("%v: exit %d, want %d refusing the other shard count\n%s", a, r.code, exitUsage, r.stderr)
		}
	}

	mustSucceed(t, scorerProc(t, nil, args("1/4")...)) // the killed shard, rerun: the last one commits
	if !published() {
		t.Fatal("the month was not published after every shard finished")
	}
	s := readTable(t, filepath.Join(out, "ad_scores"), "ad_id", "month")
	if s.rows != total || s.distinctIDs != total {
		t.Fatalf("sharded backfill: %d rows, %d distinct ids; want %d of each", s.rows, s.distinctIDs, total)
	}
	checkPublished(t, out, "ad_scores", "month=2020-09")
	if left := listTree(t, filepath.Join(out, "_scorer", "shards")); len(left) > 0 {
		t.Errorf("shard plan left behind: %v", left)
	}

	// A finished plan does not block the next backfill of the month.
	mustSucceed(t, scorerProc(t, nil, args("")...))
	if s := readTable(t, filepath.Join(out, "ad_scores"), "ad_id", "month"); s.rows != total || s.runs != 1 {
		t.Fatalf("re-backfill after a sharded one: %+v", s)
	}
}

func TestAbandonShards(t *testing.T) {
	in, total := shardStore(t, 4, 100)
	out := t.TempDir()
	base := []string{"backfill", "--month", "2020-09", "--input", in, "--model", demoModel, "--output", out}
	mustSucceed(t, scorerProc(t, nil, append(base, "--shard", "0/3")...))
	if r := scorerProc(t, nil, append(base, "--shard", "0/2")...); r.code != exitUsage {
		t.Fatalf("other shard count: exit %d\n%s", r.code, r.stderr)
	}
	staged := listTree(t, filepath.Join(out, "_scorer", "staging"))
	abandon := []string{"shards", "abandon", "--month", "2020-09", "--input", in, "--model", demoModel, "--output", out}
	// Not on a terminal (a script, a Job): refused without --yes, touching nothing.
	if r := scorerProc(t, nil, abandon...); r.code != exitUsage || !strings.Contains(r.stderr, "--yes") {
		t.Fatalf("shards abandon without --yes: exit %d, want %d asking for --yes\n%s", r.code, exitUsage, r.stderr)
	}
	if left := listTree(t, filepath.Join(out, "_scorer", "staging")); len(left) == 0 || len(left) != len(staged) {
		t.Fatalf("a refused abandon changed the staging: %v, was %v", left, staged)
	}
	mustSucceed(t, scorerProc(t, nil, append(abandon, "--yes")...))
	if left := listTree(t, filepath.Join(out, "_scorer", "staging")); len(left) > 0 {
		t.Errorf("abandoned shards left staging: %v", left)
	}
	for _, sh := range []string{"0/2", "1/2"} {
		mustSucceed(t, scorerProc(t, nil, append(base, "--shard", sh)...))
	}
	if s := readTable(t, filepath.Join(out, "ad_scores"), "ad_id", "month"); s.rows != total || s.distinctIDs != total {
		t.Fatalf("after abandoning 3 shards and running 2: %+v, want %d rows", s, total)
	}
}

// A shard retried after its sharded backfill was published (a pod retried
// by Kubernetes) does nothing when it knows its plan's name.
func TestShardRetriedAfterPublish(t *testing.T) {
	in, total := shardStore(t, 4, 100)
	out := t.TempDir()
	base := []string{"backfill", "--month", "2020-09", "--input", in, "--model", demoModel, "--output", out}
	for _, sh := range []string{"0/2", "1/2"} {
		mustSucceed(t, scorerProc(t, map[string]string{"SCORER_SHARD_PLAN": "bf-2020-09-a"}, append(base, "--shard", sh)...))
	}
	r := scorerProc(t, nil, append(base, "--shard", "1/2", "--shard-plan", "bf-2020-09-a")...)
	mustSucceed(t, r)
	if !strings.Contains(r.stderr, "already published") {
		t.Errorf("the late retry does not say it had nothing to do:\n%s", r.stderr)
	}
	if left := listTree(t, filepath.Join(out, "_scorer", "shards")); len(left) > 0 {
		t.Fatalf("the late retry opened a plan: %v", left)
	}
	mustSucceed(t, scorerProc(t, nil, base...)) // nothing blocks the month
	if s := readTable(t, filepath.Join(out, "ad_scores"), "ad_id", "month"); s.rows != total || s.runs != 1 {
		t.Fatalf("after the late retry and a re-backfill: %+v", s)
	}
}

// An input replaced after the plan was made cannot be read as planned: the
// shard says so and how to get out (exit 2), rather than failing forever
// as if a retry could help.
func TestShardInputReplacedAfterPlan(t *testing.T) {
	in, _ := shardStore(t, 4, 100)
	out := t.TempDir()
	base := []string{"backfill", "--month", "2020-09", "--input", in, "--model", demoModel, "--output", out}
	mustSucceed(t, scorerProc(t, nil, append(base, "--shard", "0/2")...))
	replaced := filepath.Join(in, "dumps", "2020-09", "ads-01.csv") // shard 1's first file
	data, err := os.ReadFile(replaced)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, replaced+".new", data)
	if err := os.Rename(replaced+".new", replaced); err != nil {
		t.Fatal(err)
	}
	r := scorerProc(t, nil, append(base, "--shard", "1/2")...)
	if r.code != exitUsage || !strings.Contains(r.stderr, "scorer shards abandon") {
		t.Fatalf("exit %d, want %d pointing at scorer shards abandon:\n%s", r.code, exitUsage, r.stderr)
	}
}

// The old spelling, backfill --abandon-shards, still works (without asking)
// and says it is deprecated; on a terminal, shards abandon asks first.
func TestAbandonShardsDeprecatedAndConfirmed(t *testing.T) {
	out := t.TempDir()
	args := []string{"--input", demoStore, "--model", demoModel, "--output", out}
	r := scorer(t, nil, append([]string{"backfill", "--month", "2020-09", "--abandon-shards"}, args...)...)
	mustSucceed(t, r)
	if !strings.Contains(r.stderr, "deprecated") || !strings.Contains(r.stdout, "abandoned") {
		t.Errorf("--abandon-shards: stdout %q stderr %q", r.stdout, r.stderr)
	}
	if r := scorer(t, nil, append([]string{"shards", "abandon", "--month", "2020-09"}, args...)...); r.code != exitUsage || !strings.Contains(r.stderr, "not a terminal") {
		t.Errorf("no terminal, no --yes: exit %d, want %d\n%s", r.code, exitUsage, r.stderr)
	}
	for answer, done := range map[string]bool{"n\n": false, "\n": false, "yes\n": true} {
		e := &environment{stdinTerminal: true, stdin: strings.NewReader(answer)}
		r := scorerWith(t, e, nil, append([]string{"shards", "abandon", "--month", "2020-09"}, args...)...)
		mustSucceed(t, r)
		if !strings.Contains(r.stderr, "[y/N]") || strings.Contains(r.stdout, "abandoned (if") != done {
			t.Errorf("answer %q: stdout %q stderr %q", answer, r.stdout, r.stderr)
		}
	}
}
