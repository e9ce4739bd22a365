package proxy

import (
	"io"
	"net/http"
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/backend"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/plugins"
)

// BenchmarkProxyRequest forwards a GET through a rule handler to a loopback backend
// and copies the response back, calling the handler directly so that allocations
// are those of the proxy and its transport rather than of a client.
func BenchmarkProxyRequest(b *testing.B) {
	backendSrv := startBackendB(b)
	m := backend.NewManager(backend.Options{})
	defer m.Close()
	m.Update([]config.Backend{
		httpBackend("a", ready(backendSrv)),
		httpBackend("b", ready(backendSrv)),
	})
	p := New(m, Options{})
	h, err := p.RuleHandler(plugins.Context{Upstream: m}, &config.Rule{Backends: []config.BackendRef{{Backend: "a", Weight: 3}, {Backend: "b", Weight: 1}}})
	if err != nil {
		b.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://app.example.com/bench?q=1", nil)
	req.RemoteAddr = "192.0.2.1:4000"
	req.RequestURI = "/bench?q=1"
	rec := newRecorder()
	b.ReportAllocs()
	for b.Loop() {
		rec.status = 0
		clear(rec.header)
		h.ServeHTTP(rec, req)
		if rec.status != http.StatusOK {
			b.Fatalf("status %d", rec.status)
		}
	}
}

func startBackendB(b *testing.B) string {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "hello from the backend")
	})}
	l := listenLoopback(b)
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

// BenchmarkDirectRoundTrip is the baseline for BenchmarkProxyRequest: the same request
// sent straight to the backend with the gateway's transport, so that the difference
// between the two is what the proxy adds.
func BenchmarkDirectRoundTrip(b *testing.B) {
	addr := startBackendB(b)
	m := backend.NewManager(backend.Options{})
	defer m.Close()
	t := m.Transport(config.AppProtocolHTTP1)
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/bench?q=1", nil)
		res, err := t.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
}

// BenchmarkProxyRequestHeaderRoute is BenchmarkProxyRequest through a rule with a
// header-routed canary, for requests that carry the header and for those that do not.
func BenchmarkProxyRequestHeaderRoute(b *testing.B) {
	backendSrv := startBackendB(b)
	m := backend.NewManager(backend.Options{})
	defer m.Close()
	m.Update([]config.Backend{
		httpBackend("a", ready(backendSrv)),
		httpBackend("b", ready(backendSrv)),
	})
	p := New(m, Options{})
	h, err := p.RuleHandler(plugins.Context{Upstream: m}, &config.Rule{
		Backends:    []config.BackendRef{{Backend: "a", Weight: 1}, {Backend: "b", Weight: 0}},
		HeaderRoute: &config.HeaderRoute{Headers: []config.Header{{Name: "x-canary", Value: "always"}}, Backend: 1},
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, canary := range []bool{false, true} {
		b.Run(map[bool]string{false: "weighted", true: "canary"}[canary], func(b *testing.B) {
			req, _ := http.NewRequest(http.MethodGet, "http://app.example.com/bench?q=1", nil)
			req.RemoteAddr = "192.0.2.1:4000"
			req.RequestURI = "/bench?q=1"
			// Both kinds carry the header, so that they copy the same request.
			req.Header.Set("X-Canary", map[bool]string{false: "never", true: "always"}[canary])
			rec := newRecorder()
			b.ReportAllocs()
			for b.Loop() {
				rec.status = 0
				clear(rec.header)
				h.ServeHTTP(rec, req)
				if rec.status != http.StatusOK {
					b.Fatalf("status %d", rec.status)
				}
			}
			if got := p.BackendOutcome(map[bool]string{false: "a", true: "b"}[canary]).Requests; got == 0 {
				b.Fatal("the benchmark's requests did not reach the expected backend")
			}
		})
	}
}
