// Command loadgen measures scorer serve on loopback (docs/performance.md):
// it starts the API in-process over a temporary input store with the demo
// model, then for each route sends calls from -clients goroutines for
// -duration (bounded also by -max-calls), each call -items demo requests
// with fresh request ids, and prints calls/s, requests/s and the p50 and
// p99 latency of each route.
//
//	go run ./internal/perf/loadgen -duration 10s -clients 8 -items 10
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adtech/scorer/internal/serve"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/kernels"
)

func main() {
	duration := flag.Duration("duration", 10*time.Second, "how long each route is loaded")
	clients := flag.Int("clients", 8, "concurrent clients")
	items := flag.Int("items", 10, "requests per call")
	maxCalls := flag.Int64("max-calls", 1_000_000, "at most this many calls per route")
	flag.Parse()
	if err := run(*duration, *clients, *items, *maxCalls); err != nil {
		log.Fatal(err)
	}
}

func run(duration time.Duration, clients, items int, maxCalls int64) error {
	ctx := context.Background()
	bu, err := bundle.Load(ctx, store.NewFileBucket("testdata/models/ctr-demo"), "")
	if err != nil {
		return fmt.Errorf("run from the repository root: %w", err)
	}
	data, err := os.ReadFile("testdata/store/queue/requests-2020-09-02T00.jsonl")
	if err != nil {
		return err
	}
	var templates []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var obj map[string]any
		if err := json.Unmarshal(line, &obj); err != nil {
			return err
		}
		templates = append(templates, obj)
	}
	dir, err := os.MkdirTemp("", "scorer-loadgen")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	s, err := serve.New(ctx, serve.Options{
		Bundle: bu, Input: store.NewFileBucket(dir), QueueDir: "queue", IDColumn: "request_id", Instance: "loadgen",
		Tokens: []string{"load"},
	})
	if err != nil {
		return err
	}
	defer s.Close()
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	fmt.Printf("scorer serve on loopback: GOMAXPROCS %d, kernel %s, %d clients, %d requests a call, %s a route (at most %d calls)\n",
		runtime.GOMAXPROCS(0), kernels.Name(), clients, items, duration, maxCalls)
	fmt.Printf("%-14s %9s %12s %14s %10s %10s\n", "route", "calls", "calls/s", "requests/s", "p50 ms", "p99 ms")
	var seq atomic.Int64
	for _, route := range []string{"/v1/requests", "/v1/predict"} {
		var mu sync.Mutex
		var lat []time.Duration
		var calls, bad atomic.Int64
		end := time.Now().Add(duration)
		start := time.Now()
		var wg sync.WaitGroup
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := ts.Client()
				var mine []time.Duration
				for time.Now().Before(end) && calls.Add(1) <= maxCalls {
					var body bytes.Buffer
					for range items {
						n := seq.Add(1)
						obj := templates[n%int64(len(templates))]
						obj2 := make(map[string]any, len(obj))
						for k, v := range obj {
							obj2[k] = v
						}
						obj2["request_id"] = fmt.Sprintf("load-%09d", n)
						line, _ := json.Marshal(obj2)
						body.Write(line)
						body.WriteByte('\n')
					}
					req, _ := http.NewRequest(http.MethodPost, ts.URL+route, &body)
					req.Header.Set("Authorization", "Bearer load")
					t0 := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						bad.Add(1)
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						bad.Add(1)
					}
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		secs := time.Since(start).Seconds()
		if bad.Load() > 0 {
			return fmt.Errorf("%s: %d calls failed", route, bad.Load())
		}
		slices.Sort(lat)
		q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
		fmt.Printf("%-14s %9d %12.0f %14.0f %10.2f %10.2f\n", route, len(lat), float64(len(lat))/secs,
			float64(len(lat)*items)/secs, q(0.5), q(0.99))
	}
	return nil
}
