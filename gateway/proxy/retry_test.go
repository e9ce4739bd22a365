package proxy

import (
	"fmt"
	"io"
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
