package dataplane

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/observe"
	"github.com/switchyard-dev/switchyard/gateway/server"
)

// The raw path carries rules with a typical policy set too: a request timeout,
// retries, breaker caps and a local rate limit, with metrics and an access log. The
// tests here run the same requests through an engine of each forwarding mode under
// that policy set, and compare what the backend and the client saw, the metrics
// and the access log lines.

// policySnapshot is snapshotFor's route and backend under a policy set: a request
// timeout, a per-try timeout, retries of connect failures, resets and gateway
// errors, breaker caps, and a rate limit per client of limit requests a day: the
// buckets of two engines that take the same requests then show the same remainder,
// as they refill too slowly for the time between their requests to show.
func policySnapshot(version, backendAddr string, limit int64, requestTimeout time.Duration) *config.Snapshot {
	snap := snapshotFor(version, backendAddr)
	rule := &snap.Listeners[0].VirtualHosts[0].Routes[0].Rules[0]
	rule.Timeouts = &config.Timeouts{Request: config.Duration(requestTimeout)}
	rule.Retry = &config.Retry{Attempts: 2, PerTryTimeout: config.Duration(5 * time.Second),
		On:      []config.RetryCondition{config.RetryConnectFailure, config.RetryReset, config.RetryGatewayError},
		Backoff: config.Duration(time.Millisecond), MaxBackoff: config.Duration(2 * time.Millisecond)}
	rule.Filters = []config.Filter{{Type: config.FilterRateLimit, RateLimit: &config.RateLimit{
		ID: "typical", Mode: config.RateLimitLocal,
		Rules: []config.RateLimitRule{{Key: config.RateLimitKey{Type: config.KeyClientIP}, Requests: limit,
			Per: config.Duration(24 * time.Hour)}},
	}}}
	snap.Backends[0].CircuitBreaker = &config.CircuitBreaker{MaxConnections: 1000, MaxPendingRequests: 1000,
		MaxRequests: 1000, MaxRetries: 100}
	return snap
}

// policyEngine is an engine of one forwarding mode under snap, with metrics in reg
// and its access log in the returned buffer.
func policyEngine(t *testing.T, mode ForwardingMode, snap *config.Snapshot) (*Engine, *prometheus.Registry, *syncBuffer) {
	t.Helper()
	reg := prometheus.NewRegistry()
	logged := &syncBuffer{}
	access := observe.NewAccessLog(logged, nil, 1)
	obs, err := observe.New(observe.Options{Registerer: reg, RouteMetrics: observe.RouteMetricsFull, AccessLog: access})
	if err != nil {
		t.Fatal(err)
	}
	e := New(Options{Forwarding: mode, Observer: obs})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	mustApply(t, e, snap)
	t.Cleanup(func() { _ = access.Close() })
	logged.flush = access.Flush
	return e, reg, logged
}

