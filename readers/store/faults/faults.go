// Package faults is an http.RoundTripper that injects the failures a cloud
// store shows in production into chosen requests: throttling and server
// errors, bodies cut short, stalls, reset connections, and writes that were
// applied although the client saw an error. Tests plug it under a client
// (for GCS: option.WithHTTPClient) in front of an in-process server and check
// that the client copes: retries, resumes, deadlines, idempotent writes.
//
// A Transport holds rules; each request is matched against them in order and
// the first rule that matches and fires decides its fate. Which matching
// calls fire is set per rule by position (the nth matching call), by
// probability (drawn from the Transport's seeded RNG, so a failing run can be
// replayed) and capped by a count. Every call is logged, with the fault it got.
package faults

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Kind names a fault.
type Kind string

// The faults a rule can inject.
const (
	// KindStatus answers with Fault.Status without forwarding the request.
	KindStatus Kind = "status"
	// KindTruncate forwards the request and ends the response body with
	// io.ErrUnexpectedEOF after Fault.After bytes, as a dropped connection
	// does.
	KindTruncate Kind = "truncate"
	// KindReset fails the request with "connection reset by peer" without
	// forwarding it.
	KindReset Kind = "reset"
	// KindResetBody forwards the request and fails the response body with
	// "connection reset by peer" after Fault.After bytes.
	KindResetBody Kind = "reset-body"
	// KindStall holds the request until its context is done or Fault.Stall
	// has passed (zero: only the context ends it), then, if the context is
	// still live, forwards it: a server that hangs, or one that is slow.
	KindStall Kind = "stall"
	// KindStallBody forwards the request and, after Fault.After bytes of the
	// response body, blocks the body until the request's context is done.
	KindStallBody Kind = "stall-body"
	// KindForwardThenStatus forwards the request (the server applies it),
	// discards the server's answer and answers Fault.Status instead: a write
	// that succeeded although the client sees a failure.
	KindForwardThenStatus Kind = "forward-then-status"
)

// Fault is what happens to a request a rule fires on.
type Fault struct {
	Kind    Kind
	Status  int           // KindStatus, KindForwardThenStatus
	Message string        // KindStatus, KindForwardThenStatus: the error message (default: "faults: injected <status text>")
	After   int64         // KindTruncate, KindResetBody, KindStallBody: body bytes let through
	Stall   time.Duration // KindStall: 0 holds until the request's context is done
}

// Status answers code (429, 503, ...) without reaching the server.
func Status(code int) Fault { return Fault{Kind: KindStatus, Status: code} }

// StatusMessage answers code with a GCS-style error carrying message (e.g.
// "The specified bucket does not exist.").
func StatusMessage(code int, message string) Fault {
	return Fault{Kind: KindStatus, Status: code, Message: message}
}

// Truncate cuts the response body after n bytes.
func Truncate(n int64) Fault { return Fault{Kind: KindTruncate, After: n} }

// Reset fails the request with a reset connection before it reaches the
// server.
func Reset() Fault { return Fault{Kind: KindReset} }

// ResetBody resets the connection after n bytes of the response body.
func ResetBody(n int64) Fault { return Fault{Kind: KindResetBody, After: n} }

// Stall holds the request for d (0: until its context is done).
func Stall(d time.Duration) Fault { return Fault{Kind: KindStall, Stall: d} }

// StallBody blocks the response body after n bytes until the request's
// context is done.
func StallBody(n int64) Fault { return Fault{Kind: KindStallBody, After: n} }

// ForwardThenStatus lets the server apply the request, then answers code.
func ForwardThenStatus(code int) Fault { return Fault{Kind: KindForwardThenStatus, Status: code} }

// Rule selects requests and the fault they get.
type Rule struct {
	// Method matches the request method exactly; empty matches any.
	Method string
	// Match is a regular expression matched against the request's path and
	// query (URL.RequestURI, e.g. "/upload/storage/v1/b/x/o?uploadType=multipart");
	// empty matches any.
	Match string
	// Nth, when non-zero, fires on the nth call matching Method and Match
	// only (1-based; calls that an earlier rule took count too).
	Nth int
	// Prob, when non-zero, fires on each matching call with this
	// probability, drawn from the Transport's seeded RNG. With neither Nth
	// nor Prob the rule fires on every matching call.
	Prob float64
	// Times, when non-zero, caps how often the rule fires.
	Times int
	// Fault is what a fired rule does.
	Fault Fault

	re      *regexp.Regexp
	matched int
	fired   int
}

// Call is one request seen by the Transport.
type Call struct {
	Method string
	URI    string // path and query
	Range  string // the Range header, if any
	Fault  Kind   // empty when the call was passed through untouched
}

// Transport injects faults into the requests matching its rules and passes
// the others to Base. It is safe for concurrent use.
type Transport struct {
	base http.RoundTripper

	mu    sync.Mutex
	rng   *rand.Rand
	rules []*Rule
	calls []Call
}

