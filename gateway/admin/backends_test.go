package admin

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// backendNamed finds a backend in the view.
func backendNamed(t *testing.T, view BackendsView, name string) BackendView {
	t.Helper()
	for _, b := range view.Backends {
		if b.Name == name {
			return b
		}
	}
	t.Fatalf("no backend %s in %+v", name, view)
	return BackendView{}
}

func TestBackends(t *testing.T) {
	g, base := startDataPlaneAPI(t, Options{})
	for range 4 {
		g.send(t, "www.example.com", "/", nil)
	}
	// A request forwarded from its wire form leaves the endpoint's in-flight count
	// just after the client has its answer: the view settles within moments.
	var view BackendsView
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		getJSON(t, base+"/api/v1/backends", "", &view)
		if len(view.Backends) != 3 {
			t.Fatalf("backends %+v", view)
		}
		if inFlight(backendNamed(t, view, "shop/web:80")) == 0 || time.Now().After(deadline) {
			break
		}
	}
	web := backendNamed(t, view, "shop/web:80")
	if web.Service != "shop/web" || web.Port != 80 || web.Protocol != "http" || web.TLS ||
		web.CircuitBreaker == nil || web.CircuitBreaker.MaxRequests != 100 {
		t.Errorf("web %+v", web)
	}
	if web.Outcomes.Requests != 4 || web.Outcomes.Errors != 0 || web.Outcomes.P99Millis == nil {
		t.Errorf("outcomes %+v", web.Outcomes)
	}
	if len(web.Endpoints) != 2 {
		t.Fatalf("endpoints %+v", web.Endpoints)
	}
	for _, e := range web.Endpoints {
		if e.State != "Ready" || !e.Healthy || e.Drained || e.Requests != 2 || e.InFlight != 0 || !e.EjectedUntil.IsZero() {
			t.Errorf("endpoint %+v", e)
		}
	}
	if api := backendNamed(t, view, "shop/api:80"); api.Outcomes.Requests != 0 || api.Outcomes.P99Millis != nil {
		t.Errorf("api %+v", api)
	}
}

// inFlight sums the in-flight counts of a backend's endpoints.
func inFlight(b BackendView) int64 {
	var n int64
	for _, e := range b.Endpoints {
		n += int64(e.InFlight)
	}
	return n
}

// drain posts a drain action and returns the response and its body.
func drain(t *testing.T, base, service, address, action, query string) (*http.Response, string) {
	t.Helper()
	u := base + "/api/v1/backends/" + service + "/endpoints/" + url.PathEscape(address) + "/" + action
	if query != "" {
		u += "?" + query
	}
	return send(t, http.MethodPost, u, "", nil)
}

