package mesh

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/backend"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/internal/testtcp"
)

// serviceProxy answers every CONNECT with a tunnel to the pool of backend name in m.
func serviceProxy(t *testing.T, tunnels *Tunnels, m *backend.Manager, name string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tunnels.ServeService(w, w, r, m.Pool(name), nil)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func managerWith(t *testing.T, backends ...config.Backend) *backend.Manager {
	t.Helper()
	m := backend.NewManager(backend.Options{})
	m.Update(backends)
	t.Cleanup(m.Close)
	return m
}

func TestServiceTunnelSkipsAndEjectsADeadEndpoint(t *testing.T) {
	live := testtcp.ReplyAfterEOF(t, "127.0.0.3:0")
	dead := deadAddr(t, "127.0.0.4")
	m := managerWith(t, config.Backend{
		Name: "shop/db:5432", Protocol: config.AppProtocolHTTP1,
		Endpoints: []config.Endpoint{{Address: dead, Ready: true, Serving: true}, {Address: live, Ready: true, Serving: true}},
		OutlierDetection: &config.OutlierDetection{ConsecutiveGatewayErrors: 1, BaseEjectionTime: config.Duration(time.Minute),
			MaxEjectionPercent: 50},
	})
	proxy := serviceProxy(t, NewTunnels(TunnelOptions{}), m, "shop/db:5432")
	const tunnels = 6
	for i := range tunnels {
		c, br, status := connect(t, proxy, "db.shop:5432")
		if status != http.StatusOK {
			t.Fatalf("tunnel %d: CONNECT answered %d", i, status)
		}
		if got := halfCloseExchange(t, c, br, "ping"); got != "got:ping" {
			t.Fatalf("tunnel %d carried %q", i, got)
		}
	}
	pool := m.Pool("shop/db:5432")
	var deadEP, liveEP *backend.Endpoint
	for _, es := range pool.Endpoints() {
		if es.Endpoint.Address == dead {
			deadEP = es.Endpoint
		} else {
			liveEP = es.Endpoint
		}
	}
	if deadEP.Requests.Load() != 1 || deadEP.Failures.Load() != 1 || !deadEP.Ejected() || pool.Ejections() != 1 {
		t.Errorf("dead endpoint: %d tries, %d failures, ejected %v, pool ejections %d; want it tried once, then ejected",
			deadEP.Requests.Load(), deadEP.Failures.Load(), deadEP.Ejected(), pool.Ejections())
	}
	// The client has its answer a moment before the proxy's side of the last tunnel
	// has closed.
	deadline := time.Now().Add(5 * time.Second)
	for liveEP.InFlight.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if liveEP.Requests.Load() != tunnels || liveEP.InFlight.Load() != 0 {
		t.Errorf("live endpoint: %d tunnels, %d in flight; want %d and 0", liveEP.Requests.Load(), liveEP.InFlight.Load(), tunnels)
	}
}

func TestServiceTunnelFailures(t *testing.T) {
	dead := config.Backend{Name: "dead", Protocol: config.AppProtocolHTTP1, Endpoints: []config.Endpoint{
		{Address: deadAddr(t, "127.0.0.5"), Ready: true, Serving: true}, {Address: deadAddr(t, "127.0.0.6"), Ready: true, Serving: true}}}
	empty := config.Backend{Name: "empty", Protocol: config.AppProtocolHTTP1}
	m := managerWith(t, dead, empty)
	tunnels := NewTunnels(TunnelOptions{})
	for name, want := range map[string]int{"dead": http.StatusBadGateway, "empty": http.StatusServiceUnavailable, "unknown": http.StatusServiceUnavailable} {
		if c, _, status := connect(t, serviceProxy(t, tunnels, m, name), "svc:80"); c != nil || status != want {
			t.Errorf("%s: CONNECT answered %d, want %d", name, status, want)
		}
	}
	for _, es := range m.Pool("dead").Endpoints() {
		if es.Endpoint.Failures.Load() != 1 {
			t.Errorf("endpoint %s tried %d times, want once", es.Endpoint.Address, es.Endpoint.Failures.Load())
		}
	}
}

func TestTunnelIdleTimeout(t *testing.T) {
	// The upstream sends a byte every 20ms for 1.5s and never reads: the direction
	// from the client is idle all along, yet the tunnel lives while bytes flow the
	// other way, and ends once both ways are idle.
	ln, err := net.Listen("tcp", "127.0.0.7:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	const ticks = 75
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for range ticks {
			if _, err := c.Write([]byte{'x'}); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		// Stay open and silent: only the idle timeout ends the tunnel now.
		_, _ = io.Copy(io.Discard, c)
	}()
	m := managerWith(t, config.Backend{Name: "ticker", Protocol: config.AppProtocolHTTP1,
		Endpoints: []config.Endpoint{{Address: ln.Addr().String(), Ready: true, Serving: true}}})
	proxy := serviceProxy(t, NewTunnels(TunnelOptions{IdleTimeout: 500 * time.Millisecond}), m, "ticker")
	c, br, status := connect(t, proxy, "ticker:80")
	if status != http.StatusOK {
		t.Fatalf("CONNECT answered %d", status)
	}
	defer c.Close()
	got, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("reading the tunnel: %v", err)
	}
	if len(got) != ticks {
		t.Fatalf("got %d bytes before the tunnel closed, want %d: it was closed while busy one way", len(got), ticks)
	}
}
