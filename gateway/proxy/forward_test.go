package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
	"github.com/switchyard-dev/switchyard/plugins"
)

// testHeaderFilter is a filter kind used only here: it sets X-Test-Filter to its
// RequestHeaderModifier's first Set value, so a test can see which backend
// reference's filters ran.
const testHeaderFilter config.FilterType = "test.SetHeader"

type testHeaderPlugin struct{}

func (testHeaderPlugin) Validate(spec *config.Filter) error {
	if spec.RequestHeaderModifier == nil || len(spec.RequestHeaderModifier.Set) == 0 {
		return errors.New("needs a header to set")
	}
	return nil
}

func (testHeaderPlugin) Provision(_ plugins.Context, spec *config.Filter) (plugins.Middleware, error) {
	h := spec.RequestHeaderModifier.Set[0]
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Header.Set(h.Name, h.Value)
			next.ServeHTTP(w, r)
		})
	}, nil
}

func init() { plugins.Register(testHeaderFilter, testHeaderPlugin{}) }

func setHeader(name, value string) config.Filter {
	return config.Filter{Type: testHeaderFilter, RequestHeaderModifier: &config.HeaderModifier{Set: []config.Header{{Name: name, Value: value}}}}
}

func TestBackendRefFiltersRunAndInfoRecordsBackend(t *testing.T) {
	echo := func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, r.Header.Get("X-Ref")) }
	a, b := startBackend(t, echo), startBackend(t, echo)
	var lastBackend atomic.Value
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info := &reqctx.Info{Route: "ns/r"}
			next.ServeHTTP(w, reqctx.With(r, info))
			lastBackend.Store(info.Backend)
		})
	}
	g := newGateway(t, Options{}, []config.Backend{httpBackend("ns/a:80", ready(a)), httpBackend("ns/b:80", ready(b))}, config.Rule{Backends: []config.BackendRef{
		{Backend: "ns/a:80", Weight: 1, Filters: []config.Filter{setHeader("X-Ref", "a")}},
		{Backend: "ns/b:80", Weight: 1, Filters: []config.Filter{setHeader("X-Ref", "b")}},
	}}, wrap)
	seen := map[string]bool{}
	for range 100 {
		_, _, body := g.get(t, "/")
		if got := lastBackend.Load(); got != "ns/"+body+":80" {
			t.Fatalf("filter of %q ran but Info.Backend = %v", body, got)
		}
		seen[body] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("filters seen: %v", seen)
	}
}

func TestReadyServingTerminatingFallback(t *testing.T) {
	a, b := startBackend(t, named("ready")), startBackend(t, named("terminating"))
	eps := []config.Endpoint{{Address: a, Ready: true, Serving: true}, {Address: b, Serving: true, Terminating: true}}
	g := newGateway(t, Options{}, []config.Backend{httpBackend("s", eps)}, config.Rule{Backends: []config.BackendRef{{Backend: "s", Weight: 1}}}, nil)
	for range 20 {
		if _, _, body := g.get(t, "/"); body != "ready" {
			t.Fatalf("with a ready endpoint, %q answered", body)
		}
	}
	eps[0].Ready = false
	eps[0].Serving = false
	g.manager.Update([]config.Backend{httpBackend("s", eps)})
	for range 20 {
		if _, _, body := g.get(t, "/"); body != "terminating" {
			t.Fatalf("without ready endpoints, %q answered", body)
		}
	}
	eps[1].Serving = false
	g.manager.Update([]config.Backend{httpBackend("s", eps)})
	if status, reason, _ := g.get(t, "/"); status != http.StatusServiceUnavailable || reason != "no-endpoints" {
		t.Fatalf("nothing serving: %d %q", status, reason)
	}
}

