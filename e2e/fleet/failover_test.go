package fleet_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// leaseName is the Lease the controllers elect a leader on.
const leaseName = "switchyard-controller"

// leaseHolder returns the Lease's holder identity, "" if none.
func (e *env) leaseHolder() string {
	l, err := e.kube.CoordinationV1().Leases("default").Get(context.Background(), leaseName, metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// TestLeaderFailover runs two controllers: one leads and writes status; when it is
// killed without handing over, the other takes the Lease and writes status, and the
// gateway connected to the survivor keeps receiving changes.
func TestLeaderFailover(t *testing.T) {
	e := newEnv(t)
	e.createClass()
	e.createApp("default", "web", 1)
	secondAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	a := e.startController("controller-a")
	waitFor(t, 30*time.Second, "controller-a leads", func() bool { return e.leaseHolder() == "controller-a" })
	b := start(t, e.binary, e.controllerArgs("controller-b", secondAddr)...)
	defer b.Kill()
	e.snapAddr = secondAddr // the replica follows the controller that will survive
	gw := e.startGateway("node-a")
	e.createGateway("default", "gw", "", 80)
	addr := e.gatewayAddress("default", "gw") + ":80"
	e.createRoute(route("default", "web", "default", "gw", "/", "web"))
	waitStatus(t, addr, "", "/", http.StatusOK)
	if e.leaseHolder() != "controller-a" {
		t.Fatalf("lease held by %q, want controller-a", e.leaseHolder())
	}

	killed := time.Now()
	a.Kill()
	waitFor(t, 20*time.Second, "controller-b takes the lease", func() bool { return e.leaseHolder() == "controller-b" })
	failover := time.Since(killed)
	t.Logf("leader failover after SIGKILL: %v", failover.Round(time.Millisecond))
	if failover > 10*time.Second {
		t.Errorf("failover took %v, want under 10 s", failover)
	}
	// The new leader writes status for a change made after the failover.
	e.createRoute(route("default", "broken", "default", "gw", "/broken", "missing"))
	e.waitRouteCondition("default", "broken", "gw", "ResolvedRefs", metav1.ConditionFalse, "BackendNotFound")
	waitStatus(t, addr, "", "/broken", http.StatusInternalServerError)
	if !gw.ready() {
		t.Error("replica unready after failover")
	}
}

// TestRouteChurnKeepsExistingRoute sends steady traffic to one route while 1,000 other
// routes are created and deleted, and requires every request to succeed.
func TestRouteChurnKeepsExistingRoute(t *testing.T) {
	e := newEnv(t)
	e.createClass()
	e.createApp("default", "web", 2)
	e.startController("controller-a")
	e.startGateway("node-a")
	e.createGateway("default", "gw", "", 80)
	addr := e.gatewayAddress("default", "gw") + ":80"
	e.createRoute(route("default", "stable", "default", "gw", "/stable", "web"))
	waitStatus(t, addr, "", "/stable", http.StatusOK)

	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var load sync.WaitGroup
	for w := 0; w < 4; w++ {
		load.Add(1)
		go func() {
			defer load.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, _, err := httpGet(client, addr, "", "/stable/x")
				sent.Add(1)
				if err != nil || code < 200 || code > 299 {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("status %d error %v", code, err))
				}
			}
		}()
	}
	const churn = 1000
	ctx := context.Background()
	forEach(t, churn, 8, func(i int) error {
		r := route("default", fmt.Sprintf("churn-%d", i), "default", "gw", fmt.Sprintf("/churn/%d", i), "web")
		return create(e.gw.GatewayV1().HTTPRoutes("default").Create(ctx, r, metav1.CreateOptions{}))
	})
	waitStatus(t, addr, "", fmt.Sprintf("/churn/%d", churn-1), http.StatusOK)
	forEach(t, churn, 8, func(i int) error {
		return e.gw.GatewayV1().HTTPRoutes("default").Delete(ctx, fmt.Sprintf("churn-%d", i), metav1.DeleteOptions{})
	})
	waitStatus(t, addr, "", fmt.Sprintf("/churn/%d", churn-1), http.StatusNotFound)
	close(stop)
	load.Wait()
	t.Logf("%d requests to the stable route during %d route creations and deletions, %d not 2xx", sent.Load(), churn, failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed during churn; first: %v", failed.Load(), sent.Load(), firstFailure.Load())
	}
	if sent.Load() < 100 {
		t.Errorf("only %d requests sent during churn; the check proves little", sent.Load())
	}
}

// forEach runs fn(0..n-1) on the given number of workers and fails the test on the
// first error.
func forEach(t testing.TB, n, workers int, fn func(i int) error) {
	t.Helper()
	var firstErr atomic.Value
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	if err := firstErr.Load(); err != nil {
		t.Fatal(err)
	}
}

// TestLeaderHandoverOnStop stops the leader gracefully: it releases the Lease on its
// way out, so the other controller leads at once rather than after the lease expires.
func TestLeaderHandoverOnStop(t *testing.T) {
	e := newEnv(t)
	e.createClass()
	a := e.startController("controller-a")
	waitFor(t, 30*time.Second, "controller-a leads", func() bool { return e.leaseHolder() == "controller-a" })
	start(t, e.binary, e.controllerArgs("controller-b", fmt.Sprintf("127.0.0.1:%d", freePort(t)))...)
	time.Sleep(time.Second) // let controller-b start campaigning
	stopped := time.Now()
	if !a.Stop(20 * time.Second) {
		t.Fatal("controller-a did not exit within 20 s of SIGTERM")
	}
	waitFor(t, 20*time.Second, "controller-b takes the lease", func() bool { return e.leaseHolder() == "controller-b" })
	handover := time.Since(stopped)
	t.Logf("leader handover after SIGTERM: %v", handover.Round(time.Millisecond))
	// A lease left to expire takes at least its 6 s duration; a release is far quicker.
	if handover > 4*time.Second {
		t.Errorf("handover took %v: the Lease was not released on stop", handover)
	}
}
