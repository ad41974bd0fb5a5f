// Package serve is `scorer serve`: the REST API that queues prediction
// requests for `scorer run` and scores a few rows online.
//
//   - POST /v1/requests takes a JSON array or JSON Lines of requests,
//     reads each one as `scorer run` will read it from a queue file (the
//     readers' JSON Lines decoder, the model's input schema, its id
//     ranges), and appends the good ones to a queue file of the input
//     store, answering only once that file is durably written. Each
//     request id is queued once (idempotency): a retried POST answers
//     "duplicate" for what is already queued. Per-item errors name the
//     column, the value and the reason.
//   - POST /v1/predict scores the requests now, with the same readers,
//     feature pipeline and compiled model as the batch path: the same
//     scores, bit for bit.
//   - GET /healthz (alive), /readyz (the model is loaded and the queue
//     writer runs), /metrics (Prometheus), /openapi.json.
//
// /v1/ needs a bearer token of Options.Tokens (compared in constant
// time); bodies are limited in bytes and items; the server's timeouts
// bound every phase of a request (Config.HTTPServer).
package serve

import (
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/bundle"
)

// Defaults of Options' zero fields.
const (
	DefaultMaxBodyBytes  = 4 << 20
	DefaultMaxItems      = 5000
	DefaultBatchMaxItems = 5000
	DefaultBatchMaxWait  = 50 * time.Millisecond
)

// Options configure a Server.
type Options struct {
	// Bundle scores /v1/predict and gives the schema requests are read
	// with (its feature spec's input columns).
	Bundle *bundle.Bundle
	// Input is the input store; queued requests go to QueueDir in it.
	Input    store.Bucket
	QueueDir string
	// IDColumn names a request (the queue's id column): required,
	// queued once.
	IDColumn string
	// Instance names this server's queue files (a host or pod name):
	// servers sharing a queue folder must have different ones.
	Instance string
	// Tokens are the bearer tokens /v1/ accepts. None: every /v1/ call
	// is refused.
	Tokens []string
	// MaxBodyBytes and MaxItems bound one call's body and requests.
	MaxBodyBytes int64
	MaxItems     int
	// A queue file is written when BatchMaxItems requests wait, or
	// BatchMaxWait after the first: the latency of /v1/requests.
	BatchMaxItems int
	BatchMaxWait  time.Duration
	// Registerer gets the server's metrics (default: a registry of its
	// own, served at /metrics).
	Registry *prometheus.Registry
	Log      *slog.Logger
	Now      func() time.Time
}

// Server serves the API. Close it to flush the queue.
type Server struct {
	opts     Options
	bu       *bundle.Bundle
	fx       *features.Pipeline
	schema   *arrow.Schema
	ranges   []readers.IntRange
	idColumn string
	queue    *queue
	tokens   [][]byte
	log      *slog.Logger
	models   sync.Pool // *scoring.Model
	images   *scoring.ImageStage
	reg      *prometheus.Registry

	draining atomic.Bool

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	items    *prometheus.CounterVec
}

// New loads the ids already queued and starts the queue writer.
func New(ctx context.Context, o Options) (*Server, error) {
	if o.Bundle == nil || o.Input == nil || o.QueueDir == "" || o.IDColumn == "" || o.Instance == "" {
		return nil, errors.New("serve: a model, an input store, a queue folder, an id column and an instance name are needed")
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxItems <= 0 {
		o.MaxItems = DefaultMaxItems
	}
	if o.BatchMaxItems <= 0 {
		o.BatchMaxItems = DefaultBatchMaxItems
	}
	if o.BatchMaxWait <= 0 {
		o.BatchMaxWait = DefaultBatchMaxWait
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	fx, err := features.NewPipeline(o.Bundle.Features, o.Bundle.Stats)
	if err != nil {
		return nil, fmt.Errorf("serve: model %s %s: %w", o.Bundle.Name, o.Bundle.Version, err)
	}
	s := &Server{
		opts: o, bu: o.Bundle, fx: fx, idColumn: o.IDColumn, log: o.Log, reg: o.Registry,
		schema: o.Bundle.Features.InputSchema([]string{o.IDColumn}, false),
		ranges: jobs.RejectRanges(o.Bundle.Features),
		queue:  newQueue(o.Input, o.QueueDir, o.Instance, o.BatchMaxItems, o.BatchMaxWait, o.Now),
	}
	for _, t := range o.Tokens {
		if t = strings.TrimSpace(t); t != "" {
			s.tokens = append(s.tokens, []byte(t))
		}
	}
	if len(o.Bundle.Features.ImageInputs()) > 0 {
		loader := jobs.NewImageLoader(o.Input, o.Bundle.Features.ImageInputs(), jobs.ImageOptions{})
		if s.images, err = scoring.NewImageStage(o.Bundle, loader, scoring.BadImageMissing); err != nil {
			return nil, err
		}
	}
	// Compile once now: a model that does not compile fails the start.
	m, err := scoring.NewModel(o.Bundle, predictBatch)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	s.models.Put(m)
	n, err := s.queue.load(ctx, o.IDColumn)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	s.log.Info("queued request ids loaded", "ids", n, "queue", o.Input.URI(o.QueueDir+"/"))
	s.metrics()
	s.queue.start()
	return s, nil
}

// predictBatch is the batch the online model is compiled for.
const predictBatch = 64

func (s *Server) metrics() {
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "scorer_serve_requests_total", Help: "HTTP calls by route and status code.",
	}, []string{"route", "code"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "scorer_serve_request_seconds", Help: "Time to answer an HTTP call, by route.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route"})
	s.items = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "scorer_serve_items_total", Help: "Requests (items) of /v1/requests by outcome: queued, duplicate, rejected; and of /v1/predict: scored, rejected.",
	}, []string{"route", "outcome"})
	s.reg.MustRegister(s.requests, s.latency, s.items)
}

