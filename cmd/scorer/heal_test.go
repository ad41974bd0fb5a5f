package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

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
