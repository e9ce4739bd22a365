package observe

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestResponseWriterRecordsTheFinalStatus(t *testing.T) {
	cases := []struct {
		name  string
		write func(w http.ResponseWriter)
		want  int
		bytes int64
	}{
		{"body only", func(w http.ResponseWriter) { _, _ = w.Write([]byte("abc")) }, 200, 3},
		{"informational first", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusTeapot)
		}, http.StatusTeapot, 0},
		{"second WriteHeader ignored", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusAccepted)
			w.WriteHeader(http.StatusInternalServerError)
		}, http.StatusAccepted, 0},
		{"flush sends headers", func(w http.ResponseWriter) { http.NewResponseController(w).Flush() }, 200, 0},
		{"nothing", func(http.ResponseWriter) {}, 0, 0},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		w := &responseWriter{ResponseWriter: rec}
		c.write(w)
		if w.status != c.want || w.bytes != c.bytes {
			t.Errorf("%s: status %d, bytes %d; want %d, %d", c.name, w.status, w.bytes, c.want, c.bytes)
		}
		if c.name == "flush sends headers" && !rec.Flushed {
			t.Errorf("%s: the flush did not reach the connection's writer", c.name)
		}
	}
}

func TestTraceparentID(t *testing.T) {
	const id = "4bf92f3577b34da6a3ce929d0e0e4736"
	cases := map[string]string{
		"00-" + id + "-00f067aa0ba902b7-01":                                 id,
		"01-" + id + "-00f067aa0ba902b7-01-future":                          id,
		"00-" + "4BF92F3577B34DA6A3CE929D0E0E4736" + "-00f067aa0ba902b7-01": "",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01":           "",
		"00-" + id + "-00f067aa0ba902b7":                                    "",
		"":                                                                  "",
		"garbage":                                                           "",
	}
	for in, want := range cases {
		if got := traceparentID(in); got != want {
			t.Errorf("traceparentID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseRouteMetrics(t *testing.T) {
	for in, want := range map[string]RouteMetrics{"": RouteMetricsFull, "full": RouteMetricsFull, "coarse": RouteMetricsCoarse, "off": RouteMetricsOff} {
		if got, err := ParseRouteMetrics(in); got != want || err != nil {
			t.Errorf("ParseRouteMetrics(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseRouteMetrics("some"); err == nil {
		t.Error("an unknown mode was accepted")
	}
}

// countingWriter counts the bytes written to it.
type countingWriter struct{ n int }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
}

// linesAtDec is a requests_in_flight gauge that notes, whenever a request is
// counted out, how many bytes of lines its access log has taken: those written out
// to its destination and those it holds. Holding both of the log's locks keeps a
// flush from moving bytes between the two while they are counted.
type linesAtDec struct {
	prometheus.Gauge
	log  *AccessLog
	dest *countingWriter
	seen []int
}

func (g *linesAtDec) Dec() {
	out := g.log.out
	out.mu.Lock()
	out.outMu.Lock()
	g.seen = append(g.seen, g.dest.n+len(out.buf))
	out.outMu.Unlock()
	out.mu.Unlock()
	g.Gauge.Dec()
}

// TestExchangeIsLoggedBeforeItLeavesFlight checks that the handler path writes a
// request's access log line before it counts the request out of requests_in_flight,
// as the raw path does: a listener with nothing in flight has logged all it answered.
func TestExchangeIsLoggedBeforeItLeavesFlight(t *testing.T) {
	dest := &countingWriter{}
	a := NewAccessLog(dest, nil, 1)
	defer a.Close()
	o, err := New(Options{AccessLog: a, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	l := o.Listener("default/gw/http")
	if l.inFlight == nil {
		t.Fatal("the listener has no in-flight gauge")
	}
	probe := &linesAtDec{Gauge: l.inFlight, log: a, dest: dest}
	l.inFlight = probe
	for i := range 3 {
		x, _ := l.Begin(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/a", nil))
		x.End()
		if len(probe.seen) != i+1 || probe.seen[i] == 0 || (i > 0 && probe.seen[i] <= probe.seen[i-1]) {
			t.Fatalf("bytes of lines logged as each request was counted out: %v", probe.seen)
		}
	}
}
