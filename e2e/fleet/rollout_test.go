package fleet_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

var (
	rolloutResource = schema.GroupVersionResource{Group: "switchyard.dev", Version: "v1alpha1", Resource: "rollouts"}
	policyResource  = schema.GroupVersionResource{Group: "switchyard.dev", Version: "v1alpha1", Resource: "trafficpolicies"}
)

// TestRolloutOnFleet runs two Rollouts through a real controller and gateway replica:
// one whose canary is healthy reaches Promoted and then takes all the traffic, one
// whose canary fails every request is aborted by the analysis and sends everything
// back to the stable backend. Header-matched requests always reach a canary. A TrafficPolicy on the route gets its status from the controller.
func TestRolloutOnFleet(t *testing.T) {
	e := newEnv(t)
	e.c.InstallSwitchyardAPI(t)
	dyn := dynamic.NewForConfigOrDie(e.c.Config)
	e.createClass()
	e.createApp("default", "reviews-v1", 1)
	e.createApp("default", "reviews-v2", 1)
	e.createApp("default", "ratings-v1", 1)
	e.createAppWithEnv("default", "ratings-v2", 1, []corev1.EnvVar{{Name: "ECHO_FAIL_STATUS", Value: "503"}})
	e.startController("controller-a")
	e.startGateway("node-a")
	e.createGateway("default", "gw", "", 80)
	addr := e.gatewayAddress("default", "gw") + ":80"
	e.createRoute(route("default", "reviews", "default", "gw", "/reviews", "reviews-v1"))
	e.createRoute(route("default", "ratings", "default", "gw", "/ratings", "ratings-v1"))
	waitStatus(t, addr, "", "/reviews/x", http.StatusOK)
	waitStatus(t, addr, "", "/ratings/x", http.StatusOK)

	applyObject(t, dyn, policyResource, `
apiVersion: switchyard.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: reviews-retry, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: reviews}]
  retry: {attempts: 1, retryOn: [gateway-error]}
`)
	applyObject(t, dyn, policyResource, `
apiVersion: switchyard.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: nowhere, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: missing}]
  retry: {attempts: 1}
`)
	waitPolicyReason(t, dyn, "reviews-retry", "Accepted")
	waitPolicyReason(t, dyn, "nowhere", "TargetNotFound")

	load := startLoad(t, addr, []string{"/reviews/x", "/ratings/x"})
	defer load.stop()
	began := time.Now()
	applyObject(t, dyn, rolloutResource, `
apiVersion: switchyard.dev/v1alpha1
kind: Rollout
metadata: {name: reviews, namespace: default}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: reviews}
  stable: {name: reviews-v1, port: 80}
  canary: {name: reviews-v2, port: 80}
  headerMatch: [{name: x-canary, value: always}]
  steps: [{weight: 10, pause: 2s}, {weight: 50, pause: 2s}, {weight: 100}]
  analysis: {interval: 1s, minRequests: 5, maxErrorRate: "5%"}
`)
	applyObject(t, dyn, rolloutResource, `
apiVersion: switchyard.dev/v1alpha1
kind: Rollout
metadata: {name: ratings, namespace: default}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: ratings}
  stable: {name: ratings-v1, port: 80}
  canary: {name: ratings-v2, port: 80}
  steps: [{weight: 50, pause: 30s}, {weight: 100}]
  analysis: {interval: 1s, minRequests: 5, maxErrorRate: "5%"}
`)
	waitFor(t, 30*time.Second, "x-canary requests all reach reviews-v2 while its weight is low", func() bool {
		for i := 0; i < 10; i++ {
			code, pod, err := getWithHeader(addr, "/reviews/x", "x-canary", "always")
			if err != nil || code != http.StatusOK || !strings.HasPrefix(pod, "reviews-v2-") {
				return false
			}
		}
		return true
	})

	promoted := waitRolloutPhase(t, dyn, "reviews", v1alpha1.RolloutPromoted, 90*time.Second)
	t.Logf("healthy canary promoted %v after the Rollout was created (status: %s)", time.Since(began).Round(time.Second), promoted.Message)
	aborted := waitRolloutPhase(t, dyn, "ratings", v1alpha1.RolloutAborted, 90*time.Second)
	t.Logf("failing canary aborted %v after the Rollout was created (status: %s)", time.Since(began).Round(time.Second), aborted.Message)
	if !strings.Contains(aborted.Message, "error rate") {
		t.Errorf("aborted rollout's message %q does not give the breach", aborted.Message)
	}
	waitFor(t, 30*time.Second, "traffic follows the finished rollouts", func() bool {
		for i := 0; i < 20; i++ {
			_, reviews, err1 := httpGet(client, addr, "", "/reviews/x")
			code, ratings, err2 := httpGet(client, addr, "", "/ratings/x")
			if err1 != nil || err2 != nil || !strings.HasPrefix(reviews, "reviews-v2-") ||
				code != http.StatusOK || !strings.HasPrefix(ratings, "ratings-v1-") {
				return false
			}
		}
		return true
	})
	reviews, ratings := load.counts()
	t.Logf("load during the rollouts: reviews %v, ratings %v", reviews, ratings)
	if reviews["reviews-v2"] == 0 || reviews["reviews-v1"] == 0 {
		t.Errorf("the reviews rollout did not split traffic during its steps: %v", reviews)
	}
}

