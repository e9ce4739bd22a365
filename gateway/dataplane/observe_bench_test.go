package dataplane

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/observe"
)

// BenchmarkProxyRequestObservability serves a GET through a listener's handler (route
// lookup, the observer, the proxy) to a loopback backend, calling the handler
// directly so that the figures are the gateway's and not a client's, with:
//
//   - off: no Observer;
//   - metrics: request metrics per route (--route-metrics=full);
//   - metrics+log: and an access log line for every request, written to io.Discard;
//   - all: and a traced request (sample ratio 1) whose spans are exported over
//     OTLP/HTTP to a loopback receiver that discards them;
//   - all-1%: all with a sample ratio of 0.01, so that most requests only carry
//     trace context (their spans are not recorded).
//
// The ratio of each variant's ns/op to off's is the cost of that observability.
func BenchmarkProxyRequestObservability(b *testing.B) {
	snap := snapshotFor("bench", startBenchBackend(b))
	benchObservability(b, snap, http.StatusOK)
}

// BenchmarkObservabilityOverhead is BenchmarkProxyRequestObservability for a route
// whose filter answers with a redirect, without a backend: with no round trip to
// hide it, the difference between the variants is what observing a request costs.
func BenchmarkObservabilityOverhead(b *testing.B) {
	snap := snapshotFor("bench", "127.0.0.1:1")
	rule := &snap.Listeners[0].VirtualHosts[0].Routes[0].Rules[0]
	rule.Filters = []config.Filter{{Type: config.FilterRequestRedirect, RequestRedirect: &config.Redirect{Hostname: "elsewhere.example.com"}}}
	benchObservability(b, snap, http.StatusFound)
}

// benchObservability serves GETs through the listener handler of snap with each
// variant of observability, expecting status.
func benchObservability(b *testing.B, snap *config.Snapshot, status int) {
	variants := []struct {
		name         string
		metrics, log bool
		// ratio is the trace sample ratio; tracing is off when it is negative.
		ratio float64
	}{
		{name: "off", ratio: -1},
		{name: "metrics", metrics: true, ratio: -1},
		{name: "metrics+log", metrics: true, log: true, ratio: -1},
		{name: "all", metrics: true, log: true, ratio: 1},
		{name: "all-1%", metrics: true, log: true, ratio: 0.01},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			var obs *observe.Observer
			if v.metrics || v.log || v.ratio >= 0 {
				obs = benchObserver(b, v.metrics, v.log, v.ratio)
			}
			h := benchListenerHandler(b, obs, snap)
			req := httptest.NewRequest(http.MethodGet, "http://app.example.com/bench?q=1", nil)
			req.RemoteAddr = "192.0.2.1:4000"
			w := &discardWriter{header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				w.status = 0
				clear(w.header)
				h.ServeHTTP(w, req)
				if w.status != status {
					b.Fatalf("status %d, want %d", w.status, status)
				}
			}
		})
	}
}

// benchObserver builds an Observer with the parts asked for; it traces when ratio is
// not negative.
func benchObserver(b *testing.B, metrics, log bool, ratio float64) *observe.Observer {
	var opts observe.Options
	if metrics {
		opts.Registerer = prometheus.NewRegistry()
	}
	if log {
		opts.AccessLog = observe.NewAccessLog(io.Discard, nil, 1)
		b.Cleanup(func() { _ = opts.AccessLog.Close() })
	}
	if ratio >= 0 {
		sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
		}))
		b.Cleanup(sink.Close)
		tracing, err := observe.NewTracing(context.Background(), observe.TracingOptions{Endpoint: sink.URL, SampleRatio: ratio})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = tracing.Shutdown(ctx)
		})
		opts.Tracing = tracing
	}
	obs, err := observe.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	return obs
}

// benchListenerHandler applies a one-listener snapshot to an engine observed by obs
// and returns the handler of its listener.
func benchListenerHandler(b *testing.B, obs *observe.Observer, snap *config.Snapshot) http.Handler {
	e := New(Options{Observer: obs, Logger: slog.New(slog.DiscardHandler)})
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	if err := e.Apply(snap); err != nil {
		b.Fatal(err)
	}
	for _, spec := range e.current.Load().routes.specs {
		return spec.Handler
	}
	b.Fatal("the snapshot has no listener")
	return nil
}

func startBenchBackend(b *testing.B) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "hello from the backend")
	}))
	b.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// discardWriter is a ResponseWriter that keeps the status and drops the body.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.header }

func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(p), nil
}
