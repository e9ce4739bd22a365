package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// flaky fails the first `failures` requests with 503 and then echoes the body.
func flaky(failures int32, calls *atomic.Int32) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if calls.Add(1) <= failures {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "body=%s", body)
	}
}

func post(t *testing.T, g *gateway, body string) (int, string) {
	t.Helper()
	res, err := testClient.Post(g.url+"/", "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestRetryOnStatusReplaysBody(t *testing.T) {
	var calls atomic.Int32
	addr := startBackend(t, flaky(2, &calls))
	retry := &config.Retry{Codes: []int{503}, Attempts: 2, Backoff: dur(10 * time.Millisecond)}
	g := newGateway(t, Options{}, []config.Backend{httpBackend("f", ready(addr))}, config.Rule{Retry: retry, Backends: []config.BackendRef{{Backend: "f", Weight: 1}}}, nil)
	status, body := post(t, g, "hello")
	if status != http.StatusOK || body != "body=hello" || calls.Load() != 3 {
		t.Fatalf("got %d %q after %d calls; want 200 body=hello after 3", status, body, calls.Load())
	}
	// Out of attempts: the last failure is passed on.
	calls.Store(-10)
	if status, _ := post(t, g, "x"); status != http.StatusServiceUnavailable || calls.Load() != -7 {
		t.Fatalf("exhausted retries: %d after %d calls", status, calls.Load()+10)
	}
}

func TestRetrySkipsLargeBodiesAndUnlistedCodes(t *testing.T) {
	var calls atomic.Int32
	addr := startBackend(t, flaky(1, &calls))
	g := newGateway(t, Options{}, []config.Backend{httpBackend("f", ready(addr))}, config.Rule{
		Retry: &config.Retry{Codes: []int{503}, Attempts: 3}, Backends: []config.BackendRef{{Backend: "f", Weight: 1}},
	}, nil)
	big := strings.Repeat("x", maxReplayBody+1)
	if status, _ := post(t, g, big); status != http.StatusServiceUnavailable || calls.Load() != 1 {
		t.Fatalf("large body: %d after %d calls; want one 503", status, calls.Load())
	}
	// The body still reaches the backend whole when it is not retried.
	if status, body := post(t, g, big); status != http.StatusOK || body != "body="+big {
		t.Fatalf("large body forwarded as %d, %d bytes", status, len(body))
	}
	// A body of unknown length over the limit is forwarded whole, once.
	calls.Store(0)
	res, err := testClient.Post(g.url+"/", "text/plain", struct{ io.Reader }{strings.NewReader(big)})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || calls.Load() != 1 {
		t.Fatalf("large chunked body: %d after %d calls", res.StatusCode, calls.Load())
	}
	res, err = testClient.Post(g.url+"/", "text/plain", struct{ io.Reader }{strings.NewReader(big)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(got) != "body="+big {
		t.Fatalf("large chunked body arrived with %d bytes", len(got))
	}
	calls.Store(0)
	g2 := newGateway(t, Options{}, []config.Backend{httpBackend("f", ready(addr))}, config.Rule{
		Retry: &config.Retry{Codes: []int{502}, Attempts: 3}, Backends: []config.BackendRef{{Backend: "f", Weight: 1}},
	}, nil)
	if status, _ := post(t, g2, "x"); status != http.StatusServiceUnavailable || calls.Load() != 1 {
		t.Fatalf("unlisted code retried: %d after %d calls", status, calls.Load())
	}
}

func TestRetryOnConnectFailure(t *testing.T) {
	var calls atomic.Int32
	live := startBackend(t, flaky(0, &calls))
	eps := ready(closedAddr(t), live)
	g := newGateway(t, Options{}, []config.Backend{httpBackend("f", eps)}, config.Rule{
		Retry: &config.Retry{Attempts: 1}, Backends: []config.BackendRef{{Backend: "f", Weight: 1}},
	}, nil)
	// Round robin alternates between the refusing and the live endpoint; every
	// request must succeed, half of them on the second try.
	for i := range 10 {
		if status, body := post(t, g, fmt.Sprint(i)); status != http.StatusOK || body != fmt.Sprint("body=", i) {
			t.Fatalf("request %d: %d %q", i, status, body)
		}
	}
	if calls.Load() != 10 {
		t.Fatalf("live backend saw %d requests, want 10", calls.Load())
	}
}

// slowFirst stalls its first `slow` requests until they are cancelled (or a bound
// passes) and answers the rest at once.
func slowFirst(slow int32, calls *atomic.Int32) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// The server notices a cancelled request only once the body is read.
		_, _ = io.Copy(io.Discard, r.Body)
		if calls.Add(1) <= slow {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		_, _ = io.WriteString(w, "fast")
	}
}

func TestRetryOnBackendTimeout(t *testing.T) {
	var calls atomic.Int32
	addr := startBackend(t, slowFirst(1, &calls))
	timeouts := config.Timeouts{BackendRequest: dur(100 * time.Millisecond)}
	g := newGateway(t, Options{}, []config.Backend{httpBackend("f", ready(addr))}, config.Rule{
		Timeouts: &timeouts, Retry: &config.Retry{Codes: []int{503}, Attempts: 1},
		Backends: []config.BackendRef{{Backend: "f", Weight: 1}},
	}, nil)
	if status, body := post(t, g, "x"); status != http.StatusOK || body != "fast" || calls.Load() != 2 {
		t.Fatalf("got %d %q after %d calls; want the second, fast attempt", status, body, calls.Load())
	}
	// With every attempt too slow, the timeout of the last one is the answer.
	calls.Store(-10)
	if status, _ := post(t, g, "x"); status != http.StatusGatewayTimeout || calls.Load() != -8 {
		t.Fatalf("all attempts slow: %d after %d calls; want 504 after 2", status, calls.Load()+10)
	}
}

func TestRetryStopsAtRequestTimeout(t *testing.T) {
	var calls atomic.Int32
	addr := startBackend(t, slowFirst(100, &calls))
	timeouts := config.Timeouts{Request: dur(250 * time.Millisecond), BackendRequest: dur(100 * time.Millisecond)}
	g := newGateway(t, Options{}, []config.Backend{httpBackend("f", ready(addr))}, config.Rule{
		Timeouts: &timeouts, Retry: &config.Retry{Attempts: 50},
		Backends: []config.BackendRef{{Backend: "f", Weight: 1}},
	}, nil)
	status, reason, _ := g.get(t, "/")
	if status != http.StatusGatewayTimeout || reason != "request-timeout" {
		t.Fatalf("got %d %q; want 504 request-timeout", status, reason)
	}
	if n := calls.Load(); n < 2 || n > 3 {
		t.Fatalf("%d attempts fit a 250 ms request of 100 ms attempts; want 2 or 3", n)
	}
}

// resetFirst closes the connection of its first `resets` requests without answering.
func resetFirst(resets int32, calls *atomic.Int32) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= resets {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				if tcp, ok := conn.(*net.TCPConn); ok {
					_ = tcp.SetLinger(0)
				}
				conn.Close()
			}
			return
		}
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "body=%s", body)
	}
}