// applyObject creates the object in manifest through the dynamic client.
func applyObject(t *testing.T, dyn dynamic.Interface, gvr schema.GroupVersionResource, manifest string) {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &obj.Object); err != nil {
		t.Fatal(err)
	}
	_, err := dyn.Resource(gvr).Namespace(obj.GetNamespace()).Create(context.Background(), obj, metav1.CreateOptions{})
	must(t, err)
}

// waitPolicyReason waits until the TrafficPolicy's first ancestor's Accepted
// condition has the reason.
func waitPolicyReason(t *testing.T, dyn dynamic.Interface, name, reason string) {
	t.Helper()
	waitFor(t, 30*time.Second, "TrafficPolicy "+name+" Accepted reason "+reason, func() bool {
		u, err := dyn.Resource(policyResource).Namespace("default").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		var p v1alpha1.TrafficPolicy
		if runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &p) != nil {
			return false
		}
		for _, a := range p.Status.Ancestors {
			if c := findCondition(a.Conditions, "Accepted"); c != nil && c.Reason == reason {
				return true
			}
		}
		return false
	})
}

func findCondition(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

// waitRolloutPhase waits until the Rollout's status has the phase and returns the
// status.
func waitRolloutPhase(t *testing.T, dyn dynamic.Interface, name string, phase v1alpha1.RolloutPhase, timeout time.Duration) v1alpha1.RolloutStatus {
	t.Helper()
	var st v1alpha1.RolloutStatus
	waitFor(t, timeout, "Rollout "+name+" "+string(phase), func() bool {
		u, err := dyn.Resource(rolloutResource).Namespace("default").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		var r v1alpha1.Rollout
		if runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &r) != nil {
			return false
		}
		st = r.Status
		return st.Phase == phase
	})
	return st
}

func getWithHeader(addr, path, name, value string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set(name, value)
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	return httpGetReply(resp)
}

// loadGen sends requests to each path in turn, about 40 a second per path, for at
// most three minutes or until stopped, and counts which Deployment answered.
type loadGen struct {
	done chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	by   []map[string]int
}

func startLoad(t *testing.T, addr string, paths []string) *loadGen {
	l := &loadGen{done: make(chan struct{}), by: make([]map[string]int, len(paths))}
	for i := range l.by {
		l.by[i] = map[string]int{}
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(3 * time.Minute)
		for {
			select {
			case <-l.done:
				return
			case <-deadline:
				return
			case <-tick.C:
			}
			for i, p := range paths {
				code, pod, err := httpGet(client, addr, "", p)
				key := deploymentOf(pod)
				if err != nil || code != http.StatusOK {
					key = "failed"
				}
				l.mu.Lock()
				l.by[i][key]++
				l.mu.Unlock()
			}
		}
	}()
	return l
}

func (l *loadGen) stop() {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	l.wg.Wait()
}

func (l *loadGen) counts() (map[string]int, map[string]int) {
	l.stop()
	return l.by[0], l.by[1]
}

// deploymentOf turns a Pod name "name-<hash>-<suffix>" into its Deployment's name.
func deploymentOf(pod string) string {
	parts := strings.Split(pod, "-")
	if len(parts) < 3 {
		return pod
	}
	return strings.Join(parts[:len(parts)-2], "-")
}
