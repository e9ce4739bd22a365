package backend

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

func ep(addr string, ready, serving, terminating bool) config.Endpoint {
	return config.Endpoint{Address: addr, Ready: ready, Serving: serving, Terminating: terminating}
}

func pickN(t *testing.T, p *Pool, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		e, err := p.Pick()
		if err != nil {
			t.Fatalf("Pick: %v", err)
		}
		out[i] = e.Address
	}
	return out
}

func TestPickRoundRobinOverReady(t *testing.T) {
	m := NewManager(Options{})
	m.Update([]config.Backend{{Name: "ns/a:80", Protocol: config.AppProtocolHTTP1, Endpoints: []config.Endpoint{
		ep("10.0.0.1:80", true, true, false),
		ep("10.0.0.2:80", false, true, true), // terminating but serving: not while one is ready
		ep("10.0.0.3:80", true, true, false),
		ep("10.0.0.4:80", false, false, false),
	}}})
	got := strings.Join(pickN(t, m.Pool("ns/a:80"), 4), ",")
	if got != "10.0.0.1:80,10.0.0.3:80,10.0.0.1:80,10.0.0.3:80" {
		t.Fatalf("picks = %s", got)
	}
}

func TestPickFallsBackToServingThenFails(t *testing.T) {
	m := NewManager(Options{})
	m.Update([]config.Backend{{Name: "b", Protocol: config.AppProtocolHTTP1, Endpoints: []config.Endpoint{
		ep("10.0.0.1:80", false, true, true),
		ep("10.0.0.2:80", false, false, true),
		ep("10.0.0.3:80", false, true, true),
	}}})
	picks := pickN(t, m.Pool("b"), 4)
	for _, a := range picks {
		if a == "10.0.0.2:80" {
			t.Fatalf("picked a non-serving endpoint: %v", picks)
		}
	}
	if picks[0] == picks[1] {
		t.Fatalf("serving endpoints are not rotated: %v", picks)
	}
	m.Update([]config.Backend{{Name: "b", Protocol: config.AppProtocolHTTP1, Endpoints: []config.Endpoint{
		ep("10.0.0.2:80", false, false, true),
	}}})
	if e, err := m.Pool("b").Pick(); !errors.Is(err, ErrNoEndpoints) || e != nil {
		t.Fatalf("Pick with nothing serving = %v, %v; want ErrNoEndpoints", e, err)
	}
	m.Update([]config.Backend{{Name: "b", Protocol: config.AppProtocolHTTP1}})
	if _, err := m.Pool("b").Pick(); !errors.Is(err, ErrNoEndpoints) {
		t.Fatalf("Pick with no endpoints: %v", err)
	}
}

func TestUpdateKeepsStateAndDropsRemoved(t *testing.T) {
	m := NewManager(Options{})
	eps := []config.Endpoint{ep("10.0.0.1:80", true, true, false), ep("10.0.0.2:80", true, true, false), ep("10.0.0.3:80", true, true, false)}
	m.Update([]config.Backend{
		{Name: "keep", Protocol: config.AppProtocolHTTP1, Endpoints: eps},
		{Name: "gone", Protocol: config.AppProtocolHTTP1, Endpoints: eps},
	})
	pool := m.Pool("keep")
	first, _ := pool.Pick()
	first.InFlight.Add(3)
	first.Requests.Add(7)
	// A new version: same backend name, one endpoint removed, protocol changed.
	m.Update([]config.Backend{{Name: "keep", Protocol: config.AppProtocolH2C, Endpoints: eps[:2]}})
	if m.Pool("gone") != nil {
		t.Fatal("removed backend still has a pool")
	}
	if m.Pool("keep") != pool {
		t.Fatal("pool of an unchanged backend name was replaced")
	}
	if pool.Protocol() != config.AppProtocolH2C {
		t.Fatalf("protocol = %s, want h2c", pool.Protocol())
	}
	again := pool.Endpoints()[0].Endpoint
	if again != first || again.InFlight.Load() != 3 || again.Requests.Load() != 7 {
		t.Fatalf("endpoint state was lost: %p vs %p, inflight %d requests %d", again, first, again.InFlight.Load(), again.Requests.Load())
	}
	// The round-robin position continues: one pick happened before the update, so
	// the next is the second endpoint.
	if e, _ := pool.Pick(); e.Address != "10.0.0.2:80" {
		t.Fatalf("round robin restarted: picked %s", e.Address)
	}
}

func TestPickDoesNotAllocate(t *testing.T) {
	m := NewManager(Options{})
	m.Update([]config.Backend{{Name: "b", Protocol: config.AppProtocolHTTP1, Endpoints: []config.Endpoint{
		ep("10.0.0.1:80", true, true, false), ep("10.0.0.2:80", true, true, false),
	}}})
	p := m.Pool("b")
	if allocs := testing.AllocsPerRun(1000, func() { _, _ = p.Pick() }); allocs != 0 {
		t.Fatalf("Pick allocates %v times", allocs)
	}
}

func TestConcurrentUpdateAndPick(t *testing.T) {
	m := NewManager(Options{})
	versions := [][]config.Backend{
		{{Name: "b", Protocol: config.AppProtocolHTTP1, Endpoints: []config.Endpoint{ep("10.0.0.1:80", true, true, false)}}},
		{{Name: "b", Protocol: config.AppProtocolHTTP1, Endpoints: []config.Endpoint{ep("10.0.0.2:80", true, true, false), ep("10.0.0.3:80", true, true, false)}}},
	}
	m.Update(versions[0])
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if e, err := m.Pool("b").Pick(); err != nil || e.Address == "" {
					t.Errorf("Pick during update: %v", err)
					return
				}
			}
		})
	}
	for i := range 200 {
		m.Update(versions[i%2])
	}
	close(stop)
	wg.Wait()
}

