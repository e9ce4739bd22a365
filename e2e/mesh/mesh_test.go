package mesh_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/e2e/echo"
	"github.com/switchyard-dev/switchyard/gateway/admin"
)

// TestMesh runs east-west traffic through the node replicas of a two-node cluster.
// The subtests share the cluster and run in order; the last replaces the replicas
// under load.
func TestMesh(t *testing.T) {
	m := startMesh(t)
	callers := map[string]caller{
		"node-a": m.createCaller(t, "client-a", "node-a"),
		"node-b": m.createCaller(t, "client-b", "node-b"),
	}
	m.createApp(t, app{name: "echo-a", labels: map[string]string{"app": "echo"}, replicas: 1, node: "node-a"})
	m.createApp(t, app{name: "echo-b", labels: map[string]string{"app": "echo"}, replicas: 1, node: "node-b"})
	m.createApp(t, app{name: "echo-v2", labels: map[string]string{"app": "echo-v2"}, replicas: 1})
	echoSvc := m.createService(t, "echo", "echo", 2)
	m.createService(t, "echo-v2", "echo-v2", 1)
	t.Run("DefaultRoute", func(t *testing.T) { m.testDefaultRoute(t, callers, echoSvc) })
	t.Run("HeaderCanaryAndWeights", func(t *testing.T) { m.testCanaryAndWeights(t, callers["node-a"]) })
	t.Run("RetriesAndBreaker", func(t *testing.T) { m.testRetriesAndBreaker(t, callers["node-b"]) })
	t.Run("RefusedCallers", func(t *testing.T) { m.testRefusedCallers(t, callers) })
	t.Run("Egress", func(t *testing.T) { m.testEgress(t, callers["node-a"]) })
	t.Run("ServiceGraph", func(t *testing.T) { m.testServiceGraph(t, callers["node-a"]) })
	t.Run("Handover", func(t *testing.T) { m.testHandover(t, callers) })
}

// testServiceGraph: the node replicas report each caller -> Service edge to the
// controller, whose GET /api/v1/graph shows the calling workload's requests to echo.
// The graph counts requests from the sample after an edge first appears, so requests
// keep being sent while the test waits.
func (m *mesh) testServiceGraph(t *testing.T, c caller) {
	client := c.client(true)
	var last admin.GraphView
	waitFor(t, 45*time.Second, "the controller's graph shows the edge to default/echo", func() bool {
		for range 5 {
			if _, err := get(client, serviceURL("echo", "/graph"), nil); err != nil {
				t.Logf("GET echo: %v", err)
			}
		}
		resp, err := http.Get(m.controllerAdmin + "/api/v1/graph")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if json.NewDecoder(resp.Body).Decode(&last) != nil {
			return false
		}
		for _, e := range last.Edges {
			if e.Callee == "default/echo" && strings.HasPrefix(e.Caller, "default/") && e.Requests > 0 {
				return true
			}
		}
		return false
	})
	if t.Failed() {
		t.Logf("last graph: %+v", last)
	}
}

// testDefaultRoute: with no HTTPRoute, a Service's requests reach its endpoints on
// both nodes, from callers on either node, by DNS name and by cluster IP.
func (m *mesh) testDefaultRoute(t *testing.T, callers map[string]caller, svc *corev1.Service) {
	nodesOf := m.podNodes(t, "echo")
	if nodes := uniqueValues(nodesOf); len(nodes) != 2 {
		t.Fatalf("the echo Pods run on %v, want one on each node", nodesOf)
	}
	targets := []string{serviceURL("echo", "/default"), "http://echo.default/short", "http://" + svc.Spec.ClusterIP + "/by-ip"}
	for node, c := range callers {
		client := c.client(true)
		reached := map[string]bool{}
		for i := range 30 {
			target := targets[i%len(targets)]
			r := mustGet(t, client, target, nil)
			if r.status != http.StatusOK || nodesOf[r.pod] == "" {
				t.Fatalf("from %s, GET %s: status %d from %q: %s", node, target, r.status, r.pod, r.body)
			}
			reached[nodesOf[r.pod]] = true
		}
		if len(reached) != 2 {
			t.Errorf("from %s the requests reached endpoints on %v, want both nodes", node, reached)
		}
	}
}

