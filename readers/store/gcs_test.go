package store_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"go.uber.org/goleak"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/readers/store/faults"
	"github.com/adtech/scorer/readers/store/storetest"
)

func TestMain(m *testing.M) {
	// fake-gcs-server links OpenCensus (through Pub/Sub), whose init starts
	// a worker that lives for the process.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

const testBucket = "scorer-test"

// gcsEnv is an in-process fake GCS (fake-gcs-server, memory backend) behind
// a loopback HTTP server, and a client whose transport injects faults.
type gcsEnv struct {
	server  *fakestorage.Server
	url     string
	faults  *faults.Transport
	client  *storage.Client
	retries *retryLog
	uploads *uploadLog
}

// uploadLog keeps the upload requests the server received.
type uploadLog struct {
	mu   sync.Mutex
	reqs []uploadRequest
}

type uploadRequest struct {
	uri  string
	hash string // X-Goog-Hash
	body []byte
}

func (l *uploadLog) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/upload/") {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			l.mu.Lock()
			l.reqs = append(l.reqs, uploadRequest{uri: r.URL.RequestURI(), hash: r.Header.Get("X-Goog-Hash"), body: body})
			l.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

func (l *uploadLog) all() []uploadRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]uploadRequest(nil), l.reqs...)
}

// retryLog records OnRetry calls.
type retryLog struct {
	mu   sync.Mutex
	errs map[string][]error
}

func (l *retryLog) add(op string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.errs == nil {
		l.errs = map[string][]error{}
	}
	l.errs[op] = append(l.errs[op], err)
}

func (l *retryLog) count(op string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.errs[op])
}

// countStatus counts the retries of op whose error was an HTTP answer with
// the given status: the retries caused by faults of that kind.
func (l *retryLog) countStatus(op string, code int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, err := range l.errs[op] {
		var e *googleapi.Error
		if errors.As(err, &e) && e.Code == code {
			n++
		}
	}
	return n
}

func (l *retryLog) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.errs {
		n += len(e)
	}
	return n
}

func (l *retryLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprint(l.errs)
}

func newGCSEnv(t *testing.T) *gcsEnv {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: testBucket})
	uploads := &uploadLog{}
	ts := httptest.NewServer(uploads.wrap(resumableSessions(rewritePreconditions(srv, srv.HTTPHandler()))))
	base := &http.Transport{MaxIdleConnsPerHost: 16}
	ft := faults.New(base, 1)
	client, err := storage.NewClient(context.Background(),
		option.WithEndpoint(ts.URL+"/storage/v1/"),
		option.WithHTTPClient(&http.Client{Transport: ft}),
		option.WithoutAuthentication(),
		storage.WithJSONReads(),
		storage.WithDisabledClientMetrics(),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.Close()
		base.CloseIdleConnections()
		ts.Close()
		srv.Stop()
	})
	return &gcsEnv{server: srv, url: ts.URL, faults: ft, client: client, retries: &retryLog{}, uploads: uploads}
}

// testOptions are small and fast: 256 KiB chunks, parallel reads from 1 MiB
// in 256 KiB parts, millisecond backoffs.
func (e *gcsEnv) testOptions() store.GCSOptions {
	o := store.DefaultGCSOptions()
	o.MaxAttempts = 8
	o.InitialBackoff = time.Millisecond
	o.MaxBackoff = 10 * time.Millisecond
	o.CallTimeout = 5 * time.Second
	o.ChunkSize = 256 << 10
	o.ParallelReadThreshold = 1 << 20
	o.ParallelReadPartSize = 256 << 10
	o.ParallelReads = 3
	o.OnRetry = e.retries.add
	return o
}