func TestRetryOnConnectionReset(t *testing.T) {
	var calls atomic.Int32
	addr := startBackend(t, resetFirst(2, &calls))
	g := newGateway(t, Options{}, []config.Backend{httpBackend("f", ready(addr))}, config.Rule{
		Retry: &config.Retry{Codes: []int{500}, Attempts: 2}, Backends: []config.BackendRef{{Backend: "f", Weight: 1}},
	}, nil)
	if status, body := post(t, g, "hello"); status != http.StatusOK || body != "body=hello" || calls.Load() != 3 {
		t.Fatalf("got %d %q after %d calls; want 200 after 3", status, body, calls.Load())
	}
	// Without retries the reset is a 502.
	calls.Store(0)
	g2 := newGateway(t, Options{}, []config.Backend{httpBackend("f", ready(addr))}, config.Rule{
		Backends: []config.BackendRef{{Backend: "f", Weight: 1}},
	}, nil)
	if status, _ := post(t, g2, "hello"); status != http.StatusBadGateway || calls.Load() != 1 {
		t.Fatalf("no retry stanza: %d after %d calls; want one 502", status, calls.Load())
	}
}

// TestStatusCodesOnlyRetriesNoFailureClass checks that a policy naming only status
// codes retries those and not resets, which an empty list of classes would retry.
func TestStatusCodesOnlyRetriesNoFailureClass(t *testing.T) {
	var calls atomic.Int32
	addr := startBackend(t, resetFirst(1, &calls))
	codesOnly := &config.Retry{Codes: []int{503}, Attempts: 2, On: []config.RetryCondition{config.RetryStatusCodesOnly}}
	g := newGateway(t, Options{}, []config.Backend{httpBackend("f", ready(addr))}, config.Rule{
		Retry: codesOnly, Backends: []config.BackendRef{{Backend: "f", Weight: 1}},
	}, nil)
	if status, _ := post(t, g, "hello"); status != http.StatusBadGateway || calls.Load() != 1 {
		t.Fatalf("reset under a codes-only policy: %d after %d calls; want 502 after 1", status, calls.Load())
	}
	var failing atomic.Int32
	g2 := retryGateway(t, startBackend(t, failWith(http.StatusServiceUnavailable, &failing)), *codesOnly)
	if status, _ := post(t, g2, "x"); status != http.StatusServiceUnavailable || failing.Load() != 3 {
		t.Fatalf("503 under a codes-only policy: %d after %d calls; want 3 calls", status, failing.Load())
	}
}
