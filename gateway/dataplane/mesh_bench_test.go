package dataplane

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/mesh"
)

// BenchmarkMeshRequest serves a GET through the node socket's handler to a loopback
// backend, calling the handler directly (as BenchmarkProxyRequestObservability does
// for a listener), with the destination named in absolute form, by a bare name in
// the caller's namespace, and by cluster IP. "listener" is the same request through
// an edge listener's handler, for the ratio.
func BenchmarkMeshRequest(b *testing.B) {
	benchMesh(b, startBenchBackend(b), nil, http.StatusOK)
}

// BenchmarkMeshOverhead is BenchmarkMeshRequest for a route whose filter answers with
// a redirect, without a backend: with no round trip to hide it, the difference
// between the listener and the mesh variants is what the node socket's own work
// (caller lookup, destination parsing, Service lookup, edge statistics) costs.
func BenchmarkMeshOverhead(b *testing.B) {
	redirect := []config.Filter{{Type: config.FilterRequestRedirect, RequestRedirect: &config.Redirect{Hostname: "elsewhere.example.com"}}}
	benchMesh(b, "127.0.0.1:1", redirect, http.StatusFound)
}

// benchMesh runs the variants with a rule of filters forwarding to backend, expecting
// status.
func benchMesh(b *testing.B, backend string, filters []config.Filter, status int) {
	snap := &config.Snapshot{
		SchemaVersion: config.SchemaVersion, Version: "bench",
		Backends: []config.Backend{{Name: "shop/web:80", Protocol: config.AppProtocolHTTP1,
			Endpoints: []config.Endpoint{{Address: backend, Ready: true, Serving: true}}}},
		Mesh: &config.Mesh{Services: []config.MeshService{{Namespace: "shop", Name: "web", ClusterIPs: []string{"10.96.0.10"},
			Ports: []config.MeshPort{{Port: 80, Backend: "shop/web:80", Routes: []config.Route{{Name: "shop/web",
				Rules: []config.Rule{{Filters: filters, Backends: []config.BackendRef{{Backend: "shop/web:80", Weight: 1}},
					Retry: &config.Retry{Attempts: 2, On: []config.RetryCondition{config.RetryConnectFailure}}}}}}}}}}},
	}
	e := New(Options{Logger: slog.New(slog.DiscardHandler), Node: &NodeOptions{Address: "127.0.0.1",
		Callers: mesh.StaticCallers{netip.MustParseAddr("192.0.2.1"): testCaller}}})
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	if err := e.Apply(snap); err != nil {
		b.Fatal(err)
	}
	edge := snapshotFor("bench", backend)
	edge.Listeners[0].VirtualHosts[0].Routes[0].Rules[0].Filters = filters
	variants := []struct {
		name, target string
		handler      http.Handler
	}{
		{"listener", "http://app.example.com/bench?q=1", benchListenerHandler(b, nil, edge)},
		{"mesh-absolute", "http://web.shop.svc.cluster.local/bench?q=1", e.MeshHandler()},
		{"mesh-bare", "http://web/bench?q=1", e.MeshHandler()},
		{"mesh-clusterip", "http://10.96.0.10/bench?q=1", e.MeshHandler()},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, v.target, nil)
			req.RemoteAddr = "192.0.2.1:4000"
			w := &discardWriter{header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				w.status = 0
				clear(w.header)
				v.handler.ServeHTTP(w, req)
				if w.status != status {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}