func (e *gcsEnv) bucket(t *testing.T, prefix string, opts store.GCSOptions) store.Bucket {
	t.Helper()
	b, err := store.NewGCSBucket(e.client, testBucket, prefix, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rewritePreconditions enforces ifGenerationMatch on the destination of
// copies (rewriteTo/copyTo), which fake-gcs-server v1.56 ignores (it creates
// the copy with no conditions); real GCS enforces it.
func rewritePreconditions(srv *fakestorage.Server, next http.Handler) http.Handler {
	re := regexp.MustCompile(`^/storage/v1/b/[^/]+/o/[^/]+/(?:rewriteTo|copyTo)/b/([^/]+)/o/([^/]+)$`)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := re.FindStringSubmatch(r.URL.EscapedPath())
		want := r.URL.Query().Get("ifGenerationMatch")
		if m != nil && want != "" {
			bucket, _ := url.PathUnescape(m[1])
			name, _ := url.PathUnescape(m[2])
			gen, _ := strconv.ParseInt(want, 10, 64)
			var cur int64
			if obj, err := srv.GetObject(bucket, name); err == nil {
				cur = obj.Generation
			}
			if cur != gen {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusPreconditionFailed)
				_, _ = fmt.Fprint(w, `{"error":{"code":412,"message":"conditionNotMet","errors":[{"reason":"conditionNotMet"}]}}`)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// resumableSessions makes fake-gcs-server's resumable uploads idempotent,
// as GCS's are. fake-gcs-server v1.56 appends every chunk it receives and
// forgets a session once complete (404 after): a chunk cut by its deadline
// after the server took it (a loaded machine) and sent again would be
// stored twice, or, if it was the last, answered 404, which the client reads
// as a missing bucket. Here requests of one session are served one at a
// time; bytes the session already holds are dropped from a resent chunk
// (Content-Range); a finished session answers with its final answer again.
func resumableSessions(next http.Handler) http.Handler {
	type session struct {
		mu       sync.Mutex
		received int64
		done     *httptest.ResponseRecorder
	}
	var (
		mu       sync.Mutex
		sessions = map[string]*session{}
	)
	replay := func(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}
	rangeRe := regexp.MustCompile(`^bytes (\d+)-(\d+)/(\d+|\*)$`)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("upload_id")
		if id == "" {
			next.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		s := sessions[id]
		if s == nil {
			s = &session{}
			sessions[id] = s
		}
		mu.Unlock()
		s.mu.Lock()
		defer s.mu.Unlock()
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if s.done != nil {
			replay(w, s.done)
			return
		}
		end := int64(-1)
		if m := rangeRe.FindStringSubmatch(r.Header.Get("Content-Range")); m != nil {
			first, _ := strconv.ParseInt(m[1], 10, 64)
			end, _ = strconv.ParseInt(m[2], 10, 64)
			if first < s.received {
				skip := min(s.received-first, int64(len(body)))
				body = body[skip:]
				r.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%s", first+skip, end, m[3]))
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		if rec.Code/100 == 2 {
			if end >= 0 {
				s.received = max(s.received, end+1)
			}
			if rec.Header().Get("X-Http-Status-Code-Override") == "" {
				s.done = rec
			}
		}
		replay(w, rec)
	})
}

func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func read(ctx context.Context, b store.Bucket, key string, gen int64) ([]byte, error) {
	r, err := b.NewReader(ctx, key, gen)
	if err != nil {
		return nil, err
	}
	defer func() { _ = r.Close() }()
	return io.ReadAll(r)
}

func TestGCSBucket(t *testing.T) {
	t.Run("root", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Bucket {
			e := newGCSEnv(t)
			return e.bucket(t, "", e.testOptions())
		}, storetest.KeepsMetadata())
	})
	t.Run("prefix, one-stream reads, default chunks", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Bucket {
			e := newGCSEnv(t)
			o := e.testOptions()
			o.ChunkSize = store.DefaultGCSOptions().ChunkSize
			o.ParallelReadThreshold = 0
			return e.bucket(t, "/some/prefix/", o)
		}, storetest.KeepsMetadata())
	})
}

func TestGCSPrefixAndURI(t *testing.T) {
	e := newGCSEnv(t)
	ctx := context.Background()
	b := e.bucket(t, "runs/2026", e.testOptions())
	if got, want := b.URI("a/b"), "gs://"+testBucket+"/runs/2026/a/b"; got != want {
		t.Errorf("URI = %q, want %q", got, want)
	}
	if err := store.WriteAll(ctx, b, "a/b", []byte("x"), store.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.server.GetObject(testBucket, "runs/2026/a/b"); err != nil {
		t.Errorf("object not under the prefix: %v", err)
	}
	// A folder placeholder and an object outside the prefix are not listed.
	e.server.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: testBucket, Name: "runs/2026/a/"}})
	e.server.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: testBucket, Name: "runs/20260/x"}, Content: []byte("y")})
	objs, err := b.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Key != "a/b" {
		t.Errorf("List = %+v, want only a/b", objs)
	}
}

