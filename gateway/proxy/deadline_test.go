package proxy

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// deadlineEcho answers with the deadline headers it received.
func deadlineEcho(calls *atomic.Int32) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.WriteString(w, r.Header.Get(DeadlineHeader)+"|"+r.Header.Get("Grpc-Timeout"))
	}
}

func sendWith(t *testing.T, g *gateway, headers map[string]string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.url+"/", nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get(errorHeader), string(body)
}

func deadlineGateway(t *testing.T, addr string, timeouts *config.Timeouts) *gateway {
	return newGateway(t, Options{}, []config.Backend{httpBackend("f", ready(addr))}, config.Rule{
		Timeouts: timeouts, Backends: []config.BackendRef{{Backend: "f", Weight: 1}}}, nil)
}

func forwardedMillis(t *testing.T, body string) int {
	t.Helper()
	v, _, _ := strings.Cut(body, "|")
	ms, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("the backend got deadline %q", v)
	}
	return ms
}

func TestDeadlineIsForwardedAsTheSmallerBudget(t *testing.T) {
	var calls atomic.Int32
	addr := startBackend(t, deadlineEcho(&calls))
	g := deadlineGateway(t, addr, &config.Timeouts{Request: dur(2 * time.Second)})
	// The caller's budget is smaller than the route's timeout.
	_, _, body := sendWith(t, g, map[string]string{DeadlineHeader: "800"})
	if ms := forwardedMillis(t, body); ms > 800 || ms < 600 {
		t.Errorf("caller allowed 800ms; the backend was told %dms", ms)
	}
	// The route's timeout is smaller than the caller's budget.
	_, _, body = sendWith(t, g, map[string]string{DeadlineHeader: "60000"})
	if ms := forwardedMillis(t, body); ms > 2000 || ms < 1800 {
		t.Errorf("route allows 2s; the backend was told %dms", ms)
	}
	// gRPC: grpc-timeout is read and rewritten too.
	_, _, body = sendWith(t, g, map[string]string{"Content-Type": "application/grpc", "Grpc-Timeout": "500m"})
	ms := forwardedMillis(t, body)
	if _, grpc, _ := strings.Cut(body, "|"); ms > 500 || ms < 300 || grpc != strconv.Itoa(ms)+"m" {
		t.Errorf("gRPC with 500m: backend told %q", body)
	}
}

func TestDeadlineWithoutTimeoutsIsNotInvented(t *testing.T) {
	var calls atomic.Int32
	g := deadlineGateway(t, startBackend(t, deadlineEcho(&calls)), nil)
	if _, _, body := sendWith(t, g, nil); body != "|" {
		t.Fatalf("with no timeout and no caller deadline the backend got %q", body)
	}
	// A malformed value is ignored and not passed on.
	if status, _, body := sendWith(t, g, map[string]string{DeadlineHeader: "soon"}); status != 200 || body != "|" {
		t.Fatalf("malformed deadline: %d %q", status, body)
	}
}

func TestDeadlineExpiredIsAnsweredAtOnce(t *testing.T) {
	var calls atomic.Int32
	g := deadlineGateway(t, startBackend(t, deadlineEcho(&calls)), nil)
	for _, v := range []string{"0", "-5"} {
		status, reason, _ := sendWith(t, g, map[string]string{DeadlineHeader: v})
		if status != http.StatusGatewayTimeout || reason != "deadline-exceeded" {
			t.Errorf("deadline %s: %d %q; want 504 deadline-exceeded", v, status, reason)
		}
	}
	if calls.Load() != 0 {
		t.Fatalf("the backend was contacted %d times for expired deadlines", calls.Load())
	}
}

func TestDeadlineCutsASlowBackend(t *testing.T) {
	var calls atomic.Int32
	g := deadlineGateway(t, startBackend(t, slowFirst(1, &calls)), nil)
	start := time.Now()
	status, reason, _ := sendWith(t, g, map[string]string{DeadlineHeader: "150"})
	if status != http.StatusGatewayTimeout || reason != "deadline-exceeded" {
		t.Fatalf("got %d %q; want 504 deadline-exceeded", status, reason)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("a 150ms deadline took %v", took)
	}
}

func TestParseGRPCTimeout(t *testing.T) {
	good := map[string]time.Duration{"1S": time.Second, "250m": 250 * time.Millisecond, "3M": 3 * time.Minute,
		"10u": 10 * time.Microsecond, "99999999H": maxDeadline}
	for v, want := range good {
		if got, ok := parseGRPCTimeout(v); !ok || got != want {
			t.Errorf("%q: %v %v; want %v", v, got, ok, want)
		}
	}
	for _, v := range []string{"", "5", "S", "5x", "-1S", "1234567890S"} {
		if _, ok := parseGRPCTimeout(v); ok {
			t.Errorf("%q parsed", v)
		}
	}
}

// TestDeadlineHeaderNamesAreCanonical checks that the names the deadline handler
// reads from the header map directly are those net/http stores, so that reading
// them without Get finds what Get would.
func TestDeadlineHeaderNamesAreCanonical(t *testing.T) {
	for _, name := range []string{DeadlineHeader, "Grpc-Timeout", "Content-Type"} {
		if c := http.CanonicalHeaderKey(name); c != name {
			t.Errorf("%q is stored as %q", name, c)
		}
		h := http.Header{}
		h.Add(strings.ToLower(name), "one")
		h.Add(name, "two")
		if got, want := first(h, name), h.Get(name); got != want {
			t.Errorf("first(%q) = %q, Get gives %q", name, got, want)
		}
	}
	if got := first(http.Header{}, DeadlineHeader); got != "" {
		t.Errorf("first of a missing header = %q", got)
	}
}

// BenchmarkDeadlineHandler is what a request timeout adds to a request that carries
// no deadline of its caller's.
func BenchmarkDeadlineHandler(b *testing.B) {
	h := &deadlineHandler{next: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), timeout: 10 * time.Second}
	r, _ := http.NewRequest(http.MethodGet, "http://app.example.com/", nil)
	r.Header.Set("Accept", "*/*")
	r.Header.Set("User-Agent", "bench")
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(nil, r)
	}
}