// New returns a Transport over base (http.DefaultTransport when nil) whose
// probabilities are drawn from an RNG seeded with seed.
func New(base http.RoundTripper, seed uint64) *Transport {
	if base == nil {
		base = http.DefaultTransport
	}
	return &Transport{base: base, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Add appends a rule. An invalid Match expression panics: rules are written
// by tests.
func (t *Transport) Add(r Rule) {
	if r.Match != "" {
		r.re = regexp.MustCompile(r.Match)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rules = append(t.rules, &r)
}

// Reset removes every rule and forgets the calls seen.
func (t *Transport) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rules, t.calls = nil, nil
}

// Calls returns the calls seen so far, in order.
func (t *Transport) Calls() []Call {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Call(nil), t.calls...)
}

// Count returns how many calls matched method (empty: any) and the regular
// expression match (empty: any), and how many of them got a fault.
func (t *Transport) Count(method, match string) (calls, faulted int) {
	var re *regexp.Regexp
	if match != "" {
		re = regexp.MustCompile(match)
	}
	for _, c := range t.Calls() {
		if (method == "" || c.Method == method) && (re == nil || re.MatchString(c.URI)) {
			calls++
			if c.Fault != "" {
				faulted++
			}
		}
	}
	return calls, faulted
}

// CloseIdleConnections closes the base transport's idle connections.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// pick decides the fault for a request and logs the call.
func (t *Transport) pick(req *http.Request) (Fault, bool) {
	uri := req.URL.RequestURI()
	t.mu.Lock()
	defer t.mu.Unlock()
	call := Call{Method: req.Method, URI: uri, Range: req.Header.Get("Range")}
	var (
		f     Fault
		fired bool
	)
	for _, r := range t.rules {
		if (r.Method != "" && r.Method != req.Method) || (r.re != nil && !r.re.MatchString(uri)) {
			continue
		}
		// Every matching call counts for Nth, also one an earlier rule
		// took.
		r.matched++
		switch {
		case fired:
		case r.Times != 0 && r.fired >= r.Times:
		case r.Nth != 0 && r.matched != r.Nth:
		case r.Prob != 0 && t.rng.Float64() >= r.Prob:
		default:
			r.fired++
			f, fired = r.Fault, true
			call.Fault = f.Kind
		}
	}
	t.calls = append(t.calls, call)
	return f, fired
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	f, ok := t.pick(req)
	if !ok {
		return t.base.RoundTrip(req)
	}
	switch f.Kind {
	case KindStatus:
		closeBody(req)
		return statusResponse(req, f.Status, f.Message), nil
	case KindReset:
		closeBody(req)
		return nil, resetErr("write")
	case KindStall:
		if f.Stall == 0 {
			<-req.Context().Done()
			closeBody(req)
			return nil, req.Context().Err()
		}
		timer := time.NewTimer(f.Stall)
		defer timer.Stop()
		select {
		case <-req.Context().Done():
			closeBody(req)
			return nil, req.Context().Err()
		case <-timer.C:
		}
		return t.base.RoundTrip(req)
	case KindForwardThenStatus:
		res, err := t.base.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		return statusResponse(req, f.Status, f.Message), nil
	case KindTruncate, KindResetBody, KindStallBody:
		res, err := t.base.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		res.Body = &faultyBody{rc: res.Body, left: f.After, kind: f.Kind, done: req.Context().Done(), ctxErr: req.Context().Err}
		return res, nil
	default:
		closeBody(req)
		return nil, fmt.Errorf("faults: unknown fault kind %q", f.Kind)
	}
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// resetErr is the error a read or write on a connection reset by the peer
// returns: what retry classifiers look for.
func resetErr(op string) error {
	return &net.OpError{Op: op, Net: "tcp", Err: syscall.ECONNRESET}
}

// statusResponse is an error response shaped like GCS's JSON errors, so that
// clients parse it as they would a real one.
func statusResponse(req *http.Request, code int, message string) *http.Response {
	text := http.StatusText(code)
	if message == "" {
		message = "faults: injected " + text
	}
	body := fmt.Sprintf(`{"error":{"code":%d,"message":%q,"errors":[{"message":%q,"reason":"injected"}]}}`,
		code, message, message)
	h := make(http.Header)
	h.Set("Content-Type", "application/json; charset=UTF-8")
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", code, text),
		StatusCode:    code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

// faultyBody lets left bytes through, then fails as kind says.
type faultyBody struct {
	rc     io.ReadCloser
	left   int64
	kind   Kind
	done   <-chan struct{}
	ctxErr func() error
}

func (b *faultyBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		switch b.kind {
		case KindTruncate:
			return 0, io.ErrUnexpectedEOF
		case KindResetBody:
			return 0, resetErr("read")
		default: // KindStallBody
			<-b.done
			return 0, b.ctxErr()
		}
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *faultyBody) Close() error { return b.rc.Close() }