func TestGCSOpenWithEmulator(t *testing.T) {
	e := newGCSEnv(t)
	t.Setenv("STORAGE_EMULATOR_HOST", e.url)
	ctx := context.Background()
	b, err := store.Open(ctx, "gs://"+testBucket+"/pre/fix")
	if err != nil {
		t.Fatal(err)
	}
	if got := b.URI("k"); got != "gs://"+testBucket+"/pre/fix/k" {
		t.Errorf("URI = %q", got)
	}
	if err := store.WriteAll(ctx, b, "k", []byte("hello"), store.WriteOptions{IfAbsent: true}); err != nil {
		t.Fatal(err)
	}
	if got, err := read(ctx, b, "k", 0); err != nil || string(got) != "hello" {
		t.Fatalf("read = %q, %v", got, err)
	}
	if _, err := store.Open(ctx, "gs:///nobucket"); err == nil {
		t.Error("Open(gs:///nobucket) succeeded")
	}

	// An opener with configured options, as wiring registers it.
	u, _ := url.Parse("gs://" + testBucket + "/pre/fix")
	if _, err := store.GCSOpener(store.GCSOptions{})(ctx, u); err == nil {
		t.Error("GCSOpener accepted zero options")
	}
	o := e.testOptions()
	o.ChunkSize = 1 << 20
	b2, err := store.GCSOpener(o)(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := read(ctx, b2, "k", 0); err != nil || string(got) != "hello" {
		t.Fatalf("read through a configured opener = %q, %v", got, err)
	}
}

// 429 on 30% of upload requests: every write succeeds with the right
// content, and every injected 429 was retried once.
func TestGCSWritesRetryThrottling(t *testing.T) {
	e := newGCSEnv(t)
	ctx := context.Background()
	o := e.testOptions()
	o.MaxAttempts = 20 // 0.3^20: no write runs out of attempts, whatever the order of draws
	// No deadline is under test here: a loaded machine must not turn a
	// slow upload into a retry (or, at the emulator, a resumable session
	// finished twice).
	o.CallTimeout = time.Minute
	b := e.bucket(t, "", o)
	e.faults.Add(faults.Rule{Method: http.MethodPost, Match: `^/upload/`, Prob: 0.3, Fault: faults.Status(http.StatusTooManyRequests)})

	sizes := []int{0, 1, 1000, 256<<10 - 1, 256 << 10, 256<<10 + 1, 700 << 10, 1<<20 + 3}
	type obj struct {
		key  string
		data []byte
		opts store.WriteOptions
	}
	var objs []obj
	for i := range 24 {
		size := sizes[i%len(sizes)]
		opts := store.WriteOptions{IfAbsent: i%2 == 0, Metadata: map[string]string{"i": strconv.Itoa(i)}}
		objs = append(objs, obj{fmt.Sprintf("w/%02d", i), randomBytes(uint64(i), size), opts})
	}
	errs := make(chan error, len(objs))
	var wg sync.WaitGroup
	for _, o := range objs {
		wg.Go(func() { errs <- store.WriteAll(ctx, b, o.key, o.data, o.opts) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("write: %v", err)
		}
	}
	for _, o := range objs {
		got, err := read(ctx, b, o.key, 0)
		if err != nil || !bytes.Equal(got, o.data) {
			t.Errorf("%s: read back %d bytes (%v), want the %d written", o.key, len(got), err, len(o.data))
		}
	}
	calls, faulted := e.faults.Count(http.MethodPost, `^/upload/`)
	if faulted == 0 {
		t.Fatalf("no fault injected in %d upload requests", calls)
	}
	// Count the retries that the injected 429s caused: one each. (A
	// retry for another reason, e.g. a reset connection, is no fault of
	// the code under test.)
	if got := e.retries.countStatus("write", http.StatusTooManyRequests); got != faulted {
		t.Errorf("%d write retries after a 429 reported, %d 429s injected (%d upload requests; all retries: %v)", got, faulted, calls, e.retries)
	}
	t.Logf("%d upload requests, %d answered 429, %d retries", calls, faulted, e.retries.count("write"))
}

// A read broken after 256 KiB is resumed from there, pinned to the
// generation, whoever resumes it (the library reopens once itself; when
// that fails too, this package does).
func TestGCSReadResumes(t *testing.T) {
	data := randomBytes(3, 1<<20+777)
	for _, tc := range []struct {
		name    string
		rules   []faults.Rule
		retries int // reported by this package at least
	}{
		{"truncated body", []faults.Rule{{Method: http.MethodGet, Match: `alt=media`, Nth: 1, Fault: faults.Truncate(256 << 10)}}, 0},
		{"connection reset", []faults.Rule{{Method: http.MethodGet, Match: `alt=media`, Nth: 1, Fault: faults.ResetBody(256 << 10)}}, 0},
		{"reopen fails twice", []faults.Rule{
			{Method: http.MethodGet, Match: `alt=media`, Nth: 1, Fault: faults.Truncate(256 << 10)},
			{Method: http.MethodGet, Match: `alt=media`, Nth: 2, Fault: faults.Status(http.StatusServiceUnavailable)},
			{Method: http.MethodGet, Match: `alt=media`, Nth: 3, Fault: faults.Reset()},
		}, 2},
		{"stalled body", []faults.Rule{{Method: http.MethodGet, Match: `alt=media`, Nth: 1, Fault: faults.StallBody(256 << 10)}}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newGCSEnv(t)
			ctx := context.Background()
			o := e.testOptions()
			o.ParallelReadThreshold = 0
			// The object is written without the short deadline under
			// test: on a loaded machine a 256 KiB chunk can take longer
			// than 300 ms, and the emulator answers the retry of a
			// finished resumable session with 404.
			info, err := store.Put(ctx, e.bucket(t, "", o), "big", data, store.WriteOptions{})
			o.CallTimeout = 300 * time.Millisecond
			b := e.bucket(t, "", o)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range tc.rules {
				e.faults.Add(r)
			}
			got, err := read(ctx, b, "big", 0)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes that differ from the %d written", len(got), len(data))
			}
			if n := e.retries.count("read"); n < tc.retries {
				t.Errorf("%d read retries reported, want at least %d", n, tc.retries)
			}
			var resumed bool
			for _, c := range e.faults.Calls() {
				if c.Method != http.MethodGet || !strings.Contains(c.URI, "alt=media") || c.Range == "" {
					continue
				}
				if !strings.Contains(c.URI, "generation="+strconv.FormatInt(info.Generation, 10)) {
					t.Errorf("resumed read not pinned to generation %d: %s", info.Generation, c.URI)
				}
				if strings.HasPrefix(c.Range, fmt.Sprintf("bytes=%d-", 256<<10)) {
					resumed = true
				}
			}
			if !resumed {
				t.Errorf("no read resumed at 256 KiB: %+v", e.faults.Calls())
			}
		})
	}
}

