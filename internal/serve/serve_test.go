package serve

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // database/sql driver "duckdb"

	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/writers/table"
)

const token = "s3cret-token"

// demoRequests are n lines of the demo queue (request objects).
func demoRequests(t testing.TB, n int) [][]byte {
	t.Helper()
	data, err := os.ReadFile("../../testdata/store/queue/requests-2020-09-02T00.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	return lines[:n]
}

func demoBundle(t testing.TB) *bundle.Bundle {
	t.Helper()
	bu, err := bundle.Load(context.Background(), store.NewFileBucket("../../testdata/models/ctr-demo"), "")
	if err != nil {
		t.Fatal(err)
	}
	return bu
}

// newTestServer serves the demo model over a fresh input store.
func newTestServer(t testing.TB, in store.Bucket) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(context.Background(), Options{
		Bundle: demoBundle(t), Input: in, QueueDir: "queue", IDColumn: "request_id", Instance: "test-0",
		Tokens: []string{"other", token}, BatchMaxWait: 5 * time.Millisecond, MaxBodyBytes: 1 << 20, MaxItems: 500,
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() { ts.Close(); s.Close() })
	return s, ts
}

func post(t testing.TB, ts *httptest.Server, path, auth string, body []byte) (int, answer, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	var a answer
	_ = json.Unmarshal(raw, &a)
	return resp.StatusCode, a, string(raw)
}

func jsonArray(lines [][]byte) []byte {
	return append(append([]byte("["), bytes.Join(lines, []byte(","))...), ']')
}

// queuedLines are the request lines in the queue folder's files.
func queuedLines(t testing.TB, in store.Bucket) []string {
	t.Helper()
	objs, err := in.List(context.Background(), "queue/")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		data, err := store.ReadAll(context.Background(), in, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Split(strings.TrimSpace(string(data)), "\n")...)
	}
	return out
}

