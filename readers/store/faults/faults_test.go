package faults_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/adtech/scorer/readers/store/faults"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var payload = bytes.Repeat([]byte("0123456789"), 1000)

// server answers every request with payload and counts the requests it got.
func server(t *testing.T) (*httptest.Server, *atomic.Int64, *faults.Transport, *http.Client) {
	t.Helper()
	var got atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got.Add(1)
		_, _ = w.Write(payload)
	}))
	base := &http.Transport{}
	ft := faults.New(base, 42)
	t.Cleanup(func() {
		base.CloseIdleConnections()
		ts.Close()
	})
	return ts, &got, ft, &http.Client{Transport: ft}
}

func get(ctx context.Context, c *http.Client, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = res.Body.Close() }()
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, body, err
}

func TestNthAndTimes(t *testing.T) {
	ts, _, ft, c := server(t)
	ctx := context.Background()
	ft.Add(faults.Rule{Method: http.MethodGet, Match: `^/a`, Nth: 2, Fault: faults.Status(503)})
	ft.Add(faults.Rule{Match: `^/b`, Times: 2, Fault: faults.Status(429)})
	var codes []int
	for _, p := range []string{"/a", "/a", "/a", "/b", "/b", "/b"} {
		code, _, err := get(ctx, c, ts.URL+p)
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, code)
	}
	want := []int{200, 503, 200, 429, 429, 200}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("codes = %v, want %v", codes, want)
		}
	}
	if calls, faulted := ft.Count(http.MethodGet, `^/b`); calls != 3 || faulted != 2 {
		t.Errorf("Count(/b) = %d, %d; want 3, 2", calls, faulted)
	}
}

func TestProbabilityIsSeeded(t *testing.T) {
	run := func() []int {
		ts, _, ft, c := server(t)
		ft.Add(faults.Rule{Prob: 0.3, Fault: faults.Status(429)})
		var codes []int
		for range 40 {
			code, _, err := get(context.Background(), c, ts.URL)
			if err != nil {
				t.Fatal(err)
			}
			codes = append(codes, code)
		}
		return codes
	}
	a, b := run(), run()
	n := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different faults: %v vs %v", a, b)
		}
		if a[i] == 429 {
			n++
		}
	}
	if n == 0 || n == len(a) {
		t.Errorf("%d of %d calls faulted at p=0.3", n, len(a))
	}
}

func TestBodyFaults(t *testing.T) {
	ts, _, ft, c := server(t)
	ctx := context.Background()

	ft.Add(faults.Rule{Nth: 1, Fault: faults.Truncate(1234)})
	_, body, err := get(ctx, c, ts.URL)
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(body) != 1234 {
		t.Errorf("truncated body: %d bytes, %v", len(body), err)
	}

	ft.Reset()
	ft.Add(faults.Rule{Nth: 1, Fault: faults.ResetBody(100)})
	_, body, err = get(ctx, c, ts.URL)
	if err == nil || !strings.Contains(err.Error(), "connection reset") || len(body) != 100 {
		t.Errorf("reset body: %d bytes, %v", len(body), err)
	}

	ft.Reset()
	ft.Add(faults.Rule{Nth: 1, Fault: faults.StallBody(10)})
	sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, body, err = get(sctx, c, ts.URL)
	if !errors.Is(err, context.DeadlineExceeded) || len(body) != 10 {
		t.Errorf("stalled body: %d bytes, %v", len(body), err)
	}

	// Untouched calls pass whole.
	if _, body, err := get(ctx, c, ts.URL); err != nil || !bytes.Equal(body, payload) {
		t.Errorf("clean call: %d bytes, %v", len(body), err)
	}
}

func TestRequestFaults(t *testing.T) {
	ts, got, ft, c := server(t)
	ctx := context.Background()

	ft.Add(faults.Rule{Nth: 1, Fault: faults.Reset()})
	if _, _, err := get(ctx, c, ts.URL); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("reset: %v", err)
	}
	if got.Load() != 0 {
		t.Errorf("a reset request reached the server")
	}

	ft.Reset()
	ft.Add(faults.Rule{Nth: 1, Fault: faults.Stall(0)})
	sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, _, err := get(sctx, c, ts.URL); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("stall: %v", err)
	}
	if got.Load() != 0 {
		t.Errorf("a stalled request reached the server")
	}

	ft.Reset()
	ft.Add(faults.Rule{Nth: 1, Fault: faults.Stall(20 * time.Millisecond)})
	start := time.Now()
	if code, body, err := get(ctx, c, ts.URL); err != nil || code != 200 || !bytes.Equal(body, payload) {
		t.Errorf("slow request: %d, %d bytes, %v", code, len(body), err)
	}
	if time.Since(start) < 20*time.Millisecond || got.Load() != 1 {
		t.Errorf("slow request not held, or not forwarded")
	}

	ft.Reset()
	ft.Add(faults.Rule{Method: http.MethodPost, Fault: faults.ForwardThenStatus(503)})
	res, err := c.Post(ts.URL, "text/plain", strings.NewReader("write"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if res.StatusCode != 503 || got.Load() != 2 {
		t.Errorf("forward then 503: client got %d, server got %d requests; want 503 and 2", res.StatusCode, got.Load())
	}
	if !strings.Contains(string(body), `"code":503`) {
		t.Errorf("error body is not GCS-shaped: %s", body)
	}

	ft.Reset()
	ft.Add(faults.Rule{Fault: faults.StatusMessage(404, "The specified bucket does not exist.")})
	if code, body, _ := get(ctx, c, ts.URL); code != 404 || !strings.Contains(string(body), "bucket does not exist") {
		t.Errorf("status with message: %d %s", code, body)
	}
}