// A read pinned to a generation fails with ErrNotExist once the object is
// replaced, also when the replacement happens in the middle of the read.
func TestGCSPinnedReads(t *testing.T) {
	e := newGCSEnv(t)
	ctx := context.Background()
	o := e.testOptions()
	o.ParallelReadThreshold = 0
	b := e.bucket(t, "", o)
	old, err := store.Put(ctx, b, "k", randomBytes(1, 512<<10), store.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Put(ctx, b, "k", []byte("new"), store.WriteOptions{IfGeneration: old.Generation}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.NewReader(ctx, "k", old.Generation); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("read of a replaced generation: %v, want ErrNotExist", err)
	}

	// Mid-read: the first response is cut at 100 KiB, the object replaced,
	// the resume must not splice the new version in.
	cur, err := store.Put(ctx, b, "m", randomBytes(2, 512<<10), store.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.faults.Add(faults.Rule{Method: http.MethodGet, Match: `alt=media`, Nth: 1, Fault: faults.Truncate(100 << 10)})
	r, err := b.NewReader(ctx, "m", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	if _, err := io.ReadFull(r, make([]byte, 50<<10)); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Put(ctx, b, "m", randomBytes(3, 512<<10), store.WriteOptions{IfGeneration: cur.Generation}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("read across a replacement: %v, want ErrNotExist", err)
	}
}

// A stalled upload request is cut at CallTimeout and retried: a one-request
// object by this package, a chunk of a resumable upload by the library.
func TestGCSStalledUpload(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		match string
		nth   int
		// retries reported to OnRetry: a chunk cut by the library's
		// ChunkTransferTimeout is retried without asking.
		retries int
	}{
		{"one request", 100 << 10, `^/upload/.*uploadType=multipart`, 1, 1},
		{"second chunk of a resumable upload", 900 << 10, `upload_id=`, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newGCSEnv(t)
			ctx := context.Background()
			o := e.testOptions()
			o.CallTimeout = 300 * time.Millisecond
			b := e.bucket(t, "", o)
			e.faults.Add(faults.Rule{Method: http.MethodPost, Match: tc.match, Nth: tc.nth, Fault: faults.Stall(0)})
			data := randomBytes(9, tc.size)
			// The stall holds its request until the call's deadline
			// ends it (it never reaches the server): the write
			// returning at all proves the deadline cut it.
			if err := store.WriteAll(ctx, b, "s", data, store.WriteOptions{IfAbsent: true}); err != nil {
				t.Fatal(err)
			}
			calls, faulted := e.faults.Count(http.MethodPost, tc.match)
			if faulted != 1 {
				t.Fatalf("%d stalls injected, want 1", faulted)
			}
			// Retries are counted by the requests the transport saw: on a
			// loaded machine another request may also outlive the 300 ms
			// deadline and be retried, which is the code working.
			want := tc.retries
			if tc.retries > 0 {
				want = calls - 1
			}
			if got := e.retries.count("write"); got != want || got < tc.retries {
				t.Errorf("%d write retries reported, want %d (at least %d; %d requests): %v", got, want, tc.retries, calls, e.retries)
			}
			got, err := read(ctx, b, "s", 0)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes (%v), want the %d written", len(got), err, len(data))
			}
		})
	}
}

