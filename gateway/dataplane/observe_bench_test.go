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
//     OTLP/HTTP to a loopback receiver that discards them.
//
// The ratio of each variant's ns/op to off's is the cost of that observability.
func BenchmarkProxyRequestObservability(b *testing.B) {
	backendAddr := startBenchBackend(b)
	variants := []struct {
		name                 string
		metrics, log, traced bool
	}{
		{name: "off"},
		{name: "metrics", metrics: true},
		{name: "metrics+log", metrics: true, log: true},
		{name: "all", metrics: true, log: true, traced: true},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			var obs *observe.Observer
			if v.metrics || v.log || v.traced {
				obs = benchObserver(b, v.metrics, v.log, v.traced)
			}
			h := benchListenerHandler(b, obs, backendAddr)
			req := httptest.NewRequest(http.MethodGet, "http://app.example.com/bench?q=1", nil)
			req.RemoteAddr = "192.0.2.1:4000"
			w := &discardWriter{header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				w.status = 0
				clear(w.header)
				h.ServeHTTP(w, req)
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}

// benchObserver builds an Observer with the parts asked for.
func benchObserver(b *testing.B, metrics, log, traced bool) *observe.Observer {
	var opts observe.Options
	if metrics {
		opts.Registerer = prometheus.NewRegistry()
	}
	if log {
		opts.AccessLog = observe.NewAccessLog(io.Discard, nil, 1)
		b.Cleanup(func() { _ = opts.AccessLog.Close() })
	}
	if traced {
		sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
		}))
		b.Cleanup(sink.Close)
		tracing, err := observe.NewTracing(context.Background(), observe.TracingOptions{Endpoint: sink.URL, SampleRatio: 1})
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

// benchListenerHandler applies a one-route snapshot to an engine observed by obs and
// returns the handler of its listener.
func benchListenerHandler(b *testing.B, obs *observe.Observer, backendAddr string) http.Handler {
	e := New(Options{Observer: obs, Logger: slog.New(slog.DiscardHandler)})
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	if err := e.Apply(snapshotFor("bench", backendAddr)); err != nil {
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