// syncBuffer is an access log's destination that tests read while the engine writes.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	flush func() error
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the access log lines written so far, without the fields that
// differ from run to run (time, durations and the client's port) and those named in
// drop.
func (b *syncBuffer) lines(t *testing.T, drop ...string) []map[string]any {
	t.Helper()
	if err := b.flush(); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(b.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var fields map[string]any
		if err := json.Unmarshal([]byte(line), &fields); err != nil {
			t.Fatalf("access log line %q: %v", line, err)
		}
		for _, varying := range append([]string{"time", "duration_ms", "upstream_ms", "client"}, drop...) {
			delete(fields, varying)
		}
		out = append(out, fields)
	}
	b.buf.Reset()
	// Requests on different connections may be logged in either order.
	slices.SortFunc(out, func(a, b map[string]any) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	return out
}

// rawServedHere reports whether this run's HTTP/1.1 server offers requests to the
// raw path (it is the default server's; net/http's serves every request by the
// handlers).
func rawServedHere(t *testing.T) bool {
	t.Helper()
	mode, err := server.ParseHTTP1Mode("")
	if err != nil {
		t.Fatal(err)
	}
	return mode == server.HTTP1Fast
}

func TestRawForwardingUnderPoliciesMatchesTheHandlerPath(t *testing.T) {
	backend := startScriptedBackend(t, rawCases)
	rawServed := rawServedHere(t)
	type run struct {
		engine  *Engine
		reg     *prometheus.Registry
		logged  *syncBuffer
		address string
	}
	runs := map[ForwardingMode]*run{}
	for _, mode := range []ForwardingMode{ForwardRaw, ForwardHandler} {
		e, reg, logged := policyEngine(t, mode, policySnapshot("v1", backend.ln.Addr().String(), 1000, 10*time.Second))
		runs[mode] = &run{e, reg, logged, e.Addr("127.0.0.1:0")}
	}
	for _, c := range rawCases {
		t.Run(c.name, func(t *testing.T) {
			path := requestPath(c.request)
			method := strings.SplitN(c.request, " ", 2)[0]
			viaRaw := exchange(t, runs[ForwardRaw].address, c.request)
			rawSent := backend.received(t, path)
			viaHandler := exchange(t, runs[ForwardHandler].address, c.request)
			handlerSent := backend.received(t, path)
			got, want := parseRequest(t, rawSent), parseRequest(t, handlerSent)
			// The deadline the backend is given counts down between the two runs.
			for _, r := range []parsedRequest{got, want} {
				if r.header.Get("X-Switchyard-Deadline-Ms") == "" {
					t.Errorf("the backend was given no deadline:\n%q", rawSent)
				}
				r.header.Del("X-Switchyard-Deadline-Ms")
			}
			if !equalRequests(got, want) {
				t.Errorf("the backend received\n%q\non the raw path, and\n%q\non the handler path", rawSent, handlerSent)
			}
			rawAnswer, handlerAnswer := parseResponses(t, viaRaw, method), parseResponses(t, viaHandler, method)
			final := rawAnswer[len(rawAnswer)-1]
			if final.header.Get("Ratelimit-Limit") != "1000" {
				t.Errorf("an answer lacks the rate limit's fields:\n%q\n%q", viaRaw, viaHandler)
			}
			// Each engine has its own buckets, which the same requests drain alike.
			if !equalResponses(rawAnswer, handlerAnswer) {
				t.Errorf("the client got\n%q\non the raw path, and\n%q\non the handler path", viaRaw, viaHandler)
			}
			if relayed := bytes.Contains(viaRaw, []byte("\r\nx-lower: v\r\n")); relayed != (c.raw && rawServed) {
				t.Errorf("response relayed as is: %v, want %v:\n%q", relayed, c.raw && rawServed, viaRaw)
			}
		})
	}
	for _, r := range runs {
		settle(t, r.reg)
	}
	rawLines, handlerLines := runs[ForwardRaw].logged.lines(t), runs[ForwardHandler].logged.lines(t)
	if len(rawLines) != len(rawCases) || fmt.Sprint(rawLines) != fmt.Sprint(handlerLines) {
		t.Errorf("access log lines differ:\nraw     %v\nhandler %v", rawLines, handlerLines)
	}
	rawCounts, handlerCounts := countsOf(t, runs[ForwardRaw].reg), countsOf(t, runs[ForwardHandler].reg)
	if len(rawCounts) == 0 || !maps.Equal(rawCounts, handlerCounts) {
		t.Errorf("counters differ:\nraw     %v\nhandler %v", rawCounts, handlerCounts)
	}
}

// settle waits, for up to five seconds, until an engine has no request in flight.
// The raw path counts a request out, and writes its access log line, once the
// client has the answer; the handler path before it flushes the answer's end.
func settle(t *testing.T, reg *prometheus.Registry) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		inFlight := 0.0
		for key, v := range gatherSamples(t, reg, "") {
			if strings.HasPrefix(key, "switchyard_requests_in_flight{") {
				inFlight += v
			}
		}
		if inFlight == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v requests still in flight", inFlight)
		}
	}
}

