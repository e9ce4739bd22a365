package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/backend"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/plugins"
)

// testClient bounds every test request in time.
var testClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// startBackend runs h on a loopback port and returns its address.
func startBackend(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// named answers with a fixed body, to tell backends apart.
func named(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, name) }
}

// closedAddr returns a loopback address that refuses connections.
func closedAddr(t *testing.T) string {
	t.Helper()
	l := listenLoopback(t)
	addr := l.Addr().String()
	l.Close()
	return addr
}

func ready(addrs ...string) []config.Endpoint {
	out := make([]config.Endpoint, len(addrs))
	for i, a := range addrs {
		out[i] = config.Endpoint{Address: a, Ready: true, Serving: true}
	}
	return out
}

func httpBackend(name string, eps []config.Endpoint) config.Backend {
	return config.Backend{Name: name, Protocol: config.AppProtocolHTTP1, Endpoints: eps}
}

// gateway is a Proxy with a front server serving one rule.
type gateway struct {
	manager *backend.Manager
	proxy   *Proxy
	url     string
	front   *httptest.Server
}

// newGateway builds a rule handler and serves it on a loopback front server. wrap, if
// not nil, wraps the rule handler (to stand in for the router's context setup).
func newGateway(t *testing.T, opts Options, backends []config.Backend, rule config.Rule, wrap func(http.Handler) http.Handler) *gateway {
	t.Helper()
	m := backend.NewManager(backend.Options{})
	t.Cleanup(m.Close)
	m.Update(backends)
	p := New(m, opts)
	h, err := p.RuleHandler(plugins.Context{Upstream: m}, &rule)
	if err != nil {
		t.Fatalf("RuleHandler: %v", err)
	}
	if wrap != nil {
		h = wrap(h)
	}
	front := httptest.NewServer(h)
	t.Cleanup(front.Close)
	return &gateway{manager: m, proxy: p, url: front.URL, front: front}
}

// get sends a request through the gateway and returns the status, the error reason
// header and the body.
func (g *gateway) get(t *testing.T, path string) (int, string, string) {
	t.Helper()
	res, err := testClient.Get(g.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return res.StatusCode, res.Header.Get(errorHeader), string(body)
}

func loopbackTrusted() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}

func dur(d time.Duration) config.Duration { return config.Duration(d) }

// listenLoopback listens on a free loopback port.
func listenLoopback(tb testing.TB) net.Listener {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return l
}
