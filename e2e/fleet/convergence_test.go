package fleet_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// probe waits until one replica serves path (the route name is ns/name) and returns
// when it first did, or an error after the deadline.
type probe func(path, routeName string, deadline time.Time) (time.Time, error)

// httpProbe polls addr every millisecond until path answers 200.
func httpProbe(addr string) probe {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	return func(path, _ string, deadline time.Time) (time.Time, error) {
		for time.Now().Before(deadline) {
			if code, _, err := httpGet(client, addr, "", path); err == nil && code == http.StatusOK {
				return time.Now(), nil
			}
			time.Sleep(time.Millisecond)
		}
		return time.Time{}, fmt.Errorf("%s not served through %s", path, addr)
	}
}

// measureConvergence creates b.N HTTPRoutes one after another and, for each, measures
// the time from the start of the API write until every replica serves it. It reports
// the median and the 99th percentile (the maximum below 100 samples), and the median
// of the API write alone (the API server's share of the total).
func measureConvergence(b *testing.B, e *env, probes []probe) {
	ctx := context.Background()
	latencies := make([]time.Duration, 0, b.N)
	var apiCalls, firsts []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		path, name := fmt.Sprintf("/conv/%d", i), fmt.Sprintf("conv-%d", i)
		start := time.Now()
		if _, err := e.gw.GatewayV1().HTTPRoutes("default").Create(ctx, route("default", name, "default", "gw", path, "web"), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		apiCalls = append(apiCalls, time.Since(start))
		var wg sync.WaitGroup
		var mu sync.Mutex
		var first, last time.Time
		var failure error
		for _, p := range probes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				at, err := p(path, "default/"+name, start.Add(10*time.Second))
				mu.Lock()
				defer mu.Unlock()
				if err != nil && failure == nil {
					failure = err
				}
				if at.After(last) {
					last = at
				}
				if first.IsZero() || at.Before(first) {
					first = at
				}
			}()
		}
		wg.Wait()
		if failure != nil {
			b.Fatal(failure)
		}
		latencies = append(latencies, last.Sub(start))
		firsts = append(firsts, first.Sub(start))
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(percentileMs(latencies, 50), "p50-ms")
	b.ReportMetric(percentileMs(latencies, 99), "p99-ms")
	b.ReportMetric(percentileMs(apiCalls, 50), "api-write-p50-ms")
	if len(probes) > 1 {
		b.ReportMetric(percentileMs(firsts, 50), "first-replica-p50-ms")
	}
}

// percentileMs is the p-th percentile of d in milliseconds; with fewer than 100
// samples the 99th is the maximum.
func percentileMs(d []time.Duration, p int) float64 {
	sorted := append([]time.Duration(nil), d...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	i := len(sorted) * p / 100
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return float64(sorted[i].Microseconds()) / 1000
}

// BenchmarkConvergenceOneReplica measures new-route convergence through one gateway
// process. Run: go test ./e2e/fleet -run '^$' -bench ConvergenceOneReplica -benchtime 200x
func BenchmarkConvergenceOneReplica(b *testing.B) {
	e := newEnv(b)
	e.createClass()
	e.createApp("default", "web", 1)
	e.startController("controller-a")
	e.startGateway("node-a")
	e.createGateway("default", "gw", "", 80)
	addr := e.gatewayAddress("default", "gw") + ":80"
	measureConvergence(b, e, []probe{httpProbe(addr)})
}

// BenchmarkConvergenceFiftyReplicas measures new-route convergence through 50 edge
// replicas, each an agent plus data plane in this process connected to the controller
// process over TLS like any replica. Each replica serves the Gateway on a loopback
// address of its own (127.0.1.N). Polling 50 replicas over HTTP every millisecond
// would load this 2-core machine more than the replicas do, so a replica's time is
// when its data plane applied the snapshot with the route, confirmed by one request
// that must answer 200.
// Run: go test ./e2e/fleet -run '^$' -bench ConvergenceFiftyReplicas -benchtime 100x
func BenchmarkConvergenceFiftyReplicas(b *testing.B) {
	e := newEnv(b)
	e.createClass()
	e.createApp("default", "web", 1)
	e.startController("controller-a")
	e.createGateway("default", "gw", "", 80)
	e.gatewayAddress("default", "gw")
	const replicas = 50
	probes := make([]probe, replicas)
	for i := range probes {
		r := e.startInProcessReplica(fmt.Sprintf("node-%d", i), fmt.Sprintf("127.0.1.%d", i+1))
		probes[i] = r.probe
	}
	e.createRoute(route("default", "warmup", "default", "gw", "/warmup", "web"))
	for i := range probes {
		waitStatus(b, fmt.Sprintf("127.0.1.%d:80", i+1), "", "/warmup", http.StatusOK)
	}
	measureConvergence(b, e, probes)
}