// testCanaryAndWeights: a mesh HTTPRoute on the echo Service sends requests with the
// canary header to echo-v2, and splits the others 3:1 between echo and echo-v2.
func (m *mesh) testCanaryAndWeights(t *testing.T, c caller) {
	canaryHeader := gwv1.HTTPHeaderMatch{Name: "x-canary", Value: "always"}
	route := meshRoute("echo-split", "echo", []gwv1.HTTPRouteRule{
		{Matches: []gwv1.HTTPRouteMatch{{Headers: []gwv1.HTTPHeaderMatch{canaryHeader}}},
			BackendRefs: []gwv1.HTTPBackendRef{backend("echo-v2", 1)}},
		{BackendRefs: []gwv1.HTTPBackendRef{backend("echo", 3), backend("echo-v2", 1)}},
	})
	must(t, create(m.gw.GatewayV1().HTTPRoutes("default").Create(context.Background(), route, metav1.CreateOptions{})))
	m.waitRouteAccepted(t, "echo-split")
	client := c.client(true)
	// The route reaches the replica shortly after its status is written.
	waitFor(t, 15*time.Second, "the canary header routed to echo-v2", func() bool {
		r, err := get(client, serviceURL("echo", "/canary"), map[string]string{"x-canary": "always"})
		return err == nil && strings.HasPrefix(r.pod, "echo-v2-")
	})
	for range 20 {
		if r := mustGet(t, client, serviceURL("echo", "/canary"), map[string]string{"x-canary": "always"}); !strings.HasPrefix(r.pod, "echo-v2-") {
			t.Fatalf("a canary request was answered by %q (status %d)", r.pod, r.status)
		}
	}
	const total = 200
	v2 := 0
	for range total {
		r := mustGet(t, client, serviceURL("echo", "/split"), nil)
		if r.status != http.StatusOK {
			t.Fatalf("split request: status %d: %s", r.status, r.body)
		}
		if strings.HasPrefix(r.pod, "echo-v2-") {
			v2++
		}
	}
	// 3:1 gives echo-v2 a quarter; the bounds are about five standard deviations.
	if share := float64(v2) / total; share < 0.10 || share > 0.42 {
		t.Errorf("echo-v2 answered %d of %d requests without the header (%.2f), want about a quarter", v2, total, share)
	}
}

// testRetriesAndBreaker: a Service with one endpoint answering 503 fails some
// requests until a TrafficPolicy's retries turn them into successes (the failing
// endpoint still gets tries); a circuit breaker on a slow Service refuses requests
// beyond its cap at once.
func (m *mesh) testRetriesAndBreaker(t *testing.T, c caller) {
	m.createApp(t, app{name: "flaky-ok", labels: map[string]string{"app": "flaky", "v": "ok"}, replicas: 1})
	m.createApp(t, app{name: "flaky-bad", labels: map[string]string{"app": "flaky", "v": "bad"}, replicas: 1,
		env: []corev1.EnvVar{{Name: "ECHO_FAIL_STATUS", Value: "503"}}})
	m.createService(t, "flaky", "flaky", 2)
	client := c.client(true)
	// Ejection would take the failing endpoint out and hide what the retries do, so
	// the policy first only raises its thresholds; then it adds the retries.
	noEjection := map[string]any{"consecutive5xx": int64(1000), "consecutiveGatewayErrors": int64(1000)}
	m.createTrafficPolicy(t, "flaky-policy", "flaky", map[string]any{"outlierDetection": noEjection})
	failed := 0
	for range 20 {
		if r := mustGet(t, client, serviceURL("flaky", "/before"), nil); r.status == http.StatusServiceUnavailable {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("no request failed before the retries: the failing endpoint is not in use")
	}
	bad := onlyKey(t, m.podNodes(t, "flaky,v=bad"))
	triesBefore := countRequests(m.podLog(t, bad))
	m.updateTrafficPolicy(t, "flaky-policy", map[string]any{"outlierDetection": noEjection,
		"retry": map[string]any{"attempts": int64(4), "retryOn": []any{"503"}, "backoff": map[string]any{"base": "5ms", "max": "20ms"}}})
	// Ten successes in a row are unlikely (1 in 1024) without the retries.
	waitFor(t, 15*time.Second, "retries in effect", func() bool {
		for range 10 {
			if r, err := get(client, serviceURL("flaky", "/probe"), nil); err != nil || r.status != http.StatusOK {
				return false
			}
		}
		return true
	})
	for i := range 40 {
		if r := mustGet(t, client, serviceURL("flaky", "/retried"), nil); r.status != http.StatusOK {
			t.Fatalf("request %d with retries: status %d: %s", i, r.status, r.body)
		}
	}
	if tries := countRequests(m.podLog(t, bad)) - triesBefore; tries == 0 {
		t.Error("the failing endpoint got no tries while the retries were in effect")
	}

	m.createApp(t, app{name: "slow", labels: map[string]string{"app": "slow"}, replicas: 1})
	m.createService(t, "slow", "slow", 1)
	m.createTrafficPolicy(t, "slow-breaker", "slow", map[string]any{
		"circuitBreaker": map[string]any{"maxRequests": int64(2), "maxPendingRequests": int64(1), "maxConnections": int64(2)},
	})
	m.checkBreaker(t, c)
}

// checkBreaker sends 8 concurrent slow requests to a Service whose breaker allows 2
// at a time: some must be refused (503) quickly, some must succeed, and no more may
// succeed than the cap lets through while they all wait.
func (m *mesh) checkBreaker(t *testing.T, c caller) {
	t.Helper()
	var ok, refused, quick int
	waitFor(t, 20*time.Second, "the breaker refusing requests beyond its cap", func() bool {
		var mu sync.Mutex
		var wg sync.WaitGroup
		ok, refused, quick = 0, 0, 0
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				r, err := get(c.client(false), serviceURL("slow", "/slow?delay=1s"), nil)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
				case r.status == http.StatusOK:
					ok++
				case r.status == http.StatusServiceUnavailable:
					refused++
					if time.Since(start) < 900*time.Millisecond {
						quick++
					}
				}
			}()
		}
		wg.Wait()
		return refused > 0
	})
	if ok == 0 || ok > 4 || quick == 0 {
		t.Errorf("8 concurrent requests under a breaker of 2: %d succeeded, %d refused (%d at once), want 1-4 successes and quick refusals", ok, refused, quick)
	}
}