func TestTransportsAreTunedForProxying(t *testing.T) {
	m := NewManager(Options{})
	h1, ok := stdTransport(m.Transport(config.AppProtocolHTTP1))
	if !ok || h1 == http.DefaultTransport {
		t.Fatal("HTTP/1 transport is not a dedicated *http.Transport")
	}
	if h1.MaxIdleConnsPerHost != 512 || h1.IdleConnTimeout != 90*time.Second || !h1.DisableCompression || h1.Proxy != nil || h1.ForceAttemptHTTP2 {
		t.Fatalf("HTTP/1 transport settings: %+v", h1)
	}
	if ws, _ := stdTransport(m.Transport(config.AppProtocolWebSocket)); ws != h1 {
		t.Fatal("WebSocket backends must use the HTTP/1 transport")
	}
	h2 := m.Transport(config.AppProtocolH2C).(*http.Transport)
	if h2 == h1 || !h2.Protocols.UnencryptedHTTP2() || h2.Protocols.HTTP1() {
		t.Fatalf("h2c transport protocols: %v", h2.Protocols)
	}
	custom, _ := stdTransport(NewManager(Options{MaxIdleConnsPerHost: 7}).Transport(config.AppProtocolHTTP1))
	if custom.MaxIdleConnsPerHost != 7 {
		t.Fatalf("MaxIdleConnsPerHost option ignored: %d", custom.MaxIdleConnsPerHost)
	}
}

// newH2CServer starts a loopback server that speaks HTTP/1.1 and HTTP/2 with prior
// knowledge and answers with the protocol major version it saw.
func newH2CServer(t *testing.T) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func TestRoundTripUsesPoolAndProtocol(t *testing.T) {
	srv := newH2CServer(t)
	addr := srv.Listener.Addr().String()
	m := NewManager(Options{})
	defer m.Close()
	for _, tc := range []struct {
		protocol config.AppProtocol
		want     string
	}{{config.AppProtocolHTTP1, "HTTP/1.1"}, {config.AppProtocolH2C, "HTTP/2.0"}} {
		m.Update([]config.Backend{{Name: "b", Protocol: tc.protocol, Endpoints: []config.Endpoint{ep(addr, true, true, false)}}})
		req, _ := http.NewRequest(http.MethodGet, "http://mirror.example/path", nil)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := m.RoundTrip(ctx, "b", req)
		if err != nil {
			cancel()
			t.Fatalf("%s: RoundTrip: %v", tc.protocol, err)
		}
		e := m.Pool("b").Endpoints()[0].Endpoint
		if e.InFlight.Load() != 1 {
			t.Errorf("%s: in flight during response = %d", tc.protocol, e.InFlight.Load())
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		res.Body.Close() // a second Close must not release the endpoint twice
		cancel()
		if string(body) != tc.want {
			t.Errorf("%s: backend saw %q, want %q", tc.protocol, body, tc.want)
		}
		if e.InFlight.Load() != 0 {
			t.Errorf("%s: in flight after close = %d", tc.protocol, e.InFlight.Load())
		}
		if req.URL.Host != "mirror.example" {
			t.Errorf("RoundTrip modified the caller's request: %s", req.URL)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	if _, err := m.RoundTrip(context.Background(), "nope", req); !errors.Is(err, ErrUnknownBackend) {
		t.Errorf("unknown backend: %v", err)
	}
}
func TestRoundTripNoEndpoints(t *testing.T) {
	m := NewManager(Options{})
	m.Update([]config.Backend{{Name: "empty", Protocol: config.AppProtocolHTTP1}})
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	if _, err := m.RoundTrip(context.Background(), "empty", req); !errors.Is(err, ErrNoEndpoints) {
		t.Fatalf("RoundTrip to empty backend: %v", err)
	}
}

func BenchmarkPick(b *testing.B) {
	m := NewManager(Options{})
	m.Update([]config.Backend{{Name: "b", Protocol: config.AppProtocolHTTP1, Endpoints: []config.Endpoint{
		ep("10.0.0.1:80", true, true, false), ep("10.0.0.2:80", true, true, false), ep("10.0.0.3:80", true, true, false),
	}}})
	p := m.Pool("b")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.Pick(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestPickExceptAvoidsTheFailedEndpoint(t *testing.T) {
	m := NewManager(Options{})
	m.Update([]config.Backend{{Name: "b", Endpoints: []config.Endpoint{
		{Address: "127.0.0.1:1", Ready: true, Serving: true},
		{Address: "127.0.0.1:2", Ready: true, Serving: true}}}})
	p := m.Pool("b")
	for range 10 {
		first, _ := p.Pick()
		if next, _ := p.PickExcept(first); next == first {
			t.Fatal("PickExcept returned the endpoint to avoid while another was ready")
		}
	}
	m.Update([]config.Backend{{Name: "b", Endpoints: []config.Endpoint{{Address: "127.0.0.1:1", Ready: true, Serving: true}}}})
	only, _ := p.Pick()
	if again, err := p.PickExcept(only); err != nil || again != only {
		t.Fatalf("with one endpoint PickExcept gave %v, %v; want that endpoint", again, err)
	}
}
