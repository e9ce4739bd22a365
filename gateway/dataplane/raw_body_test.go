package dataplane

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// bodyBackend answers the first request it gets with 503 and every later one with
// the request's body, under a field in lower case that shows whether the answer
// was relayed as is; it returns its address and the bodies it got, in order.
func bodyBackend(t *testing.T) (string, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var bodies []string
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(body))
		first := len(bodies) == 1
		mu.Unlock()
		if first {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header()["x-lower"] = []string{"v"}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(bodies)
	}
}

// TestRawForwardingRetriesBodiesAsTheHandlerPath: a request whose body the raw path
// forwards is sent again, body and all, when its first try gets a gateway error, as
// the handler path sends it again from the body it keeps to replay; the client gets
// the same answer on both paths, relayed as is on the raw one.
func TestRawForwardingRetriesBodiesAsTheHandlerPath(t *testing.T) {
	rawServed := rawServedHere(t)
	for _, method := range []string{http.MethodPut, http.MethodPost} {
		request := method + " /doc/1 HTTP/1.1\r\nHost: app.example.com\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world"
		answers := map[ForwardingMode][]parsedResponse{}
		got := map[ForwardingMode][]string{}
		for _, mode := range []ForwardingMode{ForwardRaw, ForwardHandler} {
			addr, bodies := bodyBackend(t)
			e, _, _ := policyEngine(t, mode, policySnapshot("v1", addr, 100, 10*time.Second))
			wire := exchange(t, e.Addr("127.0.0.1:0"), request)
			answers[mode], got[mode] = parseResponses(t, wire, method), bodies()
			if relayed := bytes.Contains(wire, []byte("\r\nx-lower: v\r\n")); relayed != (mode == ForwardRaw && rawServed) {
				t.Errorf("%s %s: answer relayed as is: %v\n%q", method, mode, relayed, wire)
			}
		}
		if !equalResponses(answers[ForwardRaw], answers[ForwardHandler]) {
			t.Errorf("%s: the client got\n%+v\non the raw path, and\n%+v\non the handler path", method, answers[ForwardRaw], answers[ForwardHandler])
		}
		if !slices.Equal(got[ForwardRaw], got[ForwardHandler]) {
			t.Errorf("%s: the backend got bodies %q on the raw path, %q on the handler path", method, got[ForwardRaw], got[ForwardHandler])
		}
		if method == http.MethodPut && !slices.Equal(got[ForwardRaw], []string{"hello world", "hello world"}) {
			t.Errorf("PUT: the backend got bodies %q, want the body twice", got[ForwardRaw])
		}
	}
}

// TestRawForwardingKeepsAConnectionInStepAfterABodyItRefuses: a request with a body
// that a filter answers (here the rate limit) has its body counted as read, so that
// the next request on the connection is read from where the body ends, on both
// paths alike.
func TestRawForwardingKeepsAConnectionInStepAfterABodyItRefuses(t *testing.T) {
	stream := "GET /first HTTP/1.1\r\nHost: app.example.com\r\n\r\n" +
		"POST /refused HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 24\r\n\r\nGET /smuggled HTTP/1.1\r\n" +
		"GET /last HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
	methods := []string{http.MethodGet, http.MethodPost, http.MethodGet}
	statuses := map[ForwardingMode][]int{}
	for _, mode := range []ForwardingMode{ForwardRaw, ForwardHandler} {
		addr, bodies := bodyBackend(t)
		e, _, _ := policyEngine(t, mode, policySnapshot("v1", addr, 1, 10*time.Second))
		conn, err := net.DialTimeout("tcp", e.Addr("127.0.0.1:0"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, stream); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		for _, method := range methods {
			res, err := http.ReadResponse(br, &http.Request{Method: method})
			if err != nil {
				t.Fatalf("%s: reading answer %d: %v", mode, len(statuses[mode]), err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			statuses[mode] = append(statuses[mode], res.StatusCode)
		}
		conn.Close()
		// The first request went on, and was tried again after the backend's
		// first answer (503); the others were refused, and the text of the body
		// was never read as a request.
		if got := bodies(); len(got) != 2 {
			t.Errorf("%s: the backend got %d requests, want 2", mode, len(got))
		}
	}
	want := []int{http.StatusOK, http.StatusTooManyRequests, http.StatusTooManyRequests}
	for mode, got := range statuses {
		if !slices.Equal(got, want) {
			t.Errorf("%s: statuses %v, want %v", mode, got, want)
		}
	}
}

// TestRawForwardingRetriesOnlyIdempotentBodiesWhenAsked: under a retry policy
// limited to idempotent methods, a POST's body goes to the backend once and a PUT's
// again after a gateway error, on both paths.
func TestRawForwardingRetriesOnlyIdempotentBodiesWhenAsked(t *testing.T) {
	for _, c := range []struct {
		method string
		tries  int
	}{{http.MethodPost, 1}, {http.MethodPut, 2}} {
		request := c.method + " /doc/1 HTTP/1.1\r\nHost: app.example.com\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world"
		for _, mode := range []ForwardingMode{ForwardRaw, ForwardHandler} {
			addr, bodies := bodyBackend(t)
			snap := policySnapshot("v1", addr, 100, 10*time.Second)
			snap.Listeners[0].VirtualHosts[0].Routes[0].Rules[0].Retry.IdempotentOnly = true
			e, _, _ := policyEngine(t, mode, snap)
			_ = exchange(t, e.Addr("127.0.0.1:0"), request)
			if got := bodies(); !slices.Equal(got, slices.Repeat([]string{"hello world"}, c.tries)) {
				t.Errorf("%s %s: the backend got %q, want the body %d time(s)", c.method, mode, got, c.tries)
			}
		}
	}
}
