package standalone_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// policyYAML is a TrafficPolicy with the given targetRefs and spec fields.
func policyYAML(name, targets, fields string) string {
	return fmt.Sprintf(`apiVersion: switchyard.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: %s, namespace: default}
spec:
  targetRefs: %s
%s`, name, targets, fields)
}

const appRouteTarget = "[{group: gateway.networking.k8s.io, kind: HTTPRoute, name: app}]"

// TestBadPolicyKeepsRouteServing starts a gateway with invalid TrafficPolicies on a
// route beside a valid one, and adds another invalid one under load: each invalid
// policy is reported in /api/v1/status, the valid one applies, and the route never
// stops serving.
func TestBadPolicyKeepsRouteServing(t *testing.T) {
	b := startBackend(t, "backend")
	port := freePort(t)
	g := startGateway(t, map[string]string{
		"gateway.yaml":  gatewayYAML("gw", port),
		"services.yaml": serviceYAML("app", "", b.port),
		"routes.yaml":   routeYAML("app", "/", "app"),
		"bad.yaml": policyYAML("negative-attempts", appRouteTarget, "  retry: {attempts: -1}\n") + "---\n" +
			policyYAML("unknown-retry-on", appRouteTarget, "  retry: {attempts: 1, retryOn: [sometimes]}\n") + "---\n" +
			policyYAML("no-target", "[{group: gateway.networking.k8s.io, kind: HTTPRoute, name: missing}]", "  retry: {attempts: 1}\n"),
		"good.yaml": policyYAML("limit", appRouteTarget, "  rateLimit: {rules: [{key: {type: Route}, requests: 100000, per: 1s}]}\n"),
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	g.waitPolicyReason(t, "limit", "Accepted")

	want := map[string]struct{ reason, mentions string }{
		"negative-attempts": {"Invalid", "attempts"},
		"unknown-retry-on":  {"Invalid", "sometimes"},
		"no-target":         {"TargetNotFound", "missing"},
	}
	checkPolicyProblems(t, g, want)
	if o := g.send(http.MethodGet, url); o.status != http.StatusOK || o.header.Get("RateLimit-Limit") != "100000" {
		t.Errorf("route with invalid policies beside a valid one: %s, RateLimit-Limit %q; want 200 with the valid policy's 100000",
			o.key(), o.header.Get("RateLimit-Limit"))
	}

	// Another invalid policy arrives while clients use the route.
	var sent, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 5000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			o := g.send(http.MethodGet, url)
			sent.Add(1)
			if o.status != http.StatusOK || o.header.Get("RateLimit-Limit") != "100000" {
				failed.Add(1)
				t.Errorf("request during the edit: %s, RateLimit-Limit %q", o.key(), o.header.Get("RateLimit-Limit"))
			}
		}
	}()
	g.addManifest(t, "late.yaml", policyYAML("zero-period", appRouteTarget,
		"  rateLimit: {rules: [{key: {type: Route}, requests: 1, per: 0s}]}\n"))
	want["zero-period"] = struct{ reason, mentions string }{"Invalid", "per"}
	waitFor(t, 10*time.Second, func() bool {
		c, ok := g.policyAccepted(t, "zero-period")
		return ok && c.Reason == "Invalid"
	})
	// Keep the clients going a little after the edit is in effect.
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	checkPolicyProblems(t, g, want)
	var cfg struct {
		LastError string `json:"lastError"`
	}
	g.adminJSON(t, "/api/v1/config", &cfg)
	if cfg.LastError != "" {
		t.Errorf("an invalid policy made the configuration edit fail: %s", cfg.LastError)
	}
	if sent.Load() == 0 || failed.Load() != 0 {
		t.Errorf("%d of %d requests failed while an invalid policy was added", failed.Load(), sent.Load())
	}
}

// checkPolicyProblems requires each named TrafficPolicy to be listed among the
// problems of /api/v1/status with the reason, and its message to mention the word.
func checkPolicyProblems(t *testing.T, g *gateway, want map[string]struct{ reason, mentions string }) {
	t.Helper()
	view := g.statusView(t)
	for name, w := range want {
		found := false
		for _, p := range view.Problems {
			if p.Kind != "TrafficPolicy" || !strings.HasPrefix(p.Name, "default/"+name+" ") {
				continue
			}
			found = true
			if p.Condition != "Accepted" || p.Reason != w.reason || !strings.Contains(p.Message, w.mentions) {
				t.Errorf("problem of %s: %s %s %q, want Accepted %s mentioning %q", name, p.Condition, p.Reason, p.Message, w.reason, w.mentions)
			}
		}
		if !found {
			t.Errorf("TrafficPolicy %s is not among the problems %+v", name, view.Problems)
		}
	}
}

// TestPolicyPrecedence attaches rate limits of different sizes at every level and
// reads which one each rule enforces from RateLimit-Limit: an HTTPRoute rule's
// policy beats its HTTPRoute's, which beats the backend Service's, which beats the
// Gateway's.
func TestPolicyPrecedence(t *testing.T) {
	b := startBackend(t, "backend")
	port := freePort(t)
	limit := func(n int) string {
		return fmt.Sprintf("  rateLimit: {rules: [{key: {type: Route}, requests: %d, per: 1m}]}\n", n)
	}
	g := startGateway(t, map[string]string{
		"gateway.yaml": gatewayYAML("gw", port),
		"services.yaml": serviceYAML("svc-a", "", b.port) + "---\n" + serviceYAML("svc-b", "", b.port) + "---\n" +
			serviceYAML("svc-c", "", b.port),
		"routes.yaml": `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: alpha, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - name: special
    matches: [{path: {type: PathPrefix, value: /alpha/special}}]
    backendRefs: [{name: svc-a, port: 80}]
  - name: rest
    matches: [{path: {type: PathPrefix, value: /alpha}}]
    backendRefs: [{name: svc-a, port: 80}]
---
` + routeYAML("beta", "/beta", "svc-b") + "---\n" + routeYAML("gamma", "/gamma", "svc-c"),
		"policies.yaml": policyYAML("gateway-wide", "[{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]", limit(1000)) + "---\n" +
			policyYAML("services", `[{group: "", kind: Service, name: svc-a}, {group: "", kind: Service, name: svc-b}]`, limit(300)) + "---\n" +
			policyYAML("route", "[{group: gateway.networking.k8s.io, kind: HTTPRoute, name: alpha}]", limit(500)) + "---\n" +
			policyYAML("rule", "[{group: gateway.networking.k8s.io, kind: HTTPRoute, name: alpha, sectionName: special}]", limit(100)),
	})
	for _, name := range []string{"gateway-wide", "services", "route", "rule"} {
		g.waitPolicyReason(t, name, "Accepted")
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for path, want := range map[string]string{"/alpha/special": "100", "/alpha/other": "500", "/beta": "300", "/gamma": "1000"} {
		o := g.send(http.MethodGet, base+path)
		if o.status != http.StatusOK || o.header.Get("RateLimit-Limit") != want {
			t.Errorf("%s: %s with RateLimit-Limit %q, want 200 with %s", path, o.key(), o.header.Get("RateLimit-Limit"), want)
		}
	}
}
