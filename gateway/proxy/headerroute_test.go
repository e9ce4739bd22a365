package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/backend"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/plugins"
)

// send sends a GET through the gateway with the given header lines (a name may repeat)
// and returns the status and body.
func send(t *testing.T, g *gateway, host string, headers ...[2]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.url+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for _, h := range headers {
		req.Header.Add(h[0], h[1])
	}
	res, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// canaryGateway serves a rule whose stable backend takes every weighted request and
// whose canary, at weight canaryWeight, also takes the requests with headers.
func canaryGateway(t *testing.T, canaryWeight int32, headers ...config.Header) *gateway {
	t.Helper()
	stable, canary := startBackend(t, named("stable")), startBackend(t, named("canary"))
	return newGateway(t, Options{}, []config.Backend{httpBackend("ns/stable:80", ready(stable)), httpBackend("ns/canary:80", ready(canary))},
		config.Rule{
			Backends: []config.BackendRef{
				{Backend: "ns/stable:80", Weight: 100},
				{Backend: "ns/canary:80", Weight: canaryWeight},
			},
			HeaderRoute: &config.HeaderRoute{Headers: headers, Backend: 1},
		}, nil)
}

func TestHeaderRouteReachesAZeroWeightCanary(t *testing.T) {
	// The configured name's case differs from the one the client sends.
	g := canaryGateway(t, 0, config.Header{Name: "x-CANARY", Value: "always"})
	cases := []struct {
		name    string
		headers [][2]string
		want    string
	}{
		{"exact header", [][2]string{{"X-Canary", "always"}}, "canary"},
		{"lower-case name", [][2]string{{"x-canary", "always"}}, "canary"},
		{"no header", nil, "stable"},
		{"other value", [][2]string{{"X-Canary", "never"}}, "stable"},
		{"value differs in case", [][2]string{{"X-Canary", "Always"}}, "stable"},
		{"value with more text", [][2]string{{"X-Canary", "always, never"}}, "stable"},
		{"any repeated value", [][2]string{{"X-Canary", "never"}, {"X-Canary", "always"}}, "canary"},
	}
	for _, c := range cases {
		// Both outcomes are deterministic; a few tries show that no weight leaks.
		for range 20 {
			status, body := send(t, g, "", c.headers...)
			if status != http.StatusOK || body != c.want {
				t.Fatalf("%s: got %d %q, want %q", c.name, status, body, c.want)
			}
		}
	}
}

func TestHeaderRouteNeedsEveryHeader(t *testing.T) {
	g := canaryGateway(t, 0, config.Header{Name: "X-Canary", Value: "always"}, config.Header{Name: "X-Team", Value: "qa"})
	if _, body := send(t, g, "", [2]string{"X-Canary", "always"}); body != "stable" {
		t.Fatalf("one of two headers reached %q", body)
	}
	if _, body := send(t, g, "", [2]string{"X-Team", "qa"}); body != "stable" {
		t.Fatalf("one of two headers reached %q", body)
	}
	if _, body := send(t, g, "", [2]string{"X-Team", "qa"}, [2]string{"X-Canary", "always"}); body != "canary" {
		t.Fatalf("both headers reached %q", body)
	}
}

func TestHeaderRouteMatchesHost(t *testing.T) {
	g := canaryGateway(t, 0, config.Header{Name: "host", Value: "canary.example.com"})
	if _, body := send(t, g, "canary.example.com"); body != "canary" {
		t.Fatalf("matching host reached %q", body)
	}
	if _, body := send(t, g, "www.example.com"); body != "stable" {
		t.Fatalf("other host reached %q", body)
	}
}

func TestHeaderRouteKeepsTheWeightedSplit(t *testing.T) {
	// The pinned reference also has a weight: requests without the header still split
	// between both, and its filters are provisioned once for both uses.
	g := canaryGateway(t, 100, config.Header{Name: "X-Canary", Value: "always"})
	seen := map[string]int{}
	for range 200 {
		_, body := send(t, g, "")
		seen[body]++
	}
	// Each backend has probability 1/2 per request; missing one in 200 has
	// probability 2^-199.
	if seen["stable"] == 0 || seen["canary"] == 0 || len(seen) != 2 {
		t.Fatalf("weighted requests reached %v; want both", seen)
	}
	for range 20 {
		if _, body := send(t, g, "", [2]string{"X-Canary", "always"}); body != "canary" {
			t.Fatalf("header request reached %q", body)
		}
	}
}

func TestHeaderRouteWithoutWeightedBackends(t *testing.T) {
	g := canaryGateway(t, 0, config.Header{Name: "X-Canary", Value: "always"})
	// Make the stable reference weightless too: only the header reaches a backend.
	m := g.manager
	rule := config.Rule{
		Backends:    []config.BackendRef{{Backend: "ns/stable:80", Weight: 0}, {Backend: "ns/canary:80", Weight: 0}},
		HeaderRoute: &config.HeaderRoute{Headers: []config.Header{{Name: "X-Canary", Value: "always"}}, Backend: 1},
	}
	h, err := g.proxy.RuleHandler(plugins.Context{Upstream: m}, &rule)
	if err != nil {
		t.Fatal(err)
	}
	r := mustRequest(t, http.MethodGet, "/")
	rec := newRecorder()
	h.ServeHTTP(rec, r)
	if rec.status != http.StatusInternalServerError || rec.header.Get(errorHeader) != "no-backends" {
		t.Fatalf("request without the header: %d %q; want 500 no-backends", rec.status, rec.header.Get(errorHeader))
	}
	r.Header.Set("X-Canary", "always")
	rec = newRecorder()
	h.ServeHTTP(rec, r)
	if rec.status != http.StatusOK {
		t.Fatalf("request with the header: %d; want the canary's 200", rec.status)
	}
}

func TestHeaderRouteToAnInvalidReference(t *testing.T) {
	stable := startBackend(t, named("stable"))
	g := newGateway(t, Options{}, []config.Backend{httpBackend("ns/stable:80", ready(stable))}, config.Rule{
		Backends: []config.BackendRef{
			{Backend: "ns/stable:80", Weight: 1},
			{Weight: 0, Invalid: &config.InvalidBackend{StatusCode: http.StatusInternalServerError, Reason: "service not found"}},
		},
		HeaderRoute: &config.HeaderRoute{Headers: []config.Header{{Name: "X-Canary", Value: "always"}}, Backend: 1},
	}, nil)
	if status, body := send(t, g, "", [2]string{"X-Canary", "always"}); status != http.StatusInternalServerError || !strings.Contains(body, "invalid") {
		t.Fatalf("header request: %d %q; want the invalid reference's 500", status, body)
	}
	if _, body := send(t, g, ""); body != "stable" {
		t.Fatalf("weighted request reached %q", body)
	}
}

func TestHeaderRouteRefusesBadRules(t *testing.T) {
	m := backend.NewManager(backend.Options{})
	t.Cleanup(m.Close)
	p := New(m, Options{})
	refs := []config.BackendRef{{Backend: "a", Weight: 1}}
	for name, hr := range map[string]*config.HeaderRoute{
		"no headers":     {Backend: 0},
		"index too high": {Headers: []config.Header{{Name: "X", Value: "1"}}, Backend: 1},
		"negative index": {Headers: []config.Header{{Name: "X", Value: "1"}}, Backend: -1},
	} {
		if _, err := p.RuleHandler(plugins.Context{Upstream: m}, &config.Rule{Backends: refs, HeaderRoute: hr}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestHeaderRouteMatchDoesNotAllocate(t *testing.T) {
	h := &headerRouteHandler{conds: newHeaderConds([]config.Header{{Name: "x-canary", Value: "always"}, {Name: "X-Team", Value: "qa"}})}
	r := mustRequest(t, http.MethodGet, "/")
	r.Header.Add("X-Canary", "no")
	r.Header.Add("X-Canary", "always")
	r.Header.Set("X-Team", "qa")
	if !h.matches(r) {
		t.Fatal("request with every header does not match")
	}
	if allocs := testing.AllocsPerRun(100, func() { h.matches(r) }); allocs != 0 {
		t.Fatalf("matching allocates %v", allocs)
	}
}
