package standalone_test

import (
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
)

const routingRoutes = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app, namespace: default}
spec:
  parentRefs: [{name: gw}]
  hostnames: [app.example.com]
  rules:
  - matches:
    - path: {type: Exact, value: /exact}
    backendRefs: [{name: v2, port: 80}]
  - matches:
    - path: {type: PathPrefix, value: /api}
      headers: [{name: x-version, value: "2"}]
    - path: {type: PathPrefix, value: /api}
      queryParams: [{name: v, value: "2"}]
    backendRefs: [{name: v2, port: 80}]
  - matches:
    - path: {type: PathPrefix, value: /api}
      method: DELETE
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: x-deleting, value: "yes"}]
    backendRefs: [{name: v2, port: 80}]
  - matches:
    - path: {type: PathPrefix, value: /api}
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        add: [{name: x-added, value: gw}]
        remove: [x-secret]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{name: x-route, value: api}]
    backendRefs: [{name: v1, port: 80}]
  - matches:
    - path: {type: PathPrefix, value: /old}
    filters:
    - type: RequestRedirect
      requestRedirect:
        scheme: https
        path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}
        statusCode: 301
  - matches:
    - path: {type: PathPrefix, value: /rewrite}
    filters:
    - type: URLRewrite
      urlRewrite:
        hostname: rewritten.example.com
        path: {type: ReplacePrefixMatch, replacePrefixMatch: /backend}
    backendRefs: [{name: v1, port: 80}]
  - matches:
    - path: {type: PathPrefix, value: /broken}
    backendRefs: [{name: missing, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: wildcard, namespace: default}
spec:
  parentRefs: [{name: gw}]
  hostnames: ["*.example.com"]
  rules:
  - backendRefs: [{name: v2, port: 80}]
`

func TestRoutingMatchesAndFilters(t *testing.T) {
	v1, v2 := echoBackend(t, "v1"), echoBackend(t, "v2")
	port := freePort(t)
	g := startGateway(t, map[string]string{
		"gateway.yaml":  gatewayYAML("gw", port),
		"services.yaml": serviceYAML("v1", "", v1) + "---\n" + serviceYAML("v2", "", v2),
		"routes.yaml":   routingRoutes,
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	host := "app.example.com"

	cases := []struct {
		name    string
		method  string
		path    string
		headers []string
		wantPod string
		check   func(t *testing.T, resp *http.Response, e *echoReply)
	}{
		{name: "exact path", path: "/exact", wantPod: "v2"},
		{name: "exact does not match longer path; wildcard host route catches it", path: "/exact/more", wantPod: "v2"},
		{name: "prefix", path: "/api/users", wantPod: "v1"},
		{name: "prefix is segment-wise", path: "/apixyz", wantPod: "v2"},
		{name: "header match wins over plain prefix", path: "/api/x", headers: []string{"x-version", "2"}, wantPod: "v2"},
		{name: "query match wins over plain prefix", path: "/api/x?v=2", wantPod: "v2"},
		{name: "method match", method: http.MethodDelete, path: "/api/x", wantPod: "v2",
			check: func(t *testing.T, _ *http.Response, e *echoReply) {
				if got := e.Headers["X-Deleting"]; len(got) != 1 || got[0] != "yes" {
					t.Errorf("X-Deleting = %v, want [yes]", got)
				}
			}},
		{name: "request and response header modifiers", path: "/api/h", headers: []string{"x-secret", "s", "x-added", "client"}, wantPod: "v1",
			check: func(t *testing.T, resp *http.Response, e *echoReply) {
				if _, ok := e.Headers["X-Secret"]; ok {
					t.Errorf("x-secret reached the backend")
				}
				if got := strings.Join(e.Headers["X-Added"], ","); got != "client,gw" {
					t.Errorf("X-Added = %q, want client,gw", got)
				}
				if got := resp.Header.Get("X-Route"); got != "api" {
					t.Errorf("response X-Route = %q, want api", got)
				}
			}},
		{name: "rewrite host and prefix", path: "/rewrite/a?q=1", wantPod: "v1",
			check: func(t *testing.T, _ *http.Response, e *echoReply) {
				if e.Path != "/backend/a?q=1" || e.Host != "rewritten.example.com" {
					t.Errorf("backend saw %s %s, want rewritten.example.com /backend/a?q=1", e.Host, e.Path)
				}
			}},
		{name: "wildcard hostname", path: "/anything", headers: []string{"host", "other.example.com"}, wantPod: "v2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method := c.method
			if method == "" {
				method = http.MethodGet
			}
			headers := append([]string{"host", host}, c.headers...)
			resp, e := g.do(t, newRequest(t, method, base+c.path, headers...))
			if e == nil {
				t.Fatalf("status %s, want an echo reply", resp.Status)
			}
			if e.Pod != c.wantPod {
				t.Errorf("served by %q, want %q", e.Pod, c.wantPod)
			}
			if c.check != nil {
				c.check(t, resp, e)
			}
		})
	}

	t.Run("redirect", func(t *testing.T) {
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(newRequest(t, http.MethodGet, base+"/old/page?x=1", "host", host))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMovedPermanently {
			t.Fatalf("status %d, want 301", resp.StatusCode)
		}
		if got, want := resp.Header.Get("Location"), "https://app.example.com/new/page?x=1"; got != want {
			t.Errorf("Location %q, want %q", got, want)
		}
	})
	t.Run("unresolved backend answers 500", func(t *testing.T) {
		resp, _ := g.do(t, newRequest(t, http.MethodGet, base+"/broken", "host", host))
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("status %d, want 500", resp.StatusCode)
		}
	})
	t.Run("unknown host answers 404", func(t *testing.T) {
		resp, _ := g.do(t, newRequest(t, http.MethodGet, base+"/", "host", "nope.test"))
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("status %d, want 404", resp.StatusCode)
		}
	})
}

const weightedRoute = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: split, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs:
    - {name: v1, port: 80, weight: 80}
    - {name: v2, port: 80, weight: 20}
    - {name: v3, port: 80, weight: 0}
`

func TestWeightedSplit(t *testing.T) {
	v1, v2, v3 := echoBackend(t, "v1"), echoBackend(t, "v2"), echoBackend(t, "v3")
	port := freePort(t)
	g := startGateway(t, map[string]string{
		"gateway.yaml":  gatewayYAML("gw", port),
		"services.yaml": serviceYAML("v1", "", v1) + "---\n" + serviceYAML("v2", "", v2) + "---\n" + serviceYAML("v3", "", v3),
		"routes.yaml":   weightedRoute,
	})
	const n = 1000
	counts := map[string]int{}
	for i := 0; i < n; i++ {
		_, e := g.do(t, newRequest(t, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", port)))
		if e == nil {
			t.Fatalf("request %d failed", i)
		}
		counts[e.Pod]++
	}
	if counts["v3"] != 0 {
		t.Errorf("weight-0 backend got %d requests", counts["v3"])
	}
	// A correct 80/20 split lands within 6 standard deviations of 800 except with
	// probability below 1e-8.
	sd := math.Sqrt(n * 0.8 * 0.2)
	if d := math.Abs(float64(counts["v1"]) - 0.8*n); d > 6*sd {
		t.Errorf("v1 got %d of %d requests, want 800 +- %.0f (counts %v)", counts["v1"], n, 6*sd, counts)
	}
	if counts["v1"]+counts["v2"] != n {
		t.Errorf("counts %v do not add up to %d", counts, n)
	}
}