// "Forward then 503": the write is applied but the client sees a failure and
// retries; the retry's 412 is recognised as our own write. A different
// object in the way is still a conflict.
func TestGCSOwnWriteRecognised(t *testing.T) {
	ctx := context.Background()
	lost := faults.Rule{Method: http.MethodPost, Match: `^/upload/`, Nth: 1, Fault: faults.ForwardThenStatus(http.StatusServiceUnavailable)}
	md := map[string]string{"run_id": "r1"}

	t.Run("own IfAbsent write", func(t *testing.T) {
		e := newGCSEnv(t)
		b := e.bucket(t, "", e.testOptions())
		e.faults.Add(lost)
		info, err := store.Put(ctx, b, "commit.json", []byte(`{"run":"r1"}`), store.WriteOptions{IfAbsent: true, Metadata: md})
		if err != nil {
			t.Fatalf("write whose answer was lost: %v", err)
		}
		if calls, _ := e.faults.Count(http.MethodPost, `^/upload/`); calls != 2 || e.retries.count("write") != 1 {
			t.Errorf("%d upload requests, %d retries; want 2 and 1", calls, e.retries.count("write"))
		}
		st, err := b.Stat(ctx, "commit.json")
		if err != nil || st.Generation != info.Generation || info.Generation == 0 {
			t.Errorf("Put reported generation %d, Stat %d (%v)", info.Generation, st.Generation, err)
		}
	})

	t.Run("own IfGeneration write", func(t *testing.T) {
		e := newGCSEnv(t)
		b := e.bucket(t, "", e.testOptions())
		first, err := store.Put(ctx, b, "lease", []byte("a"), store.WriteOptions{IfAbsent: true})
		if err != nil {
			t.Fatal(err)
		}
		e.faults.Add(lost)
		if _, err := store.Put(ctx, b, "lease", []byte("b"), store.WriteOptions{IfGeneration: first.Generation, Metadata: md}); err != nil {
			t.Fatalf("write whose answer was lost: %v", err)
		}
	})

	for _, tc := range []struct {
		name     string
		existing []byte
		md       map[string]string
	}{
		{"different bytes", []byte(`{"run":"r0"}`), map[string]string{"run_id": "r0"}},
		{"same bytes, another run's metadata", []byte(`{"run":"r1"}`), map[string]string{"run_id": "r0"}},
	} {
		t.Run("conflict: "+tc.name, func(t *testing.T) {
			e := newGCSEnv(t)
			b := e.bucket(t, "", e.testOptions())
			if err := store.WriteAll(ctx, b, "commit.json", tc.existing, store.WriteOptions{Metadata: tc.md}); err != nil {
				t.Fatal(err)
			}
			e.faults.Add(lost)
			err := store.WriteAll(ctx, b, "commit.json", []byte(`{"run":"r1"}`), store.WriteOptions{IfAbsent: true, Metadata: md})
			if !errors.Is(err, store.ErrPrecondition) {
				t.Fatalf("write over another object: %v, want ErrPrecondition", err)
			}
			if !strings.Contains(err.Error(), "gs://"+testBucket+"/commit.json") {
				t.Errorf("error does not name the object: %v", err)
			}
		})
	}

	t.Run("own IfAbsent copy", func(t *testing.T) {
		e := newGCSEnv(t)
		b := e.bucket(t, "", e.testOptions())
		if err := store.WriteAll(ctx, b, "staging/part", randomBytes(4, 5000), store.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		e.faults.Add(faults.Rule{Method: http.MethodPost, Match: `/rewriteTo/`, Nth: 1, Fault: faults.ForwardThenStatus(http.StatusBadGateway)})
		if err := b.Copy(ctx, "staging/part", "table/part", store.WriteOptions{IfAbsent: true}); err != nil {
			t.Fatalf("copy whose answer was lost: %v", err)
		}
		if err := store.WriteAll(ctx, b, "other", []byte("x"), store.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		e.faults.Add(faults.Rule{Method: http.MethodPost, Match: `/rewriteTo/`, Nth: 1, Fault: faults.ForwardThenStatus(http.StatusBadGateway)})
		if err := b.Copy(ctx, "other", "table/part", store.WriteOptions{IfAbsent: true}); !errors.Is(err, store.ErrPrecondition) {
			t.Fatalf("copy over another object: %v, want ErrPrecondition", err)
		}
	})

	t.Run("retried delete", func(t *testing.T) {
		e := newGCSEnv(t)
		b := e.bucket(t, "", e.testOptions())
		if err := store.WriteAll(ctx, b, "d", []byte("x"), store.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		e.faults.Add(faults.Rule{Method: http.MethodDelete, Nth: 1, Fault: faults.ForwardThenStatus(http.StatusServiceUnavailable)})
		if err := b.Delete(ctx, "d"); err != nil {
			t.Fatalf("delete whose answer was lost: %v", err)
		}
		if err := b.Delete(ctx, "d"); !errors.Is(err, store.ErrNotExist) {
			t.Fatalf("delete of an absent object: %v, want ErrNotExist", err)
		}
	})
}

// Permanent errors fail at the first attempt, naming bucket and key.
func TestGCSFailFast(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		rule   faults.Rule
		op     func(b store.Bucket) error
		want   []string
		notErr error
	}{
		{
			name: "403 on stat",
			rule: faults.Rule{Method: http.MethodGet, Fault: faults.Status(http.StatusForbidden)},
			op:   func(b store.Bucket) error { _, err := b.Stat(ctx, "a/k"); return err },
			want: []string{"gs://" + testBucket + "/a/k", "permission denied"},
		},
		{
			name: "403 on write",
			rule: faults.Rule{Method: http.MethodPost, Fault: faults.Status(http.StatusForbidden)},
			op: func(b store.Bucket) error {
				return store.WriteAll(ctx, b, "a/k", []byte("x"), store.WriteOptions{IfAbsent: true})
			},
			want: []string{"gs://" + testBucket + "/a/k", "permission denied"},
		},
		{
			name: "400 on read",
			rule: faults.Rule{Method: http.MethodGet, Fault: faults.Status(http.StatusBadRequest)},
			op:   func(b store.Bucket) error { _, err := read(ctx, b, "a/k", 0); return err },
			want: []string{"gs://" + testBucket + "/a/k"},
		},
		{
			name:   "404 bucket on stat",
			rule:   faults.Rule{Method: http.MethodGet, Fault: faults.StatusMessage(http.StatusNotFound, "The specified bucket does not exist.")},
			op:     func(b store.Bucket) error { _, err := b.Stat(ctx, "a/k"); return err },
			want:   []string{"gs://" + testBucket + "/a/k", "bucket \"" + testBucket + "\" does not exist"},
			notErr: store.ErrNotExist,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newGCSEnv(t)
			b := e.bucket(t, "", e.testOptions())
			e.faults.Add(tc.rule)
			start := time.Now()
			err := tc.op(b)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tc.notErr != nil && errors.Is(err, tc.notErr) {
				t.Errorf("error %v is %v", err, tc.notErr)
			}
			if calls, _ := e.faults.Count("", ""); calls != 1 || e.retries.total() != 0 {
				t.Errorf("%d requests and %d retries for a permanent error; want 1 and 0", calls, e.retries.total())
			}
			if took := time.Since(start); took > time.Second {
				t.Errorf("failing took %s", took)
			}
		})
	}

	t.Run("missing bucket", func(t *testing.T) {
		e := newGCSEnv(t)
		b, err := store.NewGCSBucket(e.client, "no-such-bucket", "", e.testOptions())
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.List(ctx, "x/")
		if err == nil || !strings.Contains(err.Error(), `bucket "no-such-bucket" does not exist`) || errors.Is(err, store.ErrNotExist) {
			t.Fatalf("List of a missing bucket: %v", err)
		}
		if calls, _ := e.faults.Count("", ""); calls != 1 {
			t.Errorf("%d requests, want 1", calls)
		}
	})

	t.Run("attempts are bounded", func(t *testing.T) {
		e := newGCSEnv(t)
		o := e.testOptions()
		o.MaxAttempts = 3
		b := e.bucket(t, "", o)
		e.faults.Add(faults.Rule{Fault: faults.Status(http.StatusServiceUnavailable)})
		_, err := b.Stat(ctx, "k")
		if err == nil || !strings.Contains(err.Error(), "after 3 attempts") {
			t.Fatalf("Stat against a server that always answers 503: %v", err)
		}
		if calls, _ := e.faults.Count("", ""); calls != 3 || e.retries.count("stat") != 2 {
			t.Errorf("%d requests, %d retries; want 3 and 2", calls, e.retries.count("stat"))
		}
	})
}

// Parallel range reads return the object's bytes for sizes around the part
// size and the threshold.
func TestGCSParallelReader(t *testing.T) {
	e := newGCSEnv(t)
	ctx := context.Background()
	const part = 64 << 10
	o := e.testOptions()
	o.ParallelReadThreshold = 4 * part
	o.ParallelReadPartSize = part
	o.ParallelReads = 3
	o.ChunkSize = 8 << 20 // one request per object: this test is about reads
	b := e.bucket(t, "", o)

	sizes := []int{0, 1, part - 1, part, part + 1, 4*part - 1, 4 * part, 4*part + 1, 5 * part, 7*part + 3, 20*part + part/2}
	for i, size := range sizes {
		data := randomBytes(uint64(100+i), size)
		key := fmt.Sprintf("p/%d", size)
		info, err := store.Put(ctx, b, key, data, store.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		e.faults.Reset()
		// Read with uneven buffers.
		r, err := b.NewReader(ctx, key, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		buf := make([]byte, 10007)
		for {
			n, err := r.Read(buf[:1+i*997%len(buf)])
			got.Write(buf[:n])
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
		}
		_ = r.Close()
		if !bytes.Equal(got.Bytes(), data) {
			t.Fatalf("size %d: read %d bytes that differ from the object", size, got.Len())
		}
		var ranged int
		for _, c := range e.faults.Calls() {
			if c.Range != "" {
				ranged++
				if !strings.Contains(c.URI, "generation="+strconv.FormatInt(info.Generation, 10)) {
					t.Errorf("size %d: range read not pinned: %s", size, c.URI)
				}
			}
		}
		wantRanged := 0
		if size >= 4*part {
			wantRanged = (size - 1) / part // all parts but the first
		}
		if ranged != wantRanged {
			t.Errorf("size %d: %d range requests, want %d", size, ranged, wantRanged)
		}
	}

	t.Run("a failed part fails the read", func(t *testing.T) {
		data := randomBytes(5, 10*part)
		if err := store.WriteAll(ctx, b, "f", data, store.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		e.faults.Reset()
		e.faults.Add(faults.Rule{Method: http.MethodGet, Match: `alt=media`, Nth: 4, Fault: faults.Status(http.StatusForbidden)})
		got, err := read(ctx, b, "f", 0)
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Fatalf("read with a part refused: %d bytes, %v", len(got), err)
		}
	})

	t.Run("a broken part is resumed", func(t *testing.T) {
		data := randomBytes(6, 10*part+5)
		if err := store.WriteAll(ctx, b, "g", data, store.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		e.faults.Reset()
		e.faults.Add(faults.Rule{Method: http.MethodGet, Match: `alt=media`, Prob: 0.4, Times: 6, Fault: faults.Truncate(part / 3)})
		got, err := read(ctx, b, "g", 0)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %d bytes (%v), want the %d written", len(got), err, len(data))
		}
	})

	t.Run("close early", func(t *testing.T) {
		data := randomBytes(7, 30*part)
		if err := store.WriteAll(ctx, b, "h", data, store.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 10, part + 10, 5 * part} {
			r, err := b.NewReader(ctx, "h", 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(r, make([]byte, n)); err != nil {
				t.Fatal(err)
			}
			_ = r.Close()
		}
		// goleak in TestMain checks that no fetch outlives its reader.
	})

	t.Run("cancelled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		r, err := b.NewReader(cctx, "h", 0)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = r.Close() }()
		cancel()
		if _, err := io.ReadAll(r); !errors.Is(err, context.Canceled) {
			t.Fatalf("read after cancel: %v, want context.Canceled", err)
		}
	})
}

// Uploads declare the CRC32C computed while writing, so that GCS verifies
// it: in the metadata of a one-request upload, with the final chunk of a
// resumable one.
func TestGCSUploadsSendCRC32C(t *testing.T) {
	e := newGCSEnv(t)
	ctx := context.Background()
	b := e.bucket(t, "", e.testOptions())
	for _, size := range []int{10 << 10, 700 << 10} {
		e.uploads.mu.Lock()
		e.uploads.reqs = nil
		e.uploads.mu.Unlock()
		data := randomBytes(uint64(size), size)
		if err := store.WriteAll(ctx, b, "c", data, store.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		sum := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
		enc := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, sum))
		reqs := e.uploads.all()
		last := reqs[len(reqs)-1]
		if size < 256<<10 {
			if len(reqs) != 1 || !bytes.Contains(last.body, []byte(`"crc32c":"`+enc+`"`)) {
				t.Errorf("one-request upload of %d bytes does not declare crc32c %s", size, enc)
			}
		} else if !strings.Contains(last.hash, "crc32c="+enc) || !strings.Contains(last.uri, "upload_id=") {
			t.Errorf("final chunk of a %d-byte upload has X-Goog-Hash %q, want crc32c=%s", size, last.hash, enc)
		}
	}
}

// List reads every page, and a page that fails is fetched again.
func TestGCSListPages(t *testing.T) {
	e := newGCSEnv(t)
	ctx := context.Background()
	b := e.bucket(t, "t", e.testOptions())
	t.Cleanup(store.SetListPageSize(10))
	const n = 25
	for i := range n {
		e.server.CreateObject(fakestorage.Object{
			ObjectAttrs: fakestorage.ObjectAttrs{BucketName: testBucket, Name: fmt.Sprintf("t/p/%05d", n-i)},
			Content:     []byte("x"),
		})
	}
	e.faults.Add(faults.Rule{Method: http.MethodGet, Match: `/o\?`, Nth: 2, Fault: faults.Status(http.StatusServiceUnavailable)})
	objs, err := b.List(ctx, "p/")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != n {
		t.Fatalf("List = %d objects, want %d", len(objs), n)
	}
	for i, o := range objs {
		if want := fmt.Sprintf("p/%05d", i+1); o.Key != want || o.Size != 1 || o.Generation == 0 {
			t.Fatalf("List[%d] = %+v, want key %s", i, o, want)
		}
	}
	if calls, _ := e.faults.Count(http.MethodGet, `/o\?`); calls != 4 || e.retries.count("list") != 1 {
		t.Errorf("%d list requests and %d retries, want 4 (3 pages, one twice) and 1", calls, e.retries.count("list"))
	}
}

// Abort of a streamed upload leaves nothing behind.
func TestGCSAbortStreamedUpload(t *testing.T) {
	e := newGCSEnv(t)
	ctx := context.Background()
	b := e.bucket(t, "", e.testOptions())
	w, err := b.NewWriter(ctx, "big", store.WriteOptions{IfAbsent: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(randomBytes(8, 900<<10)); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if _, err := b.Stat(ctx, "big"); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("aborted upload: Stat = %v, want ErrNotExist", err)
	}
	if calls, _ := e.faults.Count(http.MethodPost, `upload_id=`); calls == 0 {
		t.Errorf("no chunk was sent before Abort: the test does not test a streamed upload")
	}
}