// testRefusedCallers: a replica serves only Pods of its own node. A Pod of the other
// node, the node's own address and an address no Pod has are refused with 403.
func (m *mesh) testRefusedCallers(t *testing.T, callers map[string]caller) {
	nodeA := callers["node-a"].proxy
	for what, source := range map[string]string{
		"a Pod of the other node": callers["node-b"].pod.Status.PodIP,
		"the node's own address":  m.nodeIPs["node-a"],
		"an address of no Pod":    "10.244.1.250",
	} {
		r, err := get(clientFrom(source, nodeA, false), serviceURL("echo", "/refused"), nil)
		if err != nil {
			t.Errorf("%s (%s): %v, want a 403 answer", what, source, err)
			continue
		}
		if r.status != http.StatusForbidden || r.pod != "" {
			t.Errorf("%s (%s) through node-a's replica: status %d from %q, want 403", what, source, r.status, r.pod)
		}
	}
	if r := mustGet(t, callers["node-a"].client(false), serviceURL("echo", "/allowed"), nil); r.status != http.StatusOK {
		t.Errorf("node-a's own Pod was answered %d", r.status)
	}
}

// testEgress: destinations that are not Services are refused unless the allow list
// names them, and loopback, link-local and node addresses never are reached.
func (m *mesh) testEgress(t *testing.T, c caller) {
	for _, addr := range []string{allowedServer, deniedServer} {
		host, _, _ := net.SplitHostPort(addr)
		ln, err := net.Listen("tcp", addr)
		must(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		go func() { _ = echo.Serve(ctx, ln, echo.Options{Pod: "external-" + host}) }()
	}
	client := c.client(false)
	if r := mustGet(t, client, "http://"+allowedServer+"/out", nil); r.status != http.StatusOK || !strings.HasPrefix(r.pod, "external-") {
		t.Errorf("allowed egress: status %d from %q: %s", r.status, r.pod, r.body)
	}
	for _, target := range []string{
		"http://" + deniedServer + "/out",
		"http://127.0.0.1:15000/api/v1/config",
		"http://169.254.169.254/latest/meta-data/",
		"http://" + net.JoinHostPort(m.nodeIPs["node-a"], strconv.Itoa(metricsPort)) + "/metrics",
	} {
		r, err := get(client, target, nil)
		if err != nil {
			t.Errorf("GET %s: %v, want a refusal", target, err)
			continue
		}
		if r.status != http.StatusForbidden {
			t.Errorf("GET %s through the replica: status %d, want 403: %.200s", target, r.status, r.body)
		}
	}
}

func uniqueValues(m map[string]string) map[string]bool {
	out := map[string]bool{}
	for _, v := range m {
		out[v] = true
	}
	return out
}

func onlyKey(t *testing.T, m map[string]string) string {
	t.Helper()
	if len(m) != 1 {
		t.Fatalf("want exactly one, got %v", m)
	}
	for k := range m {
		return k
	}
	return ""
}
