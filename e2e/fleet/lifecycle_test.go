package fleet_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

var client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}

// waitStatus waits until GET path through addr answers want.
func waitStatus(t testing.TB, addr, host, path string, want int) {
	t.Helper()
	waitFor(t, 30*time.Second, "GET "+path+" via "+addr+" answers "+itoa(want), func() bool {
		code, _, err := httpGet(client, addr, host, path)
		return err == nil && code == want
	})
}

// TestRouteLifecycle follows one HTTPRoute from creation through an edit to deletion,
// through a real controller and gateway replica, and reads the status the controller
// wrote back from the API server.
func TestRouteLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.createClass()
	e.createApp("default", "web", 2)
	e.startController("controller-a")
	gw := e.startGateway("node-a")
	e.createGateway("default", "gw", "", 80)
	addr := e.gatewayAddress("default", "gw") + ":80"

	// Status writes run in parallel, so the class's may land after the Gateway's.
	waitFor(t, 30*time.Second, "GatewayClass Accepted with supportedFeatures", func() bool {
		class, err := e.gw.GatewayV1().GatewayClasses().Get(ctx, "switchyard", metav1.GetOptions{})
		return err == nil && conditionTrue(class.Status.Conditions, "Accepted", class.Generation) && len(class.Status.SupportedFeatures) > 0
	})

	r := e.createRoute(route("default", "web", "default", "gw", "/web", "web"))
	waitStatus(t, addr, "", "/web/hello", http.StatusOK)
	e.waitRouteCondition("default", "web", "gw", "Accepted", metav1.ConditionTrue, "Accepted")
	e.waitRouteCondition("default", "web", "gw", "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs")
	pods := map[string]bool{}
	for i := 0; i < 20; i++ {
		code, pod, err := httpGet(client, addr, "", "/web/hello")
		if err != nil || code != http.StatusOK || !strings.HasPrefix(pod, "web-") {
			t.Fatalf("request %d: status %d pod %q err %v", i, code, pod, err)
		}
		pods[pod] = true
	}
	if len(pods) != 2 {
		t.Errorf("traffic reached %v, want both web Pods", pods)
	}

	// Edit the path: the old prefix stops matching and the new one serves, and the
	// status follows the new generation.
	latest, err := e.gw.GatewayV1().HTTPRoutes("default").Get(ctx, r.Name, metav1.GetOptions{})
	must(t, err)
	latest.Spec.Rules[0].Matches[0].Path.Value = ptr("/v2")
	_, err = e.gw.GatewayV1().HTTPRoutes("default").Update(ctx, latest, metav1.UpdateOptions{})
	must(t, err)
	waitStatus(t, addr, "", "/v2/x", http.StatusOK)
	waitStatus(t, addr, "", "/web/hello", http.StatusNotFound)
	accepted := e.waitRouteCondition("default", "web", "gw", "Accepted", metav1.ConditionTrue, "Accepted")
	if accepted.ObservedGeneration != 2 {
		t.Errorf("Accepted observedGeneration %d after one edit, want 2", accepted.ObservedGeneration)
	}

	must(t, e.gw.GatewayV1().HTTPRoutes("default").Delete(ctx, r.Name, metav1.DeleteOptions{}))
	waitStatus(t, addr, "", "/v2/x", http.StatusNotFound)
	if !gw.ready() {
		t.Error("replica not ready after the route was deleted")
	}
}

// TestControllerOutage kills the controller: replicas keep serving, a replica
// restarted meanwhile serves from its saved snapshot, and a new controller brings
// changes again.
func TestControllerOutage(t *testing.T) {
	e := newEnv(t)
	e.createClass()
	e.createApp("default", "web", 1)
	ctrl := e.startController("controller-a")
	gw := e.startGateway("node-a")
	e.createGateway("default", "gw", "", 80)
	addr := e.gatewayAddress("default", "gw") + ":80"
	e.createRoute(route("default", "web", "default", "gw", "/", "web"))
	waitStatus(t, addr, "", "/", http.StatusOK)

	ctrl.Kill()
	assertAllOK(t, addr, 50)

	// A replica restarted while the controller is down starts from its saved snapshot.
	gw.waitSaved(t)
	gw.Kill()
	gw = e.startGateway("node-a")
	waitFor(t, 20*time.Second, "restarted replica ready from its saved snapshot", gw.ready)
	assertAllOK(t, addr, 50)

	// A replica with neither a controller nor a saved snapshot stays unready.
	fresh := e.startGateway("node-b")
	time.Sleep(2 * time.Second)
	if fresh.ready() {
		t.Error("a replica with no controller and no saved snapshot reports ready")
	}

	e.startController("controller-b")
	e.createRoute(route("default", "api", "default", "gw", "/api", "missing"))
	waitStatus(t, addr, "", "/api/x", http.StatusInternalServerError)
	waitFor(t, 20*time.Second, "fresh replica ready once the controller is back", fresh.ready)
}