func TestDrainAndUndrain(t *testing.T) {
	g, base := startDataPlaneAPI(t, Options{})
	resp, body := drain(t, base, "shop/web", g.web1, "drain", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("drain: %d %s", resp.StatusCode, body)
	}
	var view DrainView
	if err := json.Unmarshal([]byte(body), &view); err != nil {
		t.Fatal(err)
	}
	want := DrainedEndpointView{Backend: "shop/web:80", Address: g.web1, Drained: true, Available: 1}
	if view.Service != "shop/web" || view.Action != "drain" || len(view.Endpoints) != 1 || view.Endpoints[0] != want {
		t.Fatalf("drain view %+v", view)
	}
	expectOnly := func(when, backend string) {
		t.Helper()
		for range 6 {
			if got := g.send(t, "www.example.com", "/", nil); got != backend {
				t.Fatalf("%s: a request reached %s", when, got)
			}
		}
	}
	expectOnly("after the drain", "web-2")
	var backends BackendsView
	getJSON(t, base+"/api/v1/backends", "", &backends)
	if e := backendNamed(t, backends, "shop/web:80").Endpoints; e[0].Address != g.web1 || e[0].State != "Drained" || !e[0].Drained {
		t.Errorf("endpoints after the drain %+v", e)
	}

	// A new configuration version keeps the drain.
	g.apply(t, "v2", []config.Route{{Name: "shop/extra", Hostnames: []string{"extra.example.com"},
		Rules: []config.Rule{{Backends: []config.BackendRef{{Backend: "shop/api:80", Weight: 1}}}}}})
	expectOnly("after a new version", "web-2")

	resp, body = drain(t, base, "shop/web", g.web1, "undrain", "port=80")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"drained":false`) || !strings.Contains(body, `"available":2`) {
		t.Fatalf("undrain: %d %s", resp.StatusCode, body)
	}
	seen := map[string]bool{}
	for range 4 {
		seen[g.send(t, "www.example.com", "/", nil)] = true
	}
	if !seen["web-1"] || !seen["web-2"] {
		t.Errorf("after the undrain the requests reached %v", seen)
	}
}

func TestDrainErrors(t *testing.T) {
	g, base := startDataPlaneAPI(t, Options{})
	cases := []struct {
		name, service, address, action, query string
		status                                int
	}{
		{"unknown Service", "shop/none", g.web1, "drain", "", http.StatusNotFound},
		{"unknown port", "shop/web", g.web1, "drain", "port=81", http.StatusNotFound},
		{"unknown endpoint", "shop/web", "10.9.9.9:80", "drain", "", http.StatusNotFound},
		{"endpoint of another Service", "shop/api", g.web1, "drain", "", http.StatusNotFound},
		{"bad address", "shop/web", "not-an-ip", "drain", "", http.StatusBadRequest},
		{"unknown action", "shop/web", g.web1, "evict", "", http.StatusBadRequest},
		{"bad port", "shop/web", g.web1, "drain", "port=x", http.StatusBadRequest},
		{"unknown parameter", "shop/web", g.web1, "drain", "force=true", http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := drain(t, base, tc.service, tc.address, tc.action, tc.query)
			assertProblem(t, resp, body, tc.status)
		})
	}
	u := base + "/api/v1/backends/shop/web/endpoints/" + g.web1 + "/drain"
	resp, body := send(t, http.MethodPost, u, strings.Repeat("x", maxDrainBody+1), nil)
	assertProblem(t, resp, body, http.StatusRequestEntityTooLarge)
	resp, body = send(t, http.MethodPost, u, "", http.Header{"Sec-Fetch-Site": {"cross-site"}})
	assertProblem(t, resp, body, http.StatusForbidden)
	resp, body = send(t, http.MethodPost, u, "", http.Header{"Host": {"rebound.example"}})
	assertProblem(t, resp, body, http.StatusForbidden)
	resp, body = call(t, http.MethodGet, u, "")
	assertProblem(t, resp, body, http.StatusMethodNotAllowed)
	// None of the refused requests drained anything.
	for range 4 {
		if got := g.send(t, "www.example.com", "/", nil); got == "web-2" {
			return
		}
	}
	t.Error("web-2 got no request: a refused drain took effect")
}

func TestRateLimits(t *testing.T) {
	_, base := startDataPlaneAPI(t, Options{})
	var view RateLimitsView
	getJSON(t, base+"/api/v1/ratelimits", "", &view)
	if view.Version != "v1" || view.Redis || view.Replicas != 1 || len(view.RateLimits) != 1 {
		t.Fatalf("rate limits %+v", view)
	}
	rl := view.RateLimits[0]
	at := RateLimitAttachment{Listener: "127.0.0.1:0", VirtualHost: "shop/gw/http", Route: "shop/web", Rule: 0}
	if rl.ID != "shop/limit" || rl.Mode != "Local" || rl.Enforcement != "Local" || len(rl.Rules) != 1 ||
		rl.Rules[0].Requests != 1000 || len(rl.AttachedTo) != 1 || rl.AttachedTo[0] != at {
		t.Errorf("rate limit %+v", rl)
	}
}

func TestEnforcement(t *testing.T) {
	cases := []struct {
		mode  config.RateLimitMode
		redis bool
		want  string
	}{
		{config.RateLimitLocal, true, "Local"},
		{config.RateLimitGlobal, true, "Redis"},
		{config.RateLimitGlobal, false, "LocalShare"},
	}
	for _, tc := range cases {
		if got := enforcement(tc.mode, tc.redis); got != tc.want {
			t.Errorf("enforcement(%s, %v) = %s, want %s", tc.mode, tc.redis, got, tc.want)
		}
	}
}

func TestNoDataPlaneEndpointsWithoutADataPlane(t *testing.T) {
	_, base := startServer(t, Options{State: &fakeState{}})
	for _, path := range []string{"/api/v1/routes", "/api/v1/routes/match?host=h", "/api/v1/backends", "/api/v1/ratelimits"} {
		resp, body := call(t, http.MethodGet, base+path, "")
		assertProblem(t, resp, body, http.StatusNotFound)
	}
}