// Drain starts the shutdown: /readyz answers 503 (the load balancer
// stops sending calls) and new /v1/ calls are refused with 503 (nothing
// of them queued), while the calls in flight finish.
func (s *Server) Drain() { s.draining.Store(true) }

// Close stops taking requests and writes those waiting: every request
// acknowledged is in a queue file, and every call still waiting gets its
// answer.
func (s *Server) Close() { s.Drain(); s.queue.close() }

// Handler routes the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/requests", s.route("/v1/requests", s.auth(s.postRequests)))
	mux.Handle("POST /v1/predict", s.route("/v1/predict", s.auth(s.postPredict)))
	mux.Handle("GET /healthz", s.route("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	mux.Handle("GET /readyz", s.route("/readyz", s.readyz))
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /openapi.json", s.route("/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPI)
	}))
	return mux
}

//go:embed openapi.json
var openAPI []byte

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// route counts and times a route, and turns a panic into a 500 (none is
// expected: the decoders are fuzzed).
func (s *Server) route(name string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("panic serving a request", "route", name, "panic", p)
				sw.code = http.StatusInternalServerError
				http.Error(w, "internal error", sw.code)
			}
			s.requests.WithLabelValues(name, strconv.Itoa(sw.code)).Inc()
			s.latency.WithLabelValues(name).Observe(time.Since(start).Seconds())
		}()
		h(sw, r)
	})
}

