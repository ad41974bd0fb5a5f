package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/adtech/scorer/internal/demodata"
	"github.com/adtech/scorer/readers/store/faults"
)

// gcsEnv is an in-process GCS emulator (fake-gcs-server, memory backend)
// behind a fault-injecting reverse proxy on 127.0.0.1. The scorer binary
// talks to the proxy through STORAGE_EMULATOR_HOST, so faults reach it as
// they would from a real network, without any test hook in the binary.
type gcsEnv struct {
	srv    *fakestorage.Server
	faults *faults.Transport
	host   string // the proxy's host:port
}

func newGCS(t *testing.T) *gcsEnv {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Objects written here are smaller than the upload chunk size, so every
	// upload is one request through the proxy (a resumable session would
	// continue at the server's own address).
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http", Host: "127.0.0.1", Port: 0, Writer: io.Discard, // its request log
	})
	if err != nil {
		t.Fatal(err)
	}
	target, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	ft := faults.New(http.DefaultTransport, 42)
	proxy := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport: ft,
		ErrorLog:  log.New(io.Discard, "", 0), // cancelled requests are expected
	}
	hs := &http.Server{Handler: proxy}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() {
		if err := hs.Close(); err != nil {
			t.Errorf("close the proxy: %v", err)
		}
		srv.Stop()
	})
	for _, b := range []string{"ads", "analytics", "models"} {
		srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: b})
	}
	return &gcsEnv{srv: srv, faults: ft, host: ln.Addr().String()}
}

// env is the environment of a scorer process using this emulator, with
// short GCS deadlines so that fault tests run quickly.
func (g *gcsEnv) env(extra ...string) map[string]string {
	e := map[string]string{
		"STORAGE_EMULATOR_HOST":      g.host,
		"SCORER_GCS_CALL_TIMEOUT":    "2s",
		"SCORER_GCS_INITIAL_BACKOFF": "10ms",
		"SCORER_GCS_MAX_BACKOFF":     "100ms",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		e[extra[i]] = extra[i+1]
	}
	return e
}

func (g *gcsEnv) put(t *testing.T, bucket, name string, data []byte) {
	t.Helper()
	g.srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: name}, Content: data})
}

