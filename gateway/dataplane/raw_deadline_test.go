package dataplane

import (
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// TestRawForwardingTimesEachRequestAfresh sends requests that time out and
// requests that do not, one after another, through a rule with a per-try timeout.
// The raw path keeps the deadline contexts of a request for the next one: each
// request must still get a deadline of its own, counted from its own start, whether
// the request before it timed out or not.
func TestRawForwardingTimesEachRequestAfresh(t *testing.T) {
	const perTry = 300 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			// Past the per-try timeout, bounded so that the test ends.
			select {
			case <-r.Context().Done():
			case <-time.After(3 * perTry):
			}
			return
		}
		_, _ = w.Write([]byte(r.Header.Get("X-Switchyard-Deadline-Ms")))
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	for _, mode := range []ForwardingMode{ForwardRaw, ForwardHandler} {
		snap := policySnapshot("v1", ln.Addr().String(), 1000, 10*time.Second)
		snap.Listeners[0].VirtualHosts[0].Routes[0].Rules[0].Retry.PerTryTimeout = config.Duration(perTry)
		e, _, _ := policyEngine(t, mode, snap)
		addr := e.Addr("127.0.0.1:0")
		for i, path := range []string{"/fast", "/slow", "/fast", "/fast", "/slow", "/fast"} {
			request := "GET " + path + " HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
			answer := parseResponses(t, exchange(t, addr, request), http.MethodGet)
			got := answer[len(answer)-1]
			if path == "/slow" {
				if got.status != http.StatusGatewayTimeout {
					t.Errorf("%s: request %d (%s) got %d, want 504", mode, i, path, got.status)
				}
				continue
			}
			ms, err := strconv.Atoi(string(got.body))
			if got.status != http.StatusOK || err != nil || ms <= 0 || ms > int(perTry.Milliseconds()) {
				t.Errorf("%s: request %d (%s) got %d with deadline %q ms, want 200 with at most %d ms",
					mode, i, path, got.status, got.body, perTry.Milliseconds())
			}
			// A deadline counted from an earlier request's start would have
			// little of the per-try timeout left.
			if ms < int(perTry.Milliseconds())/2 {
				t.Errorf("%s: request %d was given %d ms of a %v per-try timeout", mode, i, ms, perTry)
			}
		}
	}
}
