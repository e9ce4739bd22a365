package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/dataplane"
	_ "github.com/switchyard-dev/switchyard/plugins/all"
)

// testGateway is a real data plane serving shopSnapshot on a loopback port, with
// real backends that answer with their own names.
type testGateway struct {
	engine *dataplane.Engine
	// url is the listener's base URL.
	url string
	// web1 and web2 are the endpoints of shop/web:80.
	web1, web2  string
	api, canary string
}

// startNamedBackend starts an HTTP backend that answers every request with name.
func startNamedBackend(t *testing.T, name string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, name) }))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func startGateway(t *testing.T) *testGateway {
	t.Helper()
	g := &testGateway{
		engine: dataplane.New(dataplane.Options{Logger: slog.New(slog.DiscardHandler)}),
		web1:   startNamedBackend(t, "web-1"), web2: startNamedBackend(t, "web-2"),
		api: startNamedBackend(t, "api"), canary: startNamedBackend(t, "canary"),
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = g.engine.Shutdown(ctx)
	})
	g.apply(t, "v1", nil)
	g.url = "http://" + g.engine.Addr("127.0.0.1:0")
	return g
}

// apply serves shopSnapshot with the given version and extra routes.
func (g *testGateway) apply(t *testing.T, version string, extra []config.Route) {
	t.Helper()
	if err := g.engine.Apply(g.snapshot(version, extra)); err != nil {
		t.Fatal(err)
	}
}

// snapshot has one listener with one virtual host: shop/api for api.example.com
// (a header-matched canary rule and a main rule under /v1) and shop/web for every
// host, rate limited, with two endpoints.
func (g *testGateway) snapshot(version string, extra []config.Route) *config.Snapshot {
	to := func(backend string) []config.BackendRef { return []config.BackendRef{{Backend: backend, Weight: 1}} }
	v1 := &config.PathMatch{Type: config.PathPrefix, Value: "/v1"}
	limit := config.Filter{Type: config.FilterRateLimit, RateLimit: &config.RateLimit{ID: "shop/limit", Mode: config.RateLimitLocal,
		Rules: []config.RateLimitRule{{Key: config.RateLimitKey{Type: config.KeyClientIP}, Requests: 1000, Per: config.Duration(time.Second)}}}}
	routes := append([]config.Route{
		{Name: "shop/api", Hostnames: []string{"api.example.com"}, Rules: []config.Rule{
			{Matches: []config.Match{{Path: v1, Headers: []config.ValueMatch{{Type: config.MatchExact, Name: "X-Canary", Value: "yes"}}}},
				Backends: to("shop/canary:80")},
			{Name: "main", Matches: []config.Match{{Path: v1}}, Backends: to("shop/api:80")},
		}},
		{Name: "shop/web", Rules: []config.Rule{{Filters: []config.Filter{limit}, Backends: to("shop/web:80")}}},
	}, extra...)
	endpoint := func(addrs ...string) []config.Endpoint {
		var out []config.Endpoint
		for _, a := range addrs {
			out = append(out, config.Endpoint{Address: a, Ready: true, Serving: true})
		}
		return out
	}
	return &config.Snapshot{
		SchemaVersion: config.SchemaVersion, Version: version,
		Listeners: []config.Listener{{Name: "127.0.0.1:0", Address: "127.0.0.1", Port: 0, Protocol: config.ProtocolHTTP,
			VirtualHosts: []config.VirtualHost{{Name: "shop/gw/http", Routes: routes}}}},
		Backends: []config.Backend{
			{Name: "shop/api:80", Protocol: config.AppProtocolHTTP1, Endpoints: endpoint(g.api)},
			{Name: "shop/canary:80", Protocol: config.AppProtocolHTTP1, Endpoints: endpoint(g.canary)},
			{Name: "shop/web:80", Protocol: config.AppProtocolHTTP1, Endpoints: endpoint(g.web1, g.web2),
				CircuitBreaker: &config.CircuitBreaker{MaxRequests: 100}},
		},
	}
}

// send sends one request through the gateway and returns the answering backend's
// name.
func (g *testGateway) send(t *testing.T, host, target string, header http.Header) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.url+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("status %d", resp.StatusCode)
	}
	return string(body)
}

// getJSON fetches an admin endpoint and decodes its JSON answer into v.
func getJSON(t *testing.T, url, token string, v any) {
	t.Helper()
	resp, body := call(t, http.MethodGet, url, token)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, body)
	}
}
