package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/controller/standalone"
	"github.com/switchyard-dev/switchyard/gateway/admin"
	"github.com/switchyard-dev/switchyard/gateway/dataplane"
)

// ctlManifests is a Gateway in front of reviews-v1 and reviews-v2 with a route whose
// "api" rule needs a header, a Rollout from v1 to v2 that waits for promotes, and a
// rate limit.
const ctlManifests = `
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: switchyard}
spec: {controllerName: switchyard.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: shop, namespace: default}
spec:
  gatewayClassName: switchyard
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners: [{name: http, protocol: HTTP, port: {{GATEWAY_PORT}}}]
---
apiVersion: v1
kind: Service
metadata: {name: reviews-v1, namespace: default}
spec: {ports: [{name: http, port: 80, targetPort: {{V1_PORT}}}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: reviews-v1, namespace: default, labels: {kubernetes.io/service-name: reviews-v1}}
addressType: IPv4
ports: [{name: http, port: {{V1_PORT}}, protocol: TCP}]
endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]
---
apiVersion: v1
kind: Service
metadata: {name: reviews-v2, namespace: default}
spec: {ports: [{name: http, port: 80, targetPort: {{V2_PORT}}}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: reviews-v2, namespace: default, labels: {kubernetes.io/service-name: reviews-v2}}
addressType: IPv4
ports: [{name: http, port: {{V2_PORT}}, protocol: TCP}]
endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews, namespace: default}
spec:
  parentRefs: [{name: shop}]
  rules:
  - name: api
    matches: [{path: {type: PathPrefix, value: /api}, headers: [{name: x-team, value: a}]}]
    backendRefs: [{name: reviews-v2, port: 80}]
  - name: all
    backendRefs: [{name: reviews-v1, port: 80}]
---
apiVersion: switchyard.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: limits, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: reviews}]
  rateLimit: {mode: Local, rules: [{key: {type: ClientIP}, requests: 100, per: 1s, burst: 10}]}
---
apiVersion: switchyard.dev/v1alpha1
kind: Rollout
metadata: {name: reviews, namespace: default}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: reviews}
  stable: {name: reviews-v1, port: 80}
  canary: {name: reviews-v2, port: 80}
  steps: [{weight: 20}, {weight: 50}, {weight: 100}]
`

// ctlStack is a standalone gateway with its admin API on loopback.
type ctlStack struct {
	admin  string
	token  string
	v1Addr string
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startCtlStack(t *testing.T) *ctlStack {
	t.Helper()
	backend := func(name string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, name) }))
		t.Cleanup(srv.Close)
		return srv.Listener.Addr().String()
	}
	v1, v2 := backend("v1"), backend("v2")
	portOf := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
	manifests := strings.NewReplacer("{{GATEWAY_PORT}}", fmt.Sprint(freePort(t)), "{{V1_PORT}}", portOf(v1),
		"{{V2_PORT}}", portOf(v2)).Replace(ctlManifests)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "shop.yaml"), []byte(manifests), 0o600); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	engine := dataplane.New(dataplane.Options{Logger: logger})
	runner, err := standalone.New(dir, engine, standalone.Options{Logger: logger, Outcome: engine.BackendOutcome,
		RolloutInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := runner.Start(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	servers, err := startAdminServers(adminConfig{addr: "127.0.0.1:0", token: "t0ken", state: runner,
		dataPlane: admin.NewEngineDataPlane(engine)}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		shutdown, done := context.WithTimeout(context.Background(), 5*time.Second)
		defer done()
		for _, s := range servers {
			_ = s.Shutdown(shutdown)
		}
		_ = engine.Shutdown(shutdown)
	})
	if !engine.Ready() {
		t.Fatalf("the gateway is not ready: %+v", runner.Status())
	}
	return &ctlStack{admin: "http://" + servers[0].Addr(), token: "t0ken", v1Addr: v1}
}

// run runs switchyard ctl against the stack with the token in the environment.
func (s *ctlStack) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	env := func(name string) string {
		if name == ctlTokenEnv {
			return s.token
		}
		return ""
	}
	err := ctl(append([]string{"--admin", s.admin}, args...), &out, io.Discard, env)
	return out.String(), err
}

// mustRun runs ctl and checks that the output has every one of want.
func (s *ctlStack) mustRun(t *testing.T, want []string, args ...string) string {
	t.Helper()
	out, err := s.run(t, args...)
	if err != nil {
		t.Fatalf("ctl %v: %v\n%s", args, err, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("ctl %v lacks %q:\n%s", args, w, out)
		}
	}
	return out
}

func TestCtlRoutesAndMatch(t *testing.T) {
	s := startCtlStack(t)
	s.mustRun(t, []string{"LISTENER", "default/shop/http", "default/reviews", "0 (api)", "PathPrefix /api x-team=a",
		"1 (all)", "default/reviews-v2:80 (1)"}, "routes")
	s.mustRun(t, []string{"listener 127.0.0.1:", "Matched, route default/reviews rule 0 (api)", "Chosen", "Outranked",
		"precedence: "}, "match", "--host", "shop.example.com", "--path", "/api/x", "--header", "x-team: a")
	s.mustRun(t, []string{"rule 1 (all)", "NotMatched", "header: the match requires header X-Team"},
		"match", "--host", "shop.example.com", "--path", "/api/x")

	out := s.mustRun(t, nil, "-o", "json", "match", "--host", "h", "--path", "/api", "--header", "x-team: a")
	var view admin.MatchView
	if err := json.Unmarshal([]byte(out), &view); err != nil || len(view.Listeners) != 1 ||
		view.Listeners[0].Chosen == nil || view.Listeners[0].Chosen.RuleName != "api" {
		t.Fatalf("json match: %v %s", err, out)
	}
	// -o may also follow the command.
	if out := s.mustRun(t, nil, "routes", "-o", "json"); !json.Valid([]byte(out)) {
		t.Errorf("routes -o json: %s", out)
	}
}