// uploadDir copies a local folder into bucket under prefix.
func (g *gcsEnv) uploadDir(t *testing.T, dir, bucket, prefix string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		g.put(t, bucket, prefix+filepath.ToSlash(rel), data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// download copies every object under bucket/prefix into a fresh local
// folder, as an analyst syncing the table would, and returns the folder.
func (g *gcsEnv) download(t *testing.T, bucket, prefix string) string {
	t.Helper()
	dir := t.TempDir()
	list, err := g.srv.ListObjectsWithOptionsPaginated(bucket, fakestorage.ListOptions{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range list.Objects {
		obj, err := g.srv.GetObject(bucket, o.Name)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, strings.TrimPrefix(o.Name, prefix)), obj.Content)
	}
	return dir
}

// names lists the object names under bucket/prefix.
func (g *gcsEnv) names(t *testing.T, bucket, prefix string) []string {
	t.Helper()
	list, err := g.srv.ListObjectsWithOptionsPaginated(bucket, fakestorage.ListOptions{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	objs := list.Objects
	var out []string
	for _, o := range objs {
		out = append(out, strings.TrimPrefix(o.Name, prefix))
	}
	slices.Sort(out)
	return out
}

// gcsArgs point a command at the emulator's buckets.
func gcsArgs(extra ...string) []string {
	return append([]string{
		"--input", "gs://ads/input", "--output", "gs://analytics/scorer",
		"--model", "gs://models/ctr-demo", "--log-format", "json",
	}, extra...)
}

// seedDemo uploads the demo store and bundle.
func (g *gcsEnv) seedDemo(t *testing.T) {
	t.Helper()
	g.uploadDir(t, demoStore, "ads", "input/")
	g.uploadDir(t, demoModel, "models", "ctr-demo/")
}

// scoresOf reads a downloaded table as (id, score, model_version) rows,
// sorted: what must be identical between a faulty run and a clean one
// (run_id and scored_at differ by design).
func scoresOf(t *testing.T, dir, table, idCol string) []string {
	t.Helper()
	rows, err := duck(t).Query(fmt.Sprintf(`SELECT %s, score, model_version FROM read_parquet('%s/%s/*/*.parquet', hive_partitioning = true) ORDER BY 1`, idCol, dir, table))
	if err != nil {
		t.Fatal(err)
	}
	defer closeRows(t, rows)
	var out []string
	for rows.Next() {
		var id, version string
		var score float64
		if err := rows.Scan(&id, &score, &version); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %.7g %s", id, score, version))
	}
	return out
}

// cleanScores scores the demo month locally once: the reference output.
func cleanScores(t *testing.T) []string {
	t.Helper()
	out := t.TempDir()
	mustSucceed(t, scorerProc(t, nil, append([]string{"backfill", "--month", "2020-09"}, demoArgs(out)...)...))
	return scoresOf(t, out, "ad_scores", "ad_id")
}

// checkGCSPublished downloads the output store, as an analyst syncing the
// tables would, and checks it as checkPublished does a local one (the
// download holds every object, so its manifest matches the bucket's).
func checkGCSPublished(t *testing.T, g *gcsEnv, table, partition string) string {
	t.Helper()
	dir := g.download(t, "analytics", "scorer/")
	checkPublished(t, dir, table, partition)
	return dir
}

func TestGCSBackfillAndQueue(t *testing.T) {
	g := newGCS(t)
	g.seedDemo(t)
	want := cleanScores(t)

	mustSucceed(t, scorerProc(t, g.env(), append([]string{"backfill", "--month", "2020-09"}, gcsArgs()...)...))
	dir := checkGCSPublished(t, g, "ad_scores", "month=2020-09")
	if got := scoresOf(t, dir, "ad_scores", "ad_id"); !slices.Equal(got, want) {
		t.Fatalf("scores on GCS differ from a local run: %d rows vs %d", len(got), len(want))
	}

	for range 2 {
		mustSucceed(t, scorerProc(t, g.env(), append([]string{"run", "--date", "2020-09-02"}, gcsArgs()...)...))
	}
	dir = checkGCSPublished(t, g, "request_scores", "date=2020-09-02")
	q := readTable(t, filepath.Join(dir, "request_scores"), "request_id", "date")
	if q.rows != 4000 || q.distinctIDs != 4000 || q.runs != 1 {
		t.Fatalf("queue on GCS: %+v, want 4000 requests scored once by one run", q)
	}
}

// TestGCSCrashes kills the scorer at points of a backfill on GCS; the rerun
// must publish exactly what a clean run does, with no stray object.
func TestGCSCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("kills real processes")
	}
	want := cleanScores(t)
	for _, fp := range []string{"score.batch:3", "publish.after-part-copied:2", "publish.after-commit-record", "publish.after-done"} {
		t.Run(fp, func(t *testing.T) {
			g := newGCS(t)
			g.seedDemo(t)
			env := g.env("SCORER_PARQUET_ROW_GROUP_ROWS", "5000", "SCORER_PARQUET_PART_ROWS", "10000")
			args := append([]string{"backfill", "--month", "2020-09", "--batch-size", "1000"}, gcsArgs()...)
			for k, v := range env {
				t.Setenv(k, v)
			}
			scorerKilled(t, fp, args...)
			mustSucceed(t, scorerProc(t, env, args...))
			dir := checkGCSPublished(t, g, "ad_scores", "month=2020-09")
			if got := scoresOf(t, dir, "ad_scores", "ad_id"); !slices.Equal(got, want) {
				t.Fatalf("after a crash at %s: %d rows differ from a clean run's %d", fp, len(got), len(want))
			}
			if s := readTable(t, filepath.Join(dir, "ad_scores"), "ad_id", "month"); s.runs != 1 {
				t.Fatalf("rows of %d runs in the partition", s.runs)
			}
		})
	}
}

// TestGCSTransientFaults: throttling, a broken read and a stalled upload are
// retried; the output equals a clean run's and the retries are reported.
func TestGCSTransientFaults(t *testing.T) {
	want := cleanScores(t)
	tests := []struct {
		name  string
		rules []faults.Rule
	}{
		{"429 on 30% of writes", []faults.Rule{{Method: "POST", Match: `^/upload/`, Prob: 0.3, Fault: faults.Status(http.StatusTooManyRequests)}}},
		{"503 after the write was applied", []faults.Rule{{Method: "POST", Match: `^/upload/.*commits`, Nth: 1, Fault: faults.ForwardThenStatus(http.StatusServiceUnavailable)}}},
		// The client library reopens a broken read once by itself, silently:
		// its reopen is reset too, so that the store's own resume (counted)
		// has to finish the read.
		{"read broken after 256 KiB", []faults.Rule{
			{Method: "GET", Match: `ads-2020-09-000.*alt=media`, Nth: 1, Fault: faults.Truncate(256 << 10)},
			{Method: "GET", Match: `ads-2020-09-000.*alt=media`, Nth: 2, Fault: faults.Reset()},
		}},
		{"stalled upload", []faults.Rule{{Method: "POST", Match: `^/upload/.*part-`, Nth: 1, Fault: faults.Stall(0)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGCS(t)
			g.seedDemo(t)
			for _, r := range tt.rules {
				g.faults.Add(r)
			}
			r := scorerProc(t, g.env(), append([]string{"backfill", "--month", "2020-09"}, gcsArgs()...)...)
			mustSucceed(t, r)
			var faulted int
			for _, c := range g.faults.Calls() {
				if c.Fault != "" {
					faulted++
				}
			}
			if faulted == 0 {
				t.Fatal("no fault was injected: the rule matched no request")
			}
			if strings.Contains(r.stdout, "store retries  0\n") {
				t.Errorf("%d faults injected but the summary reports no retry:\n%s", faulted, r.stdout)
			}
			dir := checkGCSPublished(t, g, "ad_scores", "month=2020-09")
			if got := scoresOf(t, dir, "ad_scores", "ad_id"); !slices.Equal(got, want) {
				t.Fatalf("with faults: %d rows differ from a clean run's %d", len(got), len(want))
			}
		})
	}
}

// TestGCSPermanentErrorsFailFast: a missing bucket is a configuration
// error (exit 2), not retried.
func TestGCSPermanentErrorsFailFast(t *testing.T) {
	g := newGCS(t)
	g.seedDemo(t)
	for _, tt := range []struct{ flag, uri string }{
		{"--input", "gs://no-such-bucket/input"},
		{"--output", "gs://no-such-bucket/out"},
	} {
		t.Run(tt.flag, func(t *testing.T) {
			g.faults.Reset()
			r := scorerProc(t, g.env(), append([]string{"backfill", "--month", "2020-09"}, gcsArgs(tt.flag, tt.uri)...)...)
			if r.code != exitUsage || !strings.Contains(r.stderr, "no-such-bucket") {
				t.Fatalf("exit %d, want %d naming the bucket:\n%s", r.code, exitUsage, r.stderr)
			}
			if calls, _ := g.faults.Count("", "no-such-bucket"); calls > 3 {
				t.Errorf("%d requests to a missing bucket: permanent errors must not be retried", calls)
			}
		})
	}
}

func TestGCSLease(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a lease to expire")
	}
	g := newGCS(t)
	g.seedDemo(t)
	args := append([]string{"backfill", "--month", "2020-09", "--batch-size", "1000"}, gcsArgs()...)
	// The stalled run's lease lives 12 s: long enough that the refused
	// run below reads it live even on a loaded machine (its last renewal
	// was at most a renewal interval, 3 s, before it stopped), short
	// enough to wait out. The runs that must succeed keep the default
	// 60 s TTL, so that one slow renewal cannot stop them.
	var env []string
	for k, v := range g.env("SCORER_LEASE_TTL", "12s") {
		env = append(env, k+"="+v)
	}
	stalled, stalledErr := startStopped(t, "score.batch:2", env, args...)

	// While it holds the lease: a second run is refused and writes nothing.
	before := withoutRunRecords(g.names(t, "analytics", "scorer/"))
	if r := scorerProc(t, g.env(), args...); r.code != exitBusy {
		t.Fatalf("second run: exit %d, want %d\n%s", r.code, exitBusy, r.stderr)
	}
	if after := withoutRunRecords(g.names(t, "analytics", "scorer/")); !slices.Equal(before, after) {
		t.Fatalf("the refused run wrote objects:\n%v\n%v", before, after)
	}

	// It stalls past its lease; another run takes over and commits; the
	// stalled one wakes up and must not commit.
	g.waitLeasesExpired(t)
	mustSucceed(t, scorerProc(t, g.env(), args...))
	dir := checkGCSPublished(t, g, "ad_scores", "month=2020-09")
	first := scoresOf(t, dir, "ad_scores", "ad_id")
	if err := stalled.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	_ = stalled.Wait()
	if code := stalled.ProcessState.ExitCode(); code != exitRetry || !strings.Contains(stalledErr.String(), "lease lost") {
		t.Fatalf("stalled run exited %d, want %d with \"lease lost\":\n%s", code, exitRetry, stalledErr.String())
	}
	dir = checkGCSPublished(t, g, "ad_scores", "month=2020-09")
	if got := scoresOf(t, dir, "ad_scores", "ad_id"); !slices.Equal(got, first) {
		t.Fatal("the stalled run changed the published month")
	}
}

// waitLeasesExpired waits until every lease object in the output store
// has expired by its own expires_at (the event a takeover waits for),
// however long the stalled holder took to get there.
func (g *gcsEnv) waitLeasesExpired(t *testing.T) {
	t.Helper()
	var latest time.Time
	for _, name := range g.names(t, "analytics", "scorer/_scorer/leases/") {
		obj, err := g.srv.GetObject("analytics", "scorer/_scorer/leases/"+name)
		if err != nil {
			t.Fatal(err)
		}
		var l struct {
			ExpiresAt time.Time `json:"expires_at"`
		}
		if err := json.Unmarshal(obj.Content, &l); err != nil {
			t.Fatalf("lease %s: %v", name, err)
		}
		if l.ExpiresAt.After(latest) {
			latest = l.ExpiresAt
		}
	}
	if latest.IsZero() {
		t.Fatal("no lease in the output store")
	}
	time.Sleep(time.Until(latest) + 100*time.Millisecond)
}

func TestGCSShards(t *testing.T) {
	g := newGCS(t)
	in, total := shardStore(t, 8, 250)
	g.uploadDir(t, in, "ads", "input/")
	g.uploadDir(t, demoModel, "models", "ctr-demo/")
	args := func(shard string) []string {
		return append([]string{"backfill", "--month", "2020-09", "--batch-size", "100", "--shard", shard}, gcsArgs()...)
	}
	for k, v := range g.env() {
		t.Setenv(k, v)
	}
	mustSucceed(t, scorerProc(t, g.env(), args("0/4")...))
	scorerKilled(t, "score.batch:2", args("1/4")...)
	mustSucceed(t, scorerProc(t, g.env(), args("2/4")...))
	mustSucceed(t, scorerProc(t, g.env(), args("2/4")...)) // duplicated
	mustSucceed(t, scorerProc(t, g.env(), args("3/4")...))
	mustSucceed(t, scorerProc(t, g.env(), args("1/4")...)) // the killed one, rerun
	dir := checkGCSPublished(t, g, "ad_scores", "month=2020-09")
	if s := readTable(t, filepath.Join(dir, "ad_scores"), "ad_id", "month"); s.rows != total || s.distinctIDs != total {
		t.Fatalf("four shards on GCS: %d rows, %d ids; want %d of each", s.rows, s.distinctIDs, total)
	}
	for _, n := range g.names(t, "analytics", "scorer/_scorer/") {
		if strings.HasPrefix(n, "staging/") || strings.HasPrefix(n, "shards/") {
			t.Errorf("stray object after the sharded backfill: _scorer/%s", n)
		}
	}
}

// TestGCSBadInputAmongGoodFiles: a corrupt Parquet object, a truncated gzip
// or a ragged CSV among good files fails the run (exit 3) naming the file,
// and nothing is published.
func TestGCSBadInputAmongGoodFiles(t *testing.T) {
	good := demoCSV(t, "good", 100)
	full := gz(t, []byte(strings.Join(good, "\n")+"\n"))
	ragged := append([]string(nil), good...)
	ragged[40] += ",x"
	tests := []struct {
		name, file string
		data       []byte
	}{
		{"corrupt parquet", "c.parquet", []byte("PAR1 this is not a parquet file PAR1")},
		{"truncated gzip", "c.csv.gz", full[:len(full)*2/3]},
		{"ragged csv", "c.csv", []byte(strings.Join(ragged, "\n") + "\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGCS(t)
			g.uploadDir(t, demoModel, "models", "ctr-demo/")
			g.put(t, "ads", "input/dumps/2020-09/a.csv.gz", full)
			g.put(t, "ads", "input/dumps/2020-09/b.csv", []byte(strings.Join(good, "\n")+"\n"))
			g.put(t, "ads", "input/dumps/2020-09/"+tt.file, tt.data)
			r := scorerProc(t, g.env(), append([]string{"backfill", "--month", "2020-09"}, gcsArgs()...)...)
			if r.code != exitBadInput || !strings.Contains(r.stderr, tt.file) {
				t.Fatalf("exit %d, want %d naming %s:\n%s", r.code, exitBadInput, tt.file, r.stderr)
			}
			for _, n := range g.names(t, "analytics", "scorer/") {
				if strings.HasPrefix(n, "ad_scores") || strings.HasPrefix(n, "_scorer/staging/") || strings.HasPrefix(n, "_scorer/commits/") {
					t.Errorf("a failed run left %s", n)
				}
			}
		})
	}
}

// TestGCSInputOverwrittenMidRun: a queued object replaced while a run reads
// the queue is not mixed into that run; its new generation is new work.
func TestGCSInputOverwrittenMidRun(t *testing.T) {
	g := newGCS(t)
	g.seedDemo(t)
	const replaced = "input/queue/requests-2020-09-02T12.jsonl"
	args := append([]string{"run", "--date", "2020-09-02", "--batch-size", "500"}, gcsArgs()...)
	var env []string
	for k, v := range g.env("SCORER_READ_CONCURRENCY", "1") {
		env = append(env, k+"="+v)
	}
	run, runErr := startStopped(t, "score.batch:1", env, args...)

	var v2 bytes.Buffer
	from := time.Date(2020, 9, 2, 12, 0, 0, 0, time.UTC)
	if err := demodata.WriteJSONL(&v2, demodata.New(5).Rows("v2", 300, from, from.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	g.put(t, "ads", replaced, v2.Bytes())
	if err := run.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	_ = run.Wait()
	if code := run.ProcessState.ExitCode(); code != exitOK && code != exitRetry {
		t.Fatalf("the run whose input was replaced exited %d:\n%s", code, runErr.String())
	}
	for range 2 { // score whatever is left, then find nothing to do
		mustSucceed(t, scorerProc(t, g.env(), args...))
	}

	dir := checkGCSPublished(t, g, "request_scores", "date=2020-09-02")
	var rows, ids, newIDs, oldReplaced int64
	q := fmt.Sprintf(`SELECT count(*), count(DISTINCT request_id),
		count(*) FILTER (WHERE request_id LIKE 'v2-%%'),
		count(*) FILTER (WHERE request_id LIKE 'requests-2020-09-02T12-%%')
		FROM read_parquet('%s/request_scores/*/*.parquet')`, dir)
	if err := duck(t).QueryRow(q).Scan(&rows, &ids, &newIDs, &oldReplaced); err != nil {
		t.Fatal(err)
	}
	if rows != ids {
		t.Fatalf("%d rows but %d distinct requests: duplicates", rows, ids)
	}
	if newIDs != 300 {
		t.Errorf("%d rows of the new generation, want all 300 scored once", newIDs)
	}
	if oldReplaced != 0 && oldReplaced != 2000 {
		t.Errorf("%d rows of the replaced generation: a generation was mixed or cut", oldReplaced)
	}
}