// countsOf returns the counts an engine's metrics keep (gatherSamples keeps a
// histogram's count alone), without the timestamps, which differ from run to run.
func countsOf(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	counts := gatherSamples(t, reg, "")
	for key := range counts {
		if strings.Contains(key, "timestamp") {
			delete(counts, key)
		}
	}
	return counts
}

// policyCase is an exchange under the policy set whose answer depends on what
// happened before it: a retried failure, a refusal, a timeout.
type policyCase struct {
	name string
	// limit is the rate limit's requests a day; timeout the request timeout.
	limit   int64
	timeout time.Duration
	// serve is the backend: it answers the n'th request it gets (from 0).
	serve func(n int, w http.ResponseWriter)
	// requests are sent in turn; want are the statuses the client must get.
	requests []string
	want     []int
	// backendRequests is how many requests the backend must get in all.
	backendRequests int
}

var policyCases = []policyCase{
	{name: "gateway error retried", limit: 100, timeout: 10 * time.Second,
		serve: func(n int, w http.ResponseWriter) {
			if n == 0 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, "second try")
		},
		requests: []string{"GET /retry HTTP/1.1\r\nHost: app.example.com\r\n\r\n"}, want: []int{200}, backendRequests: 2},
	{name: "reset after early hints retried", limit: 100, timeout: 10 * time.Second,
		serve: func(n int, w http.ResponseWriter) {
			if n == 0 {
				w.Header().Set("Link", "</s.css>; rel=preload")
				w.WriteHeader(http.StatusEarlyHints)
				panic(http.ErrAbortHandler)
			}
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, "second try")
		},
		requests: []string{"GET /hints HTTP/1.1\r\nHost: app.example.com\r\n\r\n"}, want: []int{200}, backendRequests: 2},
	{name: "retries exhausted", limit: 100, timeout: 10 * time.Second,
		serve:    func(n int, w http.ResponseWriter) { w.WriteHeader(http.StatusBadGateway) },
		requests: []string{"GET /down HTTP/1.1\r\nHost: app.example.com\r\n\r\n"}, want: []int{502}, backendRequests: 3},
	{name: "rate limited", limit: 1, timeout: 10 * time.Second,
		serve: func(n int, w http.ResponseWriter) { w.Header().Set("Content-Type", "text/plain"); fmt.Fprint(w, "ok") },
		requests: []string{"GET /a HTTP/1.1\r\nHost: app.example.com\r\n\r\n", "GET /b HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
			"HEAD /c HTTP/1.1\r\nHost: app.example.com\r\n\r\n"},
		want: []int{200, 429, 429}, backendRequests: 1},
	{name: "request timeout", limit: 100, timeout: 150 * time.Millisecond,
		serve:    func(n int, w http.ResponseWriter) { time.Sleep(time.Second) },
		requests: []string{"GET /slow HTTP/1.1\r\nHost: app.example.com\r\n\r\n"}, want: []int{504}, backendRequests: 1},
	{name: "head answered by the gateway", limit: 100, timeout: 150 * time.Millisecond,
		serve:    func(n int, w http.ResponseWriter) { time.Sleep(time.Second) },
		requests: []string{"HEAD /slow HTTP/1.1\r\nHost: app.example.com\r\n\r\n"}, want: []int{504}, backendRequests: 1},
}

