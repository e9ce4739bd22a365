package standalone_test

import (
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// behaviour is how a loopbackBackend answers.
type behaviour struct {
	// status, when not zero, is the answer to every request.
	status int
	// stall holds every request until the backend is released or the caller gives up.
	stall bool
	// reset closes each connection with a TCP reset instead of answering.
	reset bool
}

// loopbackBackend is an HTTP server in the test process, on a loopback port, whose
// behaviour the test changes while it runs (answer, fail with a status, stall, reset)
// and which records what reached it. Unlike the echo process it lets a test count the
// requests each endpoint saw and read the headers it was sent.
type loopbackBackend struct {
	name string
	port int
	how  atomic.Pointer[behaviour]
	// inFlight counts the requests being handled now.
	inFlight atomic.Int64

	mu sync.Mutex
	// byMethod counts the requests received, by method.
	byMethod map[string]int
	// byID counts the requests received, by their x-request-id header.
	byID map[string]int
	// deadlines are the deadline headers received, in order ("" when absent).
	deadlines []string
	// released is closed to let stalled requests go; a new one replaces it.
	released chan struct{}
}

// startBackend starts a loopback backend that answers 200 with an echo-style JSON
// reply naming it as the pod.
func startBackend(t testing.TB, name string) *loopbackBackend {
	t.Helper()
	// The backend binds in this process at once, so the kernel's choice of port
	// cannot be taken by anyone before it is in use.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &loopbackBackend{name: name, port: l.Addr().(*net.TCPAddr).Port,
		byMethod: map[string]int{}, byID: map[string]int{}, released: make(chan struct{})}
	b.how.Store(&behaviour{})
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		b.release()
		_ = srv.Close()
	})
	return b
}

// set changes how the backend answers from the next request on.
func (b *loopbackBackend) set(how behaviour) { b.how.Store(&how) }

// release lets every stalled request answer.
func (b *loopbackBackend) release() {
	b.mu.Lock()
	close(b.released)
	b.released = make(chan struct{})
	b.mu.Unlock()
}

func (b *loopbackBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.inFlight.Add(1)
	defer b.inFlight.Add(-1)
	b.mu.Lock()
	b.byMethod[r.Method]++
	if id := r.Header.Get("X-Request-Id"); id != "" {
		b.byID[id]++
	}
	b.deadlines = append(b.deadlines, r.Header.Get("X-Switchyard-Deadline-Ms"))
	released := b.released
	b.mu.Unlock()

	how := b.how.Load()
	if how.stall {
		select {
		case <-released:
		case <-r.Context().Done():
			return
		}
	}
	if how.reset {
		resetConnection(w)
		return
	}
	if how.status != 0 {
		w.WriteHeader(how.status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(echoReply{Path: r.URL.RequestURI(), Host: r.Host, Method: r.Method,
		Proto: r.Proto, Headers: r.Header, Pod: b.name})
}

// resetConnection takes the connection over and closes it with a TCP reset, as a
// crashing backend would.
func resetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// hits is the number of requests received with the method, or with any method when
// it is empty.
func (b *loopbackBackend) hits(method string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if method != "" {
		return b.byMethod[method]
	}
	n := 0
	for _, c := range b.byMethod {
		n += c
	}
	return n
}

// repeatedIDs lists the request IDs this backend received more than once.
func (b *loopbackBackend) repeatedIDs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for id, n := range b.byID {
		if n > 1 {
			out = append(out, id)
		}
	}
	return out
}

// lastDeadline is the deadline header of the latest request, "" when it had none or
// no request arrived.
func (b *loopbackBackend) lastDeadline() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.deadlines) == 0 {
		return ""
	}
	return b.deadlines[len(b.deadlines)-1]
}