// TestQueueThenRun: POST /v1/requests validates every item as the queue
// run reads it (bad items say which column and why, and are not queued),
// answers once the good ones are in a queue file, queues each request id
// once however often it is posted, and `scorer run` then scores exactly
// the queued requests; /v1/predict gives the scores the batch run gives
// the same requests, bit for bit.
func TestQueueThenRun(t *testing.T) {
	dir := t.TempDir()
	in := store.NewFileBucket(dir)
	_, ts := newTestServer(t, in)
	good := demoRequests(t, 120)
	bad := [][]byte{
		[]byte(`{"request_id":"bad-1","bid_price":"abc","ad_width":300}`),
		[]byte(`{"request_id":"bad-2","bid_prize":3}`),
		[]byte(`{"bid_price":1}`),
		[]byte(`[1,2]`),
	}
	body := jsonArray(append(append([][]byte{}, good[:60]...), bad...))
	code, a, raw := post(t, ts, "/v1/requests", token, body)
	if code != http.StatusOK || a.Queued != 60 || a.Rejected != 4 || len(a.Items) != 64 {
		t.Fatalf("POST: %d %s", code, raw)
	}
	for i, want := range []struct{ column, reason string }{
		{"bid_price", "not a number"}, {"bid_prize", "not a column"}, {"request_id", "missing"}, {"", "not a JSON object"},
	} {
		it := a.Items[60+i]
		if it.Status != "rejected" || it.Error == nil || it.Error.Column != want.column || !strings.Contains(it.Error.Reason, want.reason) {
			t.Errorf("bad item %d: %+v %+v, want column %q, reason with %q", i, it, it.Error, want.column, want.reason)
		}
	}
	// Durable before the answer: the 60 are in the queue folder now.
	if n := len(queuedLines(t, in)); n != 60 {
		t.Fatalf("%d lines queued when the POST answered, want 60", n)
	}

	// JSON Lines, overlapping the first call: the 60 again are duplicates.
	code, a, raw = post(t, ts, "/v1/requests", token, bytes.Join(good, []byte("\n")))
	if code != http.StatusOK || a.Queued != 60 || a.Dup != 60 {
		t.Fatalf("second POST: %d %s", code, raw)
	}
	code, a, _ = post(t, ts, "/v1/requests", token, jsonArray(good))
	if code != http.StatusOK || a.Queued != 0 || a.Dup != 120 {
		t.Fatalf("retried POST: %d, %d queued, %d duplicates; want all 120 duplicates", code, a.Queued, a.Dup)
	}
	if n := len(queuedLines(t, in)); n != 120 {
		t.Fatalf("%d lines queued, want 120", n)
	}

	// scorer run scores each queued request once.
	out := t.TempDir()
	sum, err := jobs.Score(context.Background(), jobs.ScoreJob{
		Job: jobs.JobQueue, Input: in, Output: store.NewFileBucket(out), Bundle: demoBundle(t),
		Dir: "queue", Table: "request_scores", Partition: "date=2020-09-02", Mode: table.Append,
		IDColumns: []string{"request_id"}, SkipConsumed: true, BatchSize: 4096, ReadConcurrency: 2, LeaseTTL: time.Minute,
		Duplicates: jobs.DupReject,
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.RowsRead != 120 || sum.RowsRejected != 0 || sum.Duplicates != 0 {
		t.Fatalf("queue run: %d scored, %d rejected, %d duplicates; want 120, 0, 0", sum.RowsRead, sum.RowsRejected, sum.Duplicates)
	}
	batch := batchScores(t, out, "request_scores")

	code, a, raw = post(t, ts, "/v1/predict", token, jsonArray(good))
	if code != http.StatusOK || a.Scored != 120 {
		t.Fatalf("predict: %d %s", code, raw)
	}
	for _, it := range a.Items {
		want, ok := batch[it.RequestID]
		if !ok || it.Score == nil || float32(*it.Score) != want {
			t.Fatalf("request %s: online %v, batch %v", it.RequestID, it.Score, want)
		}
	}
}

// batchScores reads the published scores of a queue table with DuckDB,
// by request id.
func batchScores(t *testing.T, out, tbl string) map[string]float32 {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	rows, err := db.Query(fmt.Sprintf("SELECT request_id, score FROM read_parquet('%s/%s/*/*.parquet')", out, tbl))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	m := map[string]float32{}
	for rows.Next() {
		var id string
		var score float32
		if err := rows.Scan(&id, &score); err != nil {
			t.Fatal(err)
		}
		m[id] = score
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// Calls without a valid bearer token, with too large or malformed bodies
// are refused before anything is queued; the health, readiness, metrics
// and OpenAPI endpoints need no token.
func TestRefusals(t *testing.T) {
	in := store.NewFileBucket(t.TempDir())
	_, ts := newTestServer(t, in)
	one := jsonArray(demoRequests(t, 1))
	for name, tc := range map[string]struct {
		auth string
		body []byte
		code int
	}{
		"no token":       {"", one, http.StatusUnauthorized},
		"wrong token":    {"s3cret-tokem", one, http.StatusUnauthorized},
		"a prefix":       {"s3cret", one, http.StatusUnauthorized},
		"empty body":     {token, nil, http.StatusBadRequest},
		"not json":       {token, []byte("hello"), http.StatusBadRequest},
		"broken array":   {token, []byte(`[{"request_id":"x"}`), http.StatusBadRequest},
		"too many items": {token, jsonArray(demoRequests(t, 501)), http.StatusBadRequest},
		"too large":      {token, bytes.Repeat([]byte(" "), 2<<20), http.StatusRequestEntityTooLarge},
		"all rejected":   {token, []byte(`[{"request_id":"x","position":"first"}]`), http.StatusUnprocessableEntity},
	} {
		t.Run(name, func(t *testing.T) {
			if code, _, raw := post(t, ts, "/v1/requests", tc.auth, tc.body); code != tc.code {
				t.Fatalf("code %d (%s), want %d", code, raw, tc.code)
			}
		})
	}
	if n := len(queuedLines(t, in)); n != 0 {
		t.Fatalf("%d lines queued by refused calls", n)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json"} {
		resp, err := ts.Client().Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
	resp, err := ts.Client().Get(ts.URL + "/v1/requests")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/requests: %d, want 405", resp.StatusCode)
	}
}

// FuzzRequests: no body makes the decoders (the body's split into items,
// then the readers' JSON Lines decoder with the model's schema) panic, and
// every answer is a verdict in JSON. It calls /v1/predict, which reads a
// body exactly as /v1/requests does, without writing a queue file per
// input (fsync would slow the fuzzing down a hundredfold).
func FuzzRequests(f *testing.F) {
	for _, seed := range []string{
		`[{"request_id":"a","bid_price":1.5,"served_at":"2020-09-02T01:02:03Z"}]`,
		"{\"request_id\":\"b\"}\n{\"request_id\":\"c\",\"position\":2}",
		`[]`, `[null]`, `{"request_id":1e400}`, `[{"request_id":"d","ad_width":1e20}]`, "\xff\xfe",
	} {
		f.Add([]byte(seed))
	}
	s, err := New(context.Background(), Options{
		Bundle: demoBundle(f), Input: store.NewFileBucket(f.TempDir()), QueueDir: "queue", IDColumn: "request_id",
		Instance: "fuzz", Tokens: []string{token},
	})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/predict", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusUnprocessableEntity:
		default:
			t.Fatalf("%d %s", rec.Code, rec.Body.String())
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("answer is not JSON: %q", rec.Body.String())
		}
	})
}