// countingBackend answers with serve, counting the requests it gets.
func countingBackend(t *testing.T, serve func(n int, w http.ResponseWriter)) (string, func() int) {
	t.Helper()
	var mu sync.Mutex
	n := 0
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		i := n
		n++
		mu.Unlock()
		serve(i, w)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

func TestRawForwardingAppliesPoliciesAsTheHandlerPath(t *testing.T) {
	for _, c := range policyCases {
		t.Run(c.name, func(t *testing.T) {
			answers := map[ForwardingMode][][]parsedResponse{}
			lines := map[ForwardingMode][]map[string]any{}
			counts := map[ForwardingMode]map[string]float64{}
			for _, mode := range []ForwardingMode{ForwardRaw, ForwardHandler} {
				addr, served := countingBackend(t, c.serve)
				e, reg, logged := policyEngine(t, mode, policySnapshot("v1", addr, c.limit, c.timeout))
				for i, request := range c.requests {
					method := strings.SplitN(request, " ", 2)[0]
					answer := parseResponses(t, exchange(t, e.Addr("127.0.0.1:0"), request), method)
					if got := answer[len(answer)-1].status; got != c.want[i] {
						t.Errorf("%s: request %d got %d, want %d", mode, i, got, c.want[i])
					}
					answers[mode] = append(answers[mode], answer)
				}
				if got := served(); got != c.backendRequests {
					t.Errorf("%s: the backend got %d requests, want %d", mode, got, c.backendRequests)
				}
				// Each run has a backend of its own.
				settle(t, reg)
				lines[mode], counts[mode] = logged.lines(t, "endpoint"), countsOf(t, reg)
			}
			for i := range c.requests {
				if !equalResponses(answers[ForwardRaw][i], answers[ForwardHandler][i]) {
					t.Errorf("request %d: the client got\n%+v\non the raw path, and\n%+v\non the handler path", i, answers[ForwardRaw][i], answers[ForwardHandler][i])
				}
			}
			if fmt.Sprint(lines[ForwardRaw]) != fmt.Sprint(lines[ForwardHandler]) {
				t.Errorf("access log lines differ:\nraw     %v\nhandler %v", lines[ForwardRaw], lines[ForwardHandler])
			}
			if !maps.Equal(counts[ForwardRaw], counts[ForwardHandler]) {
				t.Errorf("counters differ:\nraw     %v\nhandler %v", counts[ForwardRaw], counts[ForwardHandler])
			}
		})
	}
}

// TestRawForwardingQueuesForTheBreakerWithinTheRequestTimeout holds the breaker's
// one connection slot, so that the next request queues for it, and checks that both
// paths give up at the request timeout with the same answer.
func TestRawForwardingQueuesForTheBreakerWithinTheRequestTimeout(t *testing.T) {
	addr, _ := countingBackend(t, func(n int, w http.ResponseWriter) { fmt.Fprint(w, "ok") })
	answers := map[ForwardingMode][]parsedResponse{}
	for _, mode := range []ForwardingMode{ForwardRaw, ForwardHandler} {
		snap := policySnapshot("v1", addr, 100, 300*time.Millisecond)
		snap.Backends[0].CircuitBreaker = &config.CircuitBreaker{MaxConnections: 1, MaxPendingRequests: 10}
		e, reg, logged := policyEngine(t, mode, snap)
		release, err := e.backends.Pool("default/b:80").Breaker().Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		request := "GET /queued HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
		answers[mode] = parseResponses(t, exchange(t, e.Addr("127.0.0.1:0"), request), http.MethodGet)
		waited := time.Since(began)
		release()
		if got := answers[mode][0]; got.status != http.StatusGatewayTimeout || got.header.Get("X-Switchyard-Error") != "request-timeout" {
			t.Errorf("%s: %d %q after %v, want 504 request-timeout", mode, got.status, got.header.Get("X-Switchyard-Error"), waited)
		}
		if waited > 5*time.Second {
			t.Errorf("%s: the queued request waited %v, past its 300ms timeout", mode, waited)
		}
		settle(t, reg)
		if lines := logged.lines(t, "endpoint"); len(lines) != 1 || lines[0]["flags"] != "request-timeout" {
			t.Errorf("%s: logged %v, want one line flagged request-timeout", mode, lines)
		}
	}
	if !equalResponses(answers[ForwardRaw], answers[ForwardHandler]) {
		t.Errorf("the client got\n%+v\non the raw path, and\n%+v\non the handler path", answers[ForwardRaw], answers[ForwardHandler])
	}
}
