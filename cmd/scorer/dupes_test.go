package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// queueLines returns the first n demo queue requests, one JSON object a
// line, and their ids.
func queueLines(t *testing.T, n int) (lines, ids []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(demoStore, "queue", "requests-2020-09-02T00.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines = strings.SplitN(string(data), "\n", n+1)[:n]
	for _, l := range lines {
		i := strings.Index(l, `"request_id":"`) + len(`"request_id":"`)
		ids = append(ids, l[i:i+strings.IndexByte(l[i:], '"')])
	}
	return lines, ids
}

func jsonl(lines ...string) []byte { return []byte(strings.Join(lines, "\n") + "\n") }

// scoredIDs counts each request id in request_scores.
func scoredIDs(t *testing.T, out string) map[string]int {
	t.Helper()
	rows, err := duck(t).Query(fmt.Sprintf(`SELECT request_id, count(*) FROM read_parquet('%s/request_scores/*/*.parquet') GROUP BY 1`, out))
	if err != nil {
		t.Fatal(err)
	}
	defer closeRows(t, rows)
	got := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		got[id] = n
	}
	return got
}

// rejectedDups lists the duplicates in request_scores_rejects as
// file:row:id.
func rejectedDups(t *testing.T, out string) []string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(out, "request_scores_rejects")); os.IsNotExist(err) {
		return nil
	}
	rows, err := duck(t).Query(fmt.Sprintf(`SELECT file, "row", request_id, raw LIKE '%%' || request_id || '%%' FROM read_parquet('%s/request_scores_rejects/*/*.parquet')
		WHERE reason = 'duplicate request id' ORDER BY file, "row"`, out))
	if err != nil {
		t.Fatal(err)
	}
	defer closeRows(t, rows)
	var got []string
	for rows.Next() {
		var file, id string
		var row int64
		var rawHasID bool
		if err := rows.Scan(&file, &row, &id, &rawHasID); err != nil {
			t.Fatal(err)
		}
		if !rawHasID {
			t.Errorf("rejected duplicate %s:%d: raw line does not hold its id", file, row)
		}
		got = append(got, fmt.Sprintf("%s:%d:%s", file, row, id))
	}
	return got
}

// The queue promises each request scored once: a request id seen twice,
// in one file, across files of a run, or across runs, is scored once.
func TestQueueDuplicateRequestIDs(t *testing.T) {
	lines, ids := queueLines(t, 6)
	in := t.TempDir()
	// a: ids 0 1 2 0; b: 1 3. Then, in a later run, c: 2 4.
	writeFile(t, filepath.Join(in, "queue/a.jsonl"), jsonl(lines[0], lines[1], lines[2], lines[0]))
	writeFile(t, filepath.Join(in, "queue/b.jsonl"), jsonl(lines[1], lines[3]))
	later := jsonl(lines[2], lines[4])

	for _, tc := range []struct {
		policy  string // "" for the default
		scored  map[string]int
		rejects []string
	}{
		{
			"",
			map[string]int{ids[0]: 1, ids[1]: 1, ids[2]: 1, ids[3]: 1, ids[4]: 1},
			[]string{"queue/a.jsonl:4:" + ids[0], "queue/b.jsonl:1:" + ids[1], "queue/c.jsonl:1:" + ids[2]},
		},
		{"keep_first", map[string]int{ids[0]: 1, ids[1]: 1, ids[2]: 1, ids[3]: 1, ids[4]: 1}, nil},
		{"keep_all", map[string]int{ids[0]: 2, ids[1]: 2, ids[2]: 2, ids[3]: 1, ids[4]: 1}, nil},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			in2 := t.TempDir()
			for _, f := range []string{"a.jsonl", "b.jsonl"} {
				data, err := os.ReadFile(filepath.Join(in, "queue", f))
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(in2, "queue", f), data)
			}
			out := t.TempDir()
			env := map[string]string{}
			if tc.policy != "" {
				env["SCORER_QUEUE_DUPLICATES"] = tc.policy
			}
			args := []string{"run", "--date", "2020-09-02", "--input", in2, "--model", demoModel, "--output", out, "--log-format", "json"}
			r := scorer(t, env, args...)
			mustSucceed(t, r) // duplicates do not fail the run, whatever max_bad_rows says
			if tc.policy != "keep_all" && !strings.Contains(r.stdout, "duplicate ids  2") {
				t.Errorf("summary does not count 2 duplicates:\n%s", r.stdout)
			}
			writeFile(t, filepath.Join(in2, "queue/c.jsonl"), later)
			// The next day: the window holds yesterday's partition too.
			mustSucceed(t, scorer(t, env, append(args[:2:2], append([]string{"2020-09-03"}, args[3:]...)...)...))

			if got := scoredIDs(t, out); fmt.Sprint(got) != fmt.Sprint(tc.scored) {
				t.Errorf("scored ids %v, want %v", got, tc.scored)
			}
			if got := rejectedDups(t, out); strings.Join(got, " ") != strings.Join(tc.rejects, " ") {
				t.Errorf("rejected duplicates %v, want %v", got, tc.rejects)
			}
		})
	}
}

// A run killed after scoring but before its commit marks no id as seen:
// the rerun scores every request once, none as a duplicate.
func TestQueueDuplicatesUnderKills(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a real process")
	}
	lines, ids := queueLines(t, 5)
	for _, fp := range []string{"score.batch:1", "before-commit", "publish.after-commit-record", "publish.after-part-copied", "publish.before-done"} {
		t.Run(fp, func(t *testing.T) {
			in, out := t.TempDir(), t.TempDir()
			writeFile(t, filepath.Join(in, "queue/a.jsonl"), jsonl(lines[0], lines[1], lines[0]))
			args := []string{"run", "--date", "2020-09-02", "--input", in, "--model", demoModel, "--output", out, "--batch-size", "1", "--log-format", "json"}
			mustSucceed(t, scorerProc(t, nil, args...))
			// b repeats a scored id and brings new ones; the run dies.
			writeFile(t, filepath.Join(in, "queue/b.jsonl"), jsonl(lines[2], lines[1], lines[3], lines[2], lines[4]))
			scorerKilled(t, fp, args...)
			mustSucceed(t, scorerProc(t, nil, args...))
			mustSucceed(t, scorerProc(t, nil, args...)) // nothing new

			want := map[string]int{ids[0]: 1, ids[1]: 1, ids[2]: 1, ids[3]: 1, ids[4]: 1}
			if got := scoredIDs(t, out); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("scored ids %v, want %v", got, want)
			}
			wantRej := []string{"queue/a.jsonl:3:" + ids[0], "queue/b.jsonl:2:" + ids[1], "queue/b.jsonl:4:" + ids[2]}
			if got := rejectedDups(t, out); strings.Join(got, " ") != strings.Join(wantRej, " ") {
				t.Errorf("rejected duplicates %v, want %v", got, wantRej)
			}
			checkPublished(t, out, "request_scores", "date=2020-09-02")
		})
	}
}
