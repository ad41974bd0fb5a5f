package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// servedProcess is a `scorer serve` process of the test.
type servedProcess struct {
	cmd  *exec.Cmd
	url  string
	logs *bytes.Buffer
}

// startServe starts the scorer binary's serve on a free port over the
// input store in and waits until it is ready.
func startServe(t *testing.T, in string) *servedProcess {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	logs := &bytes.Buffer{}
	cmd := exec.Command(scorerBin, "serve", "--input", in, "--model", demoModel, "--addr", addr, "--log-format", "json")
	cmd.Env = append(os.Environ(), "SCORER_SERVE_TOKENS=kill-test", "SCORER_SERVE_BATCH_MAX_WAIT=20ms")
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &servedProcess{cmd: cmd, url: "http://" + addr, logs: logs}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(p.url + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("scorer serve not ready: %v\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// postBatch posts requests and reports whether the server acknowledged
// them (every item queued or duplicate).
func postBatch(client *http.Client, url string, body []byte) bool {
	req, err := http.NewRequest(http.MethodPost, url+"/v1/requests", bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Authorization", "Bearer kill-test")
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer func() { _ = resp.Body.Close() }()
	var a struct {
		Items []struct{ Status string } `json:"items"`
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &a) != nil {
		return false
	}
	for _, it := range a.Items {
		if it.Status != "queued" && it.Status != "duplicate" {
			return false
		}
	}
	return true
}

// TestServeSIGKILLDuringIntake: clients post requests while the server is
// killed with SIGKILL; the server is restarted, the clients retry what was
// not acknowledged, and `scorer run` (keeping duplicates, so that a request
// queued twice would show) scores every acknowledged request exactly once,
// and no request twice.
func TestServeSIGKILLDuringIntake(t *testing.T) {
	in, out := t.TempDir(), t.TempDir()
	data, err := os.ReadFile(filepath.Join(demoStore, "queue", "requests-2020-09-02T00.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	templates := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	// Batches of 10 requests with ids of their own.
	const clients, perBatch = 4, 10
	batchOf := func(c, n int) []byte {
		var lines [][]byte
		for k := range perBatch {
			var obj map[string]any
			if err := json.Unmarshal(templates[(n*perBatch+k)%len(templates)], &obj); err != nil {
				t.Fatal(err)
			}
			obj["request_id"] = fmt.Sprintf("kill-%d-%04d-%02d", c, n, k)
			line, _ := json.Marshal(obj)
			lines = append(lines, line)
		}
		return bytes.Join(lines, []byte("\n"))
	}

	srv := startServe(t, in)
	var mu sync.Mutex
	acked := map[string]bool{} // batch names acknowledged
	var failed []string        // batch names to retry
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for n := 0; ctx.Err() == nil; n++ {
				name := fmt.Sprintf("%d/%d", c, n)
				ok := postBatch(client, srv.url, batchOf(c, n))
				mu.Lock()
				if ok {
					acked[name] = true
				} else {
					failed = append(failed, name)
				}
				mu.Unlock()
				if !ok {
					return // the server is gone
				}
			}
		}()
	}
	// Kill it once a good number of batches went through, calls in flight.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 40 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d batches acknowledged in a minute\n%s", n, srv.logs.String())
		}
	}
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = srv.cmd.Wait()
	stop()
	wg.Wait()

	// Restart; retry what was not acknowledged, and a few that were.
	srv = startServe(t, in)
	client := &http.Client{Timeout: 10 * time.Second}
	retry := append([]string(nil), failed...)
	for name := range acked {
		if len(retry) > len(failed)+5 {
			break
		}
		retry = append(retry, name)
	}
	for _, name := range retry {
		var c, n int
		if _, err := fmt.Sscanf(name, "%d/%d", &c, &n); err != nil {
			t.Fatal(err)
		}
		if !postBatch(client, srv.url, batchOf(c, n)) {
			t.Fatalf("retry of batch %s not acknowledged\n%s", name, srv.logs.String())
		}
		acked[name] = true
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, srv.logs.String())
	}

	// Every acknowledged request scored once, none twice.
	r := scorer(t, map[string]string{"SCORER_QUEUE_DUPLICATES": "keep_all"},
		"run", "--date", "2020-09-02", "--input", in, "--output", out, "--model", demoModel, "--progress", "off")
	if r.code != 0 {
		t.Fatalf("scorer run: exit %d\n%s", r.code, r.stderr)
	}
	rows, err := duck(t).Query(fmt.Sprintf("SELECT request_id, count(*) FROM read_parquet('%s/request_scores/*/*.parquet') GROUP BY request_id", out))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	scored := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		scored[id] = n
	}
	for id, n := range scored {
		if n != 1 {
			t.Errorf("request %s scored %d times", id, n)
		}
	}
	want := 0
	for name := range acked {
		var c, n int
		_, _ = fmt.Sscanf(name, "%d/%d", &c, &n)
		for k := range perBatch {
			want++
			if id := fmt.Sprintf("kill-%d-%04d-%02d", c, n, k); scored[id] != 1 {
				t.Fatalf("acknowledged request %s scored %d times", id, scored[id])
			}
		}
	}
	t.Logf("%d batches acknowledged before the kill or on retry (%d retried); %d requests scored, %d acknowledged",
		len(acked), len(failed), len(scored), want)
	if !strings.Contains(srv.logs.String(), "queued request ids loaded") {
		t.Errorf("the restarted server did not load the queued ids:\n%s", srv.logs.String())
	}
}
