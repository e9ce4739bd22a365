package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/backend"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/outcome"
	"github.com/switchyard-dev/switchyard/plugins"
)

// wantOutcome fails the test unless the backend's totals hold requests and errors,
// with every request in the latency histogram.
func wantOutcome(t *testing.T, p *Proxy, name string, requests, errors int64) outcome.Totals {
	t.Helper()
	got := p.BackendOutcome(name)
	var histogram int64
	for _, n := range got.Latency {
		histogram += n
	}
	if got.Requests != requests || got.Errors != errors || histogram != requests {
		t.Fatalf("%s: %d requests, %d errors, %d in the histogram; want %d, %d, %d",
			name, got.Requests, got.Errors, histogram, requests, errors, requests)
	}
	return got
}

func singleBackendRule(name string) config.Rule {
	return config.Rule{Backends: []config.BackendRef{{Backend: name, Weight: 1}}}
}

func TestOutcomesCountAnswersAndTheirLatency(t *testing.T) {
	var failing atomic.Int32
	slow := startBackend(t, func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(30 * time.Millisecond)
		_, _ = io.WriteString(w, "slow")
	})
	bad := startBackend(t, failWith(http.StatusServiceUnavailable, &failing))
	g := newGateway(t, Options{}, []config.Backend{httpBackend("ns/slow:80", ready(slow)), httpBackend("ns/bad:80", ready(bad)),
		httpBackend("ns/idle:80", ready(slow))},
		config.Rule{
			Backends:    []config.BackendRef{{Backend: "ns/slow:80", Weight: 1}, {Backend: "ns/idle:80", Weight: 0}, {Backend: "ns/bad:80", Weight: 0}},
			HeaderRoute: &config.HeaderRoute{Headers: []config.Header{{Name: "X-Bad", Value: "1"}}, Backend: 2},
		}, nil)
	for range 3 {
		if status, body := send(t, g, ""); status != http.StatusOK || body != "slow" {
			t.Fatalf("got %d %q", status, body)
		}
	}
	for range 2 {
		if status, _ := send(t, g, "", [2]string{"X-Bad", "1"}); status != http.StatusServiceUnavailable {
			t.Fatalf("failing backend answered %d", status)
		}
	}
	slowTotals := wantOutcome(t, g.proxy, "ns/slow:80", 3, 0)
	// Every request took at least the backend's pause, so no bucket below it counts.
	if q := slowTotals.Quantile(0.01); q < 30*time.Millisecond {
		t.Errorf("fastest request of a 30ms backend recorded under %v", q)
	}
	wantOutcome(t, g.proxy, "ns/bad:80", 2, 2)
	all := g.proxy.BackendOutcomes()
	if _, ok := all["ns/idle:80"]; ok || len(all) != 2 {
		t.Errorf("BackendOutcomes lists %v; want only the two backends with traffic", all)
	}
	if got := g.proxy.BackendOutcome("ns/unknown:80"); got.Requests != 0 || got.Latency != nil {
		t.Errorf("unknown backend: %+v", got)
	}
}

func TestOutcomesCountGatewayAnswersAsFailures(t *testing.T) {
	empty := httpBackend("ns/empty:80", nil)
	refused := httpBackend("ns/refused:80", ready(closedAddr(t)))
	for _, b := range []config.Backend{empty, refused} {
		g := newGateway(t, Options{}, []config.Backend{b}, singleBackendRule(b.Name), nil)
		status, _, _ := g.get(t, "/")
		if status < 500 {
			t.Fatalf("%s: status %d", b.Name, status)
		}
		wantOutcome(t, g.proxy, b.Name, 1, 1)
	}
}

func TestOutcomesCountARetriedRequestOnce(t *testing.T) {
	var calls atomic.Int32
	addr := startBackend(t, flaky(2, &calls))
	retry := &config.Retry{Codes: []int{503}, Attempts: 2, Backoff: dur(time.Millisecond)}
	rule := singleBackendRule("ns/f:80")
	rule.Retry = retry
	g := newGateway(t, Options{}, []config.Backend{httpBackend("ns/f:80", ready(addr))}, rule, nil)
	if status, _ := post(t, g, "x"); status != http.StatusOK || calls.Load() != 3 {
		t.Fatalf("got %d after %d calls", status, calls.Load())
	}
	wantOutcome(t, g.proxy, "ns/f:80", 1, 0)
	// Out of attempts: the last 503 is the answer, and it counts once.
	calls.Store(-10)
	if status, _ := post(t, g, "x"); status != http.StatusServiceUnavailable {
		t.Fatalf("exhausted retries answered %d", status)
	}
	wantOutcome(t, g.proxy, "ns/f:80", 2, 1)
}