func TestCtlBackendsAndDrain(t *testing.T) {
	s := startCtlStack(t)
	s.mustRun(t, []string{"default/reviews-v1:80", s.v1Addr, "Ready"}, "backends")
	s.mustRun(t, []string{"default/reviews-v1:80", s.v1Addr, "true", "warning: default/reviews-v1:80 now has no endpoint"},
		"backends", "drain", "default/reviews-v1", s.v1Addr)
	s.mustRun(t, []string{s.v1Addr + "  Drained"}, "backends")
	out := s.mustRun(t, []string{"false"}, "backends", "undrain", "default/reviews-v1", "127.0.0.1", "--port", "80")
	if strings.Contains(out, "warning") {
		t.Errorf("undrain warns: %s", out)
	}
	if _, err := s.run(t, "backends", "drain", "default/reviews-v1", "10.1.1.1:80"); err == nil ||
		!strings.Contains(err.Error(), "404 Not Found") {
		t.Errorf("drain of an unknown endpoint: %v", err)
	}
	s.mustRun(t, []string{"default/limits", "Local", "100/1s+10 by ClientIP", "default/reviews rule 0"}, "ratelimits")
}

// waitForPhase polls the rollouts until the first one is in phase, for a few
// seconds: the driver starts a rollout on its first tick.
func (s *ctlStack) waitForPhase(t *testing.T, phase string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := s.run(t, "-o", "json", "rollouts")
		var list rolloutList
		if err == nil && json.Unmarshal([]byte(out), &list) == nil && len(list.Rollouts) == 1 && list.Rollouts[0].Phase == phase {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rollout is not %s after 5 s: %v %s", phase, err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCtlRollouts(t *testing.T) {
	s := startCtlStack(t)
	s.waitForPhase(t, "Progressing")
	s.mustRun(t, []string{"default/reviews", "Progressing", "1/3", "20%", "promote"}, "rollouts")
	s.mustRun(t, []string{"default/reviews", "Paused"}, "rollouts", "pause", "default/reviews")
	s.mustRun(t, []string{"Progressing"}, "rollouts", "resume", "reviews")
	s.mustRun(t, []string{"2/3", "50%"}, "rollouts", "promote", "default/reviews")
	s.mustRun(t, []string{"Promoted", "100%"}, "rollouts", "promote", "--full", "default/reviews")
	if _, err := s.run(t, "rollouts", "abort", "default/nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("abort of an unknown rollout: %v", err)
	}
	s.mustRun(t, []string{"every condition is healthy"}, "status")
}

func TestCtlErrors(t *testing.T) {
	s := startCtlStack(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"gateways"}, "404 Not Found: no endpoint at /api/v1/gateways"},
		{[]string{"nope"}, "unknown command"},
		{[]string{}, "no command"},
		{[]string{"-o", "yaml", "routes"}, "want table or json"},
		{[]string{"match"}, "needs --host"},
		{[]string{"routes", "extra"}, "takes no arguments"},
		{[]string{"rollouts", "rewind", "a/b"}, "usage: rollouts"},
		{[]string{"rollouts", "pause", "a/b/c"}, "is not NAMESPACE/NAME"},
		{[]string{"backends", "drain", "a/b"}, "usage: backends"},
	}
	for _, tc := range cases {
		if _, err := s.run(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ctl %v: %v; want an error with %q", tc.args, err, tc.want)
		}
	}
	// The token is required, and read from a file when one is named.
	s.token = ""
	if _, err := s.run(t, "routes"); err == nil || !strings.Contains(err.Error(), "401 Unauthorized") {
		t.Errorf("without a token: %v", err)
	}
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.mustRun(t, []string{"default/reviews"}, "--token-file", file, "routes")
	s.token = "wrong"
	s.mustRun(t, []string{"default/reviews"}, "--token-file", file, "routes")
	if _, err := s.run(t, "routes"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("with a wrong token: %v", err)
	}
	if err := ctl([]string{"--admin", "ftp://x", "routes"}, io.Discard, io.Discard, func(string) string { return "" }); err == nil {
		t.Error("an ftp admin URL was accepted")
	}
}

// lagFleet is a Fleet with replicas in each state of lag.
type lagFleet struct{}

func (lagFleet) Gateways() admin.GatewaysView {
	return admin.GatewaysView{NewestVersion: "v9", Gateways: []admin.GatewayView{
		{Node: "n1", Role: "edge", Instance: "a1", Connected: true, AckedVersion: "v9", Lag: admin.GatewayLag{InSync: true},
			LastAck: time.Now()},
		{Node: "n2", Role: "node", Instance: "b2", Connected: false, AckedVersion: "v7",
			Lag: admin.GatewayLag{Versions: 2, Seconds: 3.54}, AckError: "listener :80: bind: in use"},
	}}
}

func TestCtlGateways(t *testing.T) {
	servers, err := startAdminServers(adminConfig{addr: "127.0.0.1:0", state: controllerStateStub{}, fleet: lagFleet{}},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = servers[0].Shutdown(context.Background()) })
	s := &ctlStack{admin: "http://" + servers[0].Addr()}
	s.mustRun(t, []string{"newest version v9", "n1", "edge", "in sync", "n2", "false", "2 versions, 3.5s", "bind: in use"}, "gateways")
}

// controllerStateStub is an admin.State with nothing to report.
type controllerStateStub struct{}

func (controllerStateStub) Ready() bool              { return true }
func (controllerStateStub) Config() admin.ConfigView { return admin.ConfigView{} }
func (controllerStateStub) Status() any              { return nil }