// assertAllOK sends n requests and fails on any that is not a 200.
func assertAllOK(t testing.TB, addr string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		code, _, err := httpGet(client, addr, "", "/")
		if err != nil || code != http.StatusOK {
			t.Fatalf("request %d through %s: status %d, error %v", i, addr, code, err)
		}
	}
}

// TestTwoGatewaysSamePort puts two Gateways with the same listener port and an
// overlapping hostname on the shared tier: each gets its own address and serves only
// its own routes.
func TestTwoGatewaysSamePort(t *testing.T) {
	e := newEnv(t)
	e.createClass()
	e.createApp("default", "web", 1)
	e.createApp("default", "api", 1)
	e.startController("controller-a")
	e.startGateway("node-a")
	e.createGateway("default", "blue", "*.example.com", 80)
	e.createGateway("default", "green", "*.example.com", 80)
	blue, green := e.gatewayAddress("default", "blue"), e.gatewayAddress("default", "green")
	if blue == green {
		t.Fatalf("both Gateways got address %s", blue)
	}
	e.createRoute(route("default", "web", "default", "blue", "/", "web"))
	e.createRoute(route("default", "api", "default", "green", "/", "api"))
	waitFor(t, 30*time.Second, "both Gateways serve their own route", func() bool {
		_, bluePod, err1 := httpGet(client, blue+":80", "a.example.com", "/")
		_, greenPod, err2 := httpGet(client, green+":80", "a.example.com", "/")
		return err1 == nil && err2 == nil && strings.HasPrefix(bluePod, "web-") && strings.HasPrefix(greenPod, "api-")
	})
	for _, name := range []string{"blue", "green"} {
		g, err := e.gw.GatewayV1().Gateways("default").Get(context.Background(), name, metav1.GetOptions{})
		must(t, err)
		if !conditionTrue(g.Status.Conditions, string(gwv1.GatewayConditionAccepted), g.Generation) {
			t.Errorf("Gateway %s status %+v, want Accepted", name, g.Status.Conditions)
		}
	}
}

// metric reads one unlabelled sample from the replica's /metrics, -1 if absent.
func (r *replica) metric(t testing.TB, name string) float64 {
	t.Helper()
	resp, err := http.Get(r.admin + "/metrics")
	must(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	must(t, err)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			must(t, err)
			return f
		}
	}
	return -1
}

// TestEndpointChurnKeepsRouteTable scales a Deployment behind a route: the new Pods
// receive traffic, and the replica does so without compiling its route table again.
func TestEndpointChurnKeepsRouteTable(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.createClass()
	e.createApp("default", "web", 1)
	e.startController("controller-a")
	gw := e.startGateway("node-a")
	e.createGateway("default", "gw", "", 80)
	addr := e.gatewayAddress("default", "gw") + ":80"
	e.createRoute(route("default", "web", "default", "gw", "/", "web"))
	waitStatus(t, addr, "", "/", http.StatusOK)
	compiled := gw.metric(t, "switchyard_gateway_route_table_compilations_total")
	if compiled < 1 {
		t.Fatalf("route table compilations %v, want at least 1", compiled)
	}

	scale, err := e.kube.AppsV1().Deployments("default").GetScale(ctx, "web", metav1.GetOptions{})
	must(t, err)
	scale.Spec.Replicas = 3
	_, err = e.kube.AppsV1().Deployments("default").UpdateScale(ctx, "web", scale, metav1.UpdateOptions{})
	must(t, err)
	seen := map[string]bool{}
	waitFor(t, 60*time.Second, "traffic reaches all three Pods", func() bool {
		code, pod, err := httpGet(client, addr, "", "/")
		if err == nil && code == http.StatusOK {
			seen[pod] = true
		}
		return len(seen) == 3
	})
	if got := gw.metric(t, "switchyard_gateway_route_table_compilations_total"); got != compiled {
		t.Errorf("route table compiled %v times after endpoint changes alone, want still %v", got, compiled)
	}
}