func TestOutcomesCountTimeouts(t *testing.T) {
	var calls atomic.Int32
	addr := startBackend(t, slowFirst(1000, &calls))
	perTry := singleBackendRule("ns/slow:80")
	perTry.Retry = &config.Retry{Attempts: 1, PerTryTimeout: dur(50 * time.Millisecond), On: []config.RetryCondition{config.RetryTimeout}}
	g := newGateway(t, Options{}, []config.Backend{httpBackend("ns/slow:80", ready(addr))}, perTry, nil)
	if status, reason, _ := g.get(t, "/"); status != http.StatusGatewayTimeout || reason != "upstream-timeout" || calls.Load() != 2 {
		t.Fatalf("per-try timeouts: %d %q after %d calls", status, reason, calls.Load())
	}
	wantOutcome(t, g.proxy, "ns/slow:80", 1, 1)

	whole := singleBackendRule("ns/slow:80")
	whole.Timeouts = &config.Timeouts{Request: dur(50 * time.Millisecond)}
	g = newGateway(t, Options{}, []config.Backend{httpBackend("ns/slow:80", ready(addr))}, whole, nil)
	if status, reason, _ := g.get(t, "/"); status != http.StatusGatewayTimeout || reason != "request-timeout" {
		t.Fatalf("request timeout: %d %q", status, reason)
	}
	got := wantOutcome(t, g.proxy, "ns/slow:80", 1, 1)
	if q := got.Quantile(1); q < 50*time.Millisecond {
		t.Errorf("a request cut at 50ms recorded under %v", q)
	}
}

func TestOutcomesCountAnOpenBreaker(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	stalled := startBackend(t, func(w http.ResponseWriter, _ *http.Request) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
	})
	b := httpBackend("ns/f:80", ready(stalled))
	b.CircuitBreaker = &config.CircuitBreaker{MaxRequests: 1}
	g := newGateway(t, Options{}, []config.Backend{b}, singleBackendRule("ns/f:80"), nil)
	first := make(chan int, 1)
	go func() {
		status, _, _ := g.get(t, "/")
		first <- status
	}()
	<-entered
	if status, reason, _ := g.get(t, "/"); status != http.StatusServiceUnavailable || reason != "circuit-open" {
		t.Fatalf("second request: %d %q", status, reason)
	}
	wantOutcome(t, g.proxy, "ns/f:80", 1, 1)
	close(release)
	if status := <-first; status != http.StatusOK {
		t.Fatalf("admitted request: %d", status)
	}
	wantOutcome(t, g.proxy, "ns/f:80", 2, 1)
}

func TestOutcomesIgnoreClientsThatLeave(t *testing.T) {
	cancelled := make(chan struct{}, 1)
	slow := startBackend(t, sleepy(cancelled))
	var calls atomic.Int32
	failing := startBackend(t, failWith(http.StatusServiceUnavailable, &calls))
	done := make(chan struct{}, 1)
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			done <- struct{}{}
		})
	}
	// One request waits on a backend, the other in a long pause between retries,
	// when the client goes away.
	rule := config.Rule{
		Backends:    []config.BackendRef{{Backend: "ns/slow:80", Weight: 1}, {Backend: "ns/failing:80", Weight: 0}},
		HeaderRoute: &config.HeaderRoute{Headers: []config.Header{{Name: "X-Failing", Value: "1"}}, Backend: 1},
		Retry:       &config.Retry{Codes: []int{503}, Attempts: 1, Backoff: dur(time.Minute)},
	}
	g := newGateway(t, Options{}, []config.Backend{httpBackend("ns/slow:80", ready(slow)), httpBackend("ns/failing:80", ready(failing))}, rule, wrap)
	for _, header := range []string{"", "1"} {
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.url+"/", nil)
		if header != "" {
			req.Header.Set("X-Failing", header)
		}
		if res, err := testClient.Do(req); err == nil {
			res.Body.Close()
			t.Fatalf("request with header %q should have been abandoned", header)
		}
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("handler did not finish after the client left")
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("failing backend saw %d requests; want 1 before the pause", calls.Load())
	}
	wantOutcome(t, g.proxy, "ns/slow:80", 0, 0)
	wantOutcome(t, g.proxy, "ns/failing:80", 0, 0)
}