func TestErrorsForUnreachableBackends(t *testing.T) {
	g := newGateway(t, Options{}, []config.Backend{
		httpBackend("refused", ready(closedAddr(t))),
		httpBackend("empty", nil),
	}, config.Rule{Backends: []config.BackendRef{{Backend: "refused", Weight: 1}}}, nil)
	if status, reason, body := g.get(t, "/"); status != http.StatusBadGateway || reason != "upstream-connect-failed" || len(body) > 100 {
		t.Errorf("refused connection: %d %q %q", status, reason, body)
	}
	if f := g.manager.Pool("refused").Endpoints()[0].Endpoint.Failures.Load(); f != 1 {
		t.Errorf("endpoint failures = %d, want 1", f)
	}
	for _, name := range []string{"empty", "unknown"} {
		h, err := g.proxy.RuleHandler(plugins.Context{}, &config.Rule{Backends: []config.BackendRef{{Backend: name, Weight: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		rec := newRecorder()
		h.ServeHTTP(rec, mustRequest(t, "GET", "/"))
		if rec.status != http.StatusServiceUnavailable {
			t.Errorf("%s: status %d, want 503", name, rec.status)
		}
	}
}

// sleepy blocks until the request is cancelled (reporting it on cancelled) or 5s pass.
func sleepy(cancelled chan<- struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-time.After(5 * time.Second):
			_, _ = io.WriteString(w, "too late")
		}
	}
}

func TestTimeoutsAnswer504AndCancelBackend(t *testing.T) {
	for _, tc := range []struct {
		name     string
		timeouts config.Timeouts
		reason   string
	}{
		{"request", config.Timeouts{Request: dur(100 * time.Millisecond)}, "request-timeout"},
		{"backendRequest", config.Timeouts{BackendRequest: dur(100 * time.Millisecond)}, "upstream-timeout"},
		{"both", config.Timeouts{Request: dur(5 * time.Second), BackendRequest: dur(100 * time.Millisecond)}, "upstream-timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cancelled := make(chan struct{}, 1)
			addr := startBackend(t, sleepy(cancelled))
			timeouts := tc.timeouts
			g := newGateway(t, Options{}, []config.Backend{httpBackend("slow", ready(addr))},
				config.Rule{Timeouts: &timeouts, Backends: []config.BackendRef{{Backend: "slow", Weight: 1}}}, nil)
			start := time.Now()
			status, reason, body := g.get(t, "/")
			if status != http.StatusGatewayTimeout || reason != tc.reason || body == "" {
				t.Fatalf("got %d %q %q; want 504 %q", status, reason, body, tc.reason)
			}
			if elapsed := time.Since(start); elapsed > 2*time.Second {
				t.Fatalf("timeout took %v", elapsed)
			}
			select {
			case <-cancelled:
			case <-time.After(3 * time.Second):
				t.Fatal("backend request was not cancelled")
			}
		})
	}
}

func TestClientGoneWritesNothing(t *testing.T) {
	cancelled := make(chan struct{}, 1)
	addr := startBackend(t, sleepy(cancelled))
	written := make(chan int, 1)
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := &statusWriter{ResponseWriter: w}
			next.ServeHTTP(rec, r)
			written <- rec.status
		})
	}
	g := newGateway(t, Options{}, []config.Backend{httpBackend("slow", ready(addr))}, config.Rule{Backends: []config.BackendRef{{Backend: "slow", Weight: 1}}}, wrap)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.url+"/", nil)
	if res, err := testClient.Do(req); err == nil {
		res.Body.Close()
		t.Fatal("request should have been abandoned")
	}
	select {
	case status := <-written:
		if status != 0 {
			t.Fatalf("gateway wrote status %d to a client that left", status)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler did not finish after the client left")
	}
	select {
	case <-cancelled:
	case <-time.After(3 * time.Second):
		t.Fatal("backend request was not cancelled when the client left")
	}
}

// statusWriter records the status a handler writes (0 if none).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func TestForwardedHeaders(t *testing.T) {
	echo := func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "for=%s|proto=%s|host=%s|hosthdr=%s", r.Header.Get("X-Forwarded-For"),
			r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host"), r.Host)
	}
	addr := startBackend(t, echo)
	rule := config.Rule{Backends: []config.BackendRef{{Backend: "e", Weight: 1}}}
	send := func(g *gateway) string {
		req, _ := http.NewRequest(http.MethodGet, g.url+"/", nil)
		req.Host = "app.example.com"
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("X-Forwarded-Host", "public.example.com")
		res, err := testClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return string(body)
	}
	untrusted := newGateway(t, Options{}, []config.Backend{httpBackend("e", ready(addr))}, rule, nil)
	if got, want := send(untrusted), "for=127.0.0.1|proto=http|host=app.example.com|hosthdr=app.example.com"; got != want {
		t.Errorf("untrusted peer: %s, want %s", got, want)
	}
	trusted := newGateway(t, Options{TrustedProxies: loopbackTrusted()}, []config.Backend{httpBackend("e", ready(addr))}, rule, nil)
	if got, want := send(trusted), "for=203.0.113.7, 127.0.0.1|proto=https|host=public.example.com|hosthdr=app.example.com"; got != want {
		t.Errorf("trusted peer: %s, want %s", got, want)
	}
}

func mustRequest(t *testing.T, method, target string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, "http://gw.example"+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.RemoteAddr = "192.0.2.1:4000"
	r.RequestURI = target
	return r
}

// recorder is a minimal ResponseWriter that keeps the status and body and allocates
// nothing once its header map exists.
type recorder struct {
	header http.Header
	status int
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return len(b), nil
}
