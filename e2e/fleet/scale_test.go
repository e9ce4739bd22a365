package fleet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Scale of BenchmarkControllerScale: 5,000 routes over 250 Services with 80
// endpoints each (20,000 endpoints).
const (
	scaleRoutes           = 5000
	scaleServices         = 250
	scaleEndpointsPerSvc  = 80
	clockTicksPerSecond   = 100 // USER_HZ on Linux
	scaleCreateConcurrent = 16
)

// BenchmarkControllerScale loads the cluster with 5,000 HTTPRoutes and 20,000
// endpoints and reports what the controller process spent absorbing them (CPU
// seconds, peak and current resident memory), how long until the last route served,
// the bytes sent to a replica for one route change and for one endpoint change, and
// the controller CPU one route change costs (translation, push, status write; at the
// 10 ms resolution of /proc).
// Run: go test ./e2e/fleet -run '^$' -bench ControllerScale -benchtime 1x -timeout 30m
func BenchmarkControllerScale(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	e.createClass()
	args := e.controllerArgs("controller-a", e.snapAddr)
	ctrl := start(b, e.binary, append(args, "--log-level", "info")...)
	ctrlAdmin := "http://" + argValue(args, "--admin-addr")
	e.startGateway("node-a", "--log-level", "info")
	e.createGateway("default", "gw", "", 80)
	addr := e.gatewayAddress("default", "gw") + ":80"
	b.ResetTimer()

	forEach(b, scaleServices, scaleCreateConcurrent, func(i int) error { return e.createFakeService(i) })
	begin := time.Now()
	forEach(b, scaleRoutes, scaleCreateConcurrent, func(i int) error {
		r := route("default", fmt.Sprintf("r-%d", i), "default", "gw", fmt.Sprintf("/r/%d", i), fmt.Sprintf("svc-%d", i%scaleServices))
		return create(e.gw.GatewayV1().HTTPRoutes("default").Create(ctx, r, metav1.CreateOptions{}))
	})
	written := time.Since(begin)
	waitFor(b, 5*time.Minute, "last route served", func() bool {
		code, _, err := httpGet(client, addr, "", fmt.Sprintf("/r/%d", scaleRoutes-1))
		return err == nil && code != http.StatusNotFound
	})
	served := time.Since(begin)
	e.waitRouteCondition("default", fmt.Sprintf("r-%d", scaleRoutes-1), "gw", "Accepted", "True", "Accepted")
	statusDone := time.Since(begin)
	cpu, rss, hwm := processUsage(b, ctrl.Cmd.Process.Pid)

	time.Sleep(2 * time.Second) // let the last status writes finish before measuring one change
	cpuBefore, _, _ := processUsage(b, ctrl.Cmd.Process.Pid)
	before := replicaBytes(b, ctrlAdmin)
	e.createRoute(route("default", "one-more", "default", "gw", "/one-more", "svc-0"))
	waitFor(b, time.Minute, "one more route served", func() bool {
		code, _, err := httpGet(client, addr, "", "/one-more")
		return err == nil && code != http.StatusNotFound
	})
	e.waitRouteCondition("default", "one-more", "gw", "Accepted", "True", "Accepted")
	routeChange := replicaBytes(b, ctrlAdmin) - before
	cpuAfter, _, _ := processUsage(b, ctrl.Cmd.Process.Pid)

	before = replicaBytes(b, ctrlAdmin)
	slice, err := e.kube.DiscoveryV1().EndpointSlices("default").Get(ctx, "svc-0", metav1.GetOptions{})
	must(b, err)
	slice.Endpoints = slice.Endpoints[1:]
	_, err = e.kube.DiscoveryV1().EndpointSlices("default").Update(ctx, slice, metav1.UpdateOptions{})
	must(b, err)
	waitFor(b, time.Minute, "endpoint change sent", func() bool { return replicaBytes(b, ctrlAdmin) > before })
	time.Sleep(200 * time.Millisecond)
	endpointChange := replicaBytes(b, ctrlAdmin) - before
	b.StopTimer()

	b.ReportMetric(0, "ns/op")
	b.ReportMetric(written.Seconds(), "api-writes-s")
	b.ReportMetric(served.Seconds(), "last-route-served-s")
	b.ReportMetric(statusDone.Seconds(), "status-written-s")
	b.ReportMetric(cpu, "controller-cpu-s")
	b.ReportMetric(rss, "controller-rss-MiB")
	b.ReportMetric(hwm, "controller-peak-rss-MiB")
	b.ReportMetric(float64(routeChange), "bytes/route-change")
	b.ReportMetric((cpuAfter-cpuBefore)*1000, "controller-cpu-ms/route-change")
	b.ReportMetric(float64(endpointChange), "bytes/endpoint-change")
}

// createFakeService creates Service svc-i without a selector and an EndpointSlice
// listing scaleEndpointsPerSvc ready endpoints, as a large cluster would have.
func (e *env) createFakeService(i int) error {
	ctx := context.Background()
	name := fmt.Sprintf("svc-%d", i)
	_, err := e.kube.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(3000))}},
	}
	for j := 0; j < scaleEndpointsPerSvc; j++ {
		n := i*scaleEndpointsPerSvc + j
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{fmt.Sprintf("10.244.%d.%d", 100+n/250, 1+n%250)},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)},
		})
	}
	_, err = e.kube.DiscoveryV1().EndpointSlices("default").Create(ctx, slice, metav1.CreateOptions{})
	return err
}

// replicaBytes is the sum of bytes the controller has sent to all replicas.
func replicaBytes(b *testing.B, adminURL string) int64 {
	resp, err := http.Get(adminURL + "/api/v1/replicas")
	must(b, err)
	defer resp.Body.Close()
	var body struct {
		Replicas []struct{ BytesSent int64 }
	}
	must(b, json.NewDecoder(resp.Body).Decode(&body))
	var total int64
	for _, r := range body.Replicas {
		total += r.BytesSent
	}
	return total
}

// processUsage reads a process's CPU seconds (user+system) and its current and peak
// resident memory in MiB from /proc.
func processUsage(b *testing.B, pid int) (cpuSeconds, rssMiB, peakMiB float64) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	must(b, err)
	// Fields after the command name (which may hold spaces) start at ") ".
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	must(b, err)
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rssMiB = kb / 1024
		case "VmHWM:":
			peakMiB = kb / 1024
		}
	}
	return (utime + stime) / clockTicksPerSecond, rssMiB, peakMiB
}

// argValue returns the value following flag in args.
func argValue(args []string, flag string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			return args[i+1]
		}
	}
	return ""
}