func TestOutcomesCountAnUpgradeWhenItStarts(t *testing.T) {
	addr := startBackend(t, echoUpgrade(t))
	wrongProtocol := startBackend(t, func(w http.ResponseWriter, _ *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: something-else\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
	})
	for _, c := range []struct {
		addr   string
		status int
		errors int64
	}{{addr, http.StatusSwitchingProtocols, 0}, {wrongProtocol, http.StatusBadGateway, 1}} {
		g := newGateway(t, Options{}, []config.Backend{{Name: "ns/ws:80", Protocol: config.AppProtocolWebSocket, Endpoints: ready(c.addr)}},
			singleBackendRule("ns/ws:80"), nil)
		const key = "dGhlIHNhbXBsZSBub25jZQ=="
		res, _, conn := rawExchange(t, g.front.Listener.Addr().String(), "GET /chat HTTP/1.1\r\nHost: app.example.com\r\n"+
			"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "+key+"\r\nSec-WebSocket-Version: 13\r\n\r\n")
		if res.StatusCode != c.status {
			t.Fatalf("handshake answered %d, want %d", res.StatusCode, c.status)
		}
		// The upgraded connection is still open: the request has counted already.
		wantOutcome(t, g.proxy, "ns/ws:80", 1, c.errors)
		conn.Close()
	}
}

func TestOutcomesOutliveHandlersAndAreBounded(t *testing.T) {
	addr := startBackend(t, named("a"))
	m := backend.NewManager(backend.Options{})
	t.Cleanup(m.Close)
	m.Update([]config.Backend{httpBackend("ns/a:80", ready(addr))})
	p := New(m, Options{})
	for generation := range 3 {
		h, err := p.RuleHandler(plugins.Context{Upstream: m}, &config.Rule{Backends: []config.BackendRef{{Backend: "ns/a:80", Weight: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		p.RetainOutcomes([]string{"ns/a:80"})
		rec := newRecorder()
		h.ServeHTTP(rec, mustRequest(t, http.MethodGet, "/"))
		wantOutcome(t, p, "ns/a:80", int64(generation+1), 0)
	}

	// Backends no longer referenced keep their counts, up to the bound, oldest
	// dropped first; referenced ones are never dropped.
	names := func(from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, fmt.Sprintf("ns/old-%05d:80", i))
		}
		return out
	}
	for _, name := range names(0, maxUnreferencedOutcomes+10) {
		p.outcomes.recorder(name).Record(time.Millisecond, false)
	}
	p.RetainOutcomes(names(0, 10)) // the rest become unreferenced, oldest first
	p.RetainOutcomes(nil)          // now the first ten are unreferenced too, newest
	for i, name := range names(0, maxUnreferencedOutcomes+10) {
		kept := p.BackendOutcome(name).Requests == 1
		if want := i < 10 || i >= 20; kept != want {
			t.Fatalf("%s kept = %v, want %v", name, kept, want)
		}
	}
	if p.BackendOutcome("ns/a:80").Requests != 0 {
		// ns/a:80 became unreferenced with the first batch, and sorts first in it.
		t.Fatal("the backend unreferenced the longest was kept")
	}
}

// TestOutcomesIgnoreClientsThatAbandonTheirUpload checks that a client that goes
// away in the middle of its request body does not count against the backend: the
// forwarding fails because the body cannot be read, not because of the backend, so
// the request is neither a recorded failure nor a failure of the endpoint.
func TestOutcomesIgnoreClientsThatAbandonTheirUpload(t *testing.T) {
	reading := make(chan struct{}, 1)
	addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		reading <- struct{}{}
		_, _ = io.Copy(io.Discard, r.Body)
	})
	done := make(chan struct{}, 1)
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			done <- struct{}{}
		})
	}
	g := newGateway(t, Options{}, []config.Backend{httpBackend("ns/up:80", ready(addr))}, singleBackendRule("ns/up:80"), wrap)
	conn, err := net.DialTimeout("tcp", g.front.Listener.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /upload HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 1000000\r\n\r\n"+
		strings.Repeat("x", 1000)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reading:
	case <-time.After(5 * time.Second):
		t.Fatal("the upload never reached the backend")
	}
	conn.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler did not finish after the client left")
	}
	wantOutcome(t, g.proxy, "ns/up:80", 0, 0)
	for _, ep := range g.manager.Pool("ns/up:80").Endpoints() {
		if n := ep.Endpoint.Failures.Load(); n != 0 {
			t.Fatalf("endpoint %s has %d failures from a client that left", ep.Endpoint.Address, n)
		}
	}
}