// auth refuses a call without one of the bearer tokens.
func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		match := 0
		for _, t := range s.tokens {
			// Every token is compared, and in constant time.
			match |= subtle.ConstantTimeCompare([]byte(got), t)
		}
		if !ok || match != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="scorer"`)
			writeError(w, http.StatusUnauthorized, "a bearer token of serve.tokens_file is needed")
			return
		}
		if s.draining.Load() {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, errClosed.Error()+": nothing of this call was queued; retry on another instance")
			return
		}
		h(w, r)
	}
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if s.draining.Load() {
		writeError(w, http.StatusServiceUnavailable, errClosed.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "model": s.bu.Name + " " + s.bu.Version})
}

// body reads a call's body within MaxBodyBytes and splits it into items.
func (s *Server) body(w http.ResponseWriter, r *http.Request) ([][]byte, bool) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", s.opts.MaxBodyBytes))
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, "read the body: "+err.Error())
		return nil, false
	}
	items, err := decodeItems(data, s.opts.MaxItems)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	return items, true
}

// itemResult is one item's answer.
type itemResult struct {
	Index     int        `json:"index"`
	RequestID string     `json:"request_id,omitempty"`
	Status    string     `json:"status"` // queued, duplicate, rejected; scored
	Score     *float64   `json:"score,omitempty"`
	Error     *itemError `json:"error,omitempty"`
}

// The answer of /v1/requests and /v1/predict.
type answer struct {
	Model    string       `json:"model"`
	Queued   int          `json:"queued,omitempty"`
	Dup      int          `json:"duplicates,omitempty"`
	Scored   int          `json:"scored,omitempty"`
	Rejected int          `json:"rejected"`
	Items    []itemResult `json:"items"`
}

// goodRows maps the rows of the good items' records to item indices.
func goodItems(n int, bad map[int]itemError) []int {
	var good []int
	for i := range n {
		if _, ok := bad[i]; !ok {
			good = append(good, i)
		}
	}
	return good
}

// read reads a call's items as the queue run will (readItems): the items,
// the records of the good ones (the caller releases them), and why each
// bad one was refused. It has answered the call when ok is false.
func (s *Server) read(w http.ResponseWriter, r *http.Request) (items [][]byte, recs []arrow.RecordBatch, bad map[int]itemError, ok bool) {
	if items, ok = s.body(w, r); !ok {
		return nil, nil, nil, false
	}
	recs, bad, err := s.readItems(r.Context(), items)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return nil, nil, nil, false
	}
	return items, recs, bad, true
}

func (s *Server) postRequests(w http.ResponseWriter, r *http.Request) {
	items, recs, bad, ok := s.read(w, r)
	if !ok {
		return
	}
	good := goodItems(len(items), bad)
	ids := make([]string, 0, len(good))
	for _, rec := range recs {
		col := rec.Column(rec.Schema().FieldIndices(s.idColumn)[0]).(*array.String)
		for i := range col.Len() {
			ids = append(ids, strings.Clone(col.Value(i)))
		}
		rec.Release()
	}
	if len(ids) != len(good) {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("read %d good requests of %d", len(ids), len(good)))
		return
	}
	lines := make([][]byte, len(good))
	for k, i := range good {
		lines[k] = items[i]
	}
	status, err := s.queue.add(r.Context(), lines, ids)
	if err != nil {
		code := http.StatusServiceUnavailable
		s.log.Error("queue requests", "err", err)
		writeError(w, code, "nothing was queued: "+err.Error())
		return
	}
	ans := answer{Model: s.bu.Name + " " + s.bu.Version, Items: make([]itemResult, len(items))}
	for i := range items {
		if e, ok := bad[i]; ok {
			ans.Items[i] = itemResult{Index: i, Status: "rejected", Error: &e}
			ans.Rejected++
		}
	}
	for k, i := range good {
		ans.Items[i] = itemResult{Index: i, RequestID: ids[k], Status: status[k]}
		if status[k] == statusQueued {
			ans.Queued++
		} else {
			ans.Dup++
		}
	}
	s.items.WithLabelValues("/v1/requests", "queued").Add(float64(ans.Queued))
	s.items.WithLabelValues("/v1/requests", "duplicate").Add(float64(ans.Dup))
	s.items.WithLabelValues("/v1/requests", "rejected").Add(float64(ans.Rejected))
	code := http.StatusOK
	if ans.Queued+ans.Dup == 0 {
		code = http.StatusUnprocessableEntity
	}
	writeJSON(w, code, ans)
}

func (s *Server) postPredict(w http.ResponseWriter, r *http.Request) {
	items, recs, bad, ok := s.read(w, r)
	if !ok {
		return
	}
	defer func() {
		for _, rec := range recs {
			rec.Release()
		}
	}()
	good := goodItems(len(items), bad)
	ans := answer{Model: s.bu.Name + " " + s.bu.Version, Items: make([]itemResult, len(items))}
	m, _ := s.models.Get().(*scoring.Model)
	if m == nil {
		var err error
		if m, err = scoring.NewModel(s.bu, predictBatch); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
	}
	defer s.models.Put(m)
	var b features.Batch
	k := 0
	for _, rec := range recs {
		if err := s.fx.Transform(rec, &b); err != nil {
			writeError(w, http.StatusInternalServerError, "compute features: "+err.Error())
			return
		}
		if s.images != nil {
			if err := s.images.Embed(r.Context(), &b); err != nil {
				writeError(w, http.StatusServiceUnavailable, "images: "+err.Error())
				return
			}
		}
		scores := make([]float32, b.N)
		if err := m.Score(&b, scores); err != nil {
			code := http.StatusInternalServerError
			var le *scoring.LogitError
			if errors.As(err, &le) { // a row the model cannot score, as scorer run would fail on it
				code = http.StatusUnprocessableEntity
				err = fmt.Errorf("item %d: %w", good[k+le.Row], err)
			}
			writeError(w, code, "score: "+err.Error())
			return
		}
		col := rec.Column(rec.Schema().FieldIndices(s.idColumn)[0]).(*array.String)
		for row := range b.N {
			i := good[k+row]
			if _, isBad := bad[i]; isBad {
				continue
			}
			// The float32 score, written exactly (its shortest decimal).
			v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(scores[row]), 'g', -1, 32), 64)
			ans.Items[i] = itemResult{Index: i, RequestID: col.Value(row), Status: "scored", Score: &v}
			ans.Scored++
		}
		k += b.N
	}
	for i, e := range bad {
		ans.Items[i] = itemResult{Index: i, Status: "rejected", Error: &e}
		ans.Rejected++
	}
	s.items.WithLabelValues("/v1/predict", "scored").Add(float64(ans.Scored))
	s.items.WithLabelValues("/v1/predict", "rejected").Add(float64(ans.Rejected))
	code := http.StatusOK
	if ans.Scored == 0 {
		code = http.StatusUnprocessableEntity
	}
	writeJSON(w, code, ans)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v) // the client went away: nothing to do
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
