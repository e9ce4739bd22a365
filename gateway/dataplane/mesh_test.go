package dataplane

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/mesh"
	"github.com/switchyard-dev/switchyard/gateway/observe"
)

func TestNodeServesServicesByEveryName(t *testing.T) {
	b := startMeshBackends(t)
	e := startNode(t, meshSnapshot(b, "v1", "r1"), mesh.EgressOptions{})
	client := viaProxy(t, e)
	for _, target := range []string{
		"http://pay.billing/a", "http://pay.billing.svc/a", "http://PAY.billing.svc.cluster.local./a",
		"http://pay.billing:80/a", "http://127.0.0.60/a",
	} {
		status, reason, body := getVia(t, client, target)
		if status != 200 || !strings.HasPrefix(body, "pay host=") || !strings.HasSuffix(body, "path=/a xff=127.0.0.1") {
			t.Errorf("%s: %d %s %q", target, status, reason, body)
		}
	}
	// A bare name is a Service of the caller's namespace (shop): web is, pay is not.
	if status, _, body := getVia(t, client, "http://web/x", "X-Canary", "always"); status != 200 || !strings.HasPrefix(body, "web-v2 host=web path=/x") {
		t.Errorf("bare web: %d %q", status, body)
	}
	if status, reason, body := getVia(t, client, "http://pay/"); status == 200 || reason != "upstream-error" {
		t.Errorf("bare pay from namespace shop: %d %s %q, want the egress lookup of an unknown name to fail", status, reason, body)
	}
	// Origin-form requests name the destination in the Host header.
	res, body := rawRequest(t, e, "", "GET /b HTTP/1.1\r\nHost: pay.billing.svc:80\r\nConnection: close\r\n\r\n")
	if res.StatusCode != 200 || body != "pay host=pay.billing.svc:80 path=/b xff=127.0.0.1" {
		t.Errorf("origin-form: %d %q", res.StatusCode, body)
	}
	res, body = rawRequest(t, e, "", "GET / HTTP/1.1\r\nHost: web.shop:8080\r\nConnection: close\r\n\r\n")
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("a port the Service lacks: %d %q", res.StatusCode, body)
	}
}

func TestNodeSplitsByWeightAndHeader(t *testing.T) {
	b := startMeshBackends(t)
	e := startNode(t, meshSnapshot(b, "v1", "r1"), mesh.EgressOptions{})
	client := viaProxy(t, e)
	const requests = 400
	for range requests {
		if status, _, body := getVia(t, client, "http://web.shop/"); status != 200 {
			t.Fatalf("%d %q", status, body)
		}
	}
	// A 9:1 split over 400 requests sends 40 to v2 on average; 10 to 90 allows for
	// chance by a wide margin.
	v2 := b.count("web-v2")
	if v2 < 10 || v2 > 90 || b.count("web-v1")+v2 != requests {
		t.Errorf("v1 got %d, v2 %d of %d requests; want about 9:1", b.count("web-v1"), v2, requests)
	}
	for range 20 {
		if _, _, body := getVia(t, client, "http://web.shop/", "X-Canary", "always"); !strings.HasPrefix(body, "web-v2") {
			t.Fatalf("a canary request reached %q", body)
		}
	}
}

func TestNodeRetriesConnectFailuresAndEjects(t *testing.T) {
	b := startMeshBackends(t)
	e := startNode(t, meshSnapshot(b, "v1", "r1"), mesh.EgressOptions{})
	client := viaProxy(t, e)
	for i := range 10 {
		if status, reason, body := getVia(t, client, "http://pay.billing/"); status != 200 {
			t.Fatalf("request %d: %d %s %q", i, status, reason, body)
		}
	}
	pool := e.backends.Pool("billing/pay:80")
	for _, es := range pool.Endpoints() {
		if es.Endpoint.Address == b.deadPay && (es.Endpoint.Requests.Load() != 1 || !es.Endpoint.Ejected()) {
			t.Errorf("dead endpoint tried %d times, ejected %v: want once, then ejected by the default outlier detection",
				es.Endpoint.Requests.Load(), es.Endpoint.Ejected())
		}
	}
	if b.count("pay") != 10 {
		t.Errorf("pay served %d requests, want 10", b.count("pay"))
	}
}

func TestNodeTunnelsConnectToAService(t *testing.T) {
	b := startMeshBackends(t)
	e := startNode(t, meshSnapshot(b, "v1", "r1"), mesh.EgressOptions{})
	for _, target := range []string{"db:5432", "db.shop.svc.cluster.local:5432"} {
		c, br, res := tunnel(t, e, "", target)
		if c == nil {
			t.Fatalf("CONNECT %s: %d", target, res.StatusCode)
		}
		// The client half-closes; the db answers only then, and closes: the answer
		// comes back only if the tunnel passes each end of stream on.
		if _, err := io.WriteString(c, "select 1"); err != nil {
			t.Fatal(err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(br)
		_ = c.Close()
		if err != nil || string(got) != "got:select 1" {
			t.Fatalf("CONNECT %s carried %q, %v", target, got, err)
		}
	}
	if c, _, res := tunnel(t, e, "", "db.shop:5433"); c != nil || res.StatusCode != http.StatusNotFound {
		t.Errorf("CONNECT to a port the Service lacks: %d", res.StatusCode)
	}
	if c, _, res := tunnel(t, e, "", "db.shop"); c != nil || res.StatusCode != http.StatusBadRequest {
		t.Errorf("CONNECT without a port: %d", res.StatusCode)
	}
}

func TestNodeTunnelsPassOnTheUpstreamsHalfClose(t *testing.T) {
	// The server speaks first and half-closes; the client answers after reading to
	// the end, and the server reads the answer: the tunnel must keep the client's
	// direction open after the server's has ended.
	ln, err := net.Listen("tcp", "127.0.0.16:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	heard := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			heard <- err.Error()
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(c, "hello")
		_ = c.(*net.TCPConn).CloseWrite()
		got, _ := io.ReadAll(c)
		heard <- string(got)
	}()
	b := startMeshBackends(t)
	snap := meshSnapshot(b, "v1", "r1")
	snap.Mesh.Services = append(snap.Mesh.Services, config.MeshService{Namespace: "shop", Name: "greeter",
		Ports: []config.MeshPort{{Port: 7000, Backend: "shop/greeter:7000"}}})
	snap.Mesh.Backends = append(snap.Mesh.Backends, config.Backend{Name: "shop/greeter:7000", Protocol: config.AppProtocolHTTP1,
		Endpoints: []config.Endpoint{endpoint(ln.Addr().String())}})
	e := startNode(t, snap, mesh.EgressOptions{})
	c, br, res := tunnel(t, e, "", "greeter:7000")
	if c == nil {
		t.Fatalf("CONNECT: %d", res.StatusCode)
	}
	defer c.Close()
	greeting, err := io.ReadAll(br)
	if err != nil || string(greeting) != "hello" {
		t.Fatalf("greeting %q, %v", greeting, err)
	}
	if _, err := io.WriteString(c, "bye"); err != nil {
		t.Fatalf("writing after the server's end of stream: %v", err)
	}
	_ = c.CloseWrite()
	select {
	case got := <-heard:
		if got != "bye" {
			t.Fatalf("the server heard %q, want bye", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server heard nothing")
	}
}

func TestNodeRefusesUnknownCallers(t *testing.T) {
	b := startMeshBackends(t)
	e := startNode(t, meshSnapshot(b, "v1", "r1"), mesh.EgressOptions{})
	res, body := rawRequest(t, e, "127.0.0.9", "GET http://pay.billing/ HTTP/1.1\r\nHost: pay.billing\r\nConnection: close\r\n\r\n")
	if res.StatusCode != http.StatusForbidden || res.Header.Get("X-Switchyard-Error") != "unknown-caller" {
		t.Errorf("absolute-form from an unknown address: %d %q", res.StatusCode, body)
	}
	if c, _, res := tunnel(t, e, "127.0.0.9", "db.shop:5432"); c != nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("CONNECT from an unknown address: %d", res.StatusCode)
	}
	if c, _, res := tunnel(t, e, "127.0.0.9", "example.com:443"); c != nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("egress CONNECT from an unknown address: %d", res.StatusCode)
	}
	if b.count("pay") != 0 {
		t.Errorf("an unknown caller's request reached the backend")
	}
	for _, edge := range e.MeshEdges().Edges {
		t.Errorf("a refused request was counted on edge %+v", edge.EdgeKey)
	}
}

func TestNodeEgressNeverReachesForbiddenAddresses(t *testing.T) {
	b := startMeshBackends(t)
	loop := netip.MustParseAddr("127.0.0.11")
	resolver := testResolver{
		"localhost":            {netip.MustParseAddr("127.0.0.1")},
		"web.example.test":     {loop},
		"metadata.internal":    {netip.MustParseAddr("169.254.169.254")},
		"node.example.test":    {netip.MustParseAddr("192.0.2.10")},
		"unlisted.example.org": {netip.MustParseAddr("203.0.113.5")},
	}
	allow, err := mesh.ParseAllowList([]string{"localhost", "*.example.test", "metadata.internal", "10.96.0.0/12"})
	if err != nil {
		t.Fatal(err)
	}
	e := startNode(t, meshSnapshot(b, "v1", "r1"), mesh.EgressOptions{Allow: allow, Resolver: resolver,
		NodeAddresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")},
		ServiceCIDRs:  []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")}})
	client := viaProxy(t, e)
	_, webPort, _ := net.SplitHostPort(b.web1)
	for _, target := range []string{
		"http://localhost:" + webPort + "/", "http://web.example.test:" + webPort + "/", "http://127.0.0.11:" + webPort + "/",
		"http://metadata.internal/latest/", "http://169.254.169.254/", "http://[fe80::1]/", "http://node.example.test/",
		"http://10.96.0.77/", "http://unlisted.example.org/",
	} {
		status, reason, body := getVia(t, client, target)
		if status != http.StatusForbidden || reason != "egress-denied" {
			t.Errorf("%s: %d %s %q, want 403 egress-denied", target, status, reason, body)
		}
	}
	// The node socket itself is a node address: a request to it is not looped back.
	res, body := rawRequest(t, e, "", "GET / HTTP/1.1\r\nHost: "+e.Addr(MeshListener)+"\r\nConnection: close\r\n\r\n")
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("a request to the node socket itself: %d %q", res.StatusCode, body)
	}
	if c, _, res := tunnel(t, e, "", "metadata.internal:80"); c != nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("CONNECT to a link-local address: %d", res.StatusCode)
	}
	if b.count("web-v1") != 0 {
		t.Error("egress reached a loopback backend")
	}
	edges := waitForEdgeRequests(t, e, 11)
	var egress int64
	for _, edge := range edges.Edges {
		if edge.Egress != "" {
			egress += edge.Totals.Requests
		}
	}
	if egress != 11 {
		t.Errorf("%d egress requests counted, want 11: %+v", egress, edges)
	}
}

func TestNodeCountsEdgesAndLogsCallers(t *testing.T) {
	b := startMeshBackends(t)
	var log bytes.Buffer
	accessLog := observe.NewAccessLog(&log, nil, 1)
	reg := prometheus.NewRegistry()
	obs, err := observe.New(observe.Options{AccessLog: accessLog, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	e := New(Options{Observer: obs, Node: &NodeOptions{Address: "127.0.0.1",
		Callers: mesh.StaticCallers{netip.MustParseAddr("127.0.0.1"): testCaller}, Egress: mesh.EgressOptions{Resolver: testResolver{}}}})
	t.Cleanup(func() { _ = e.Shutdown(t.Context()) })
	// Two compilations: the second must keep the node socket's metrics in use.
	for _, routes := range []string{"r1", "r2"} {
		if err := e.Apply(meshSnapshot(b, "v-"+routes, routes)); err != nil {
			t.Fatal(err)
		}
	}
	client := viaProxy(t, e)
	for range 3 {
		getVia(t, client, "http://web.shop/")
	}
	getVia(t, client, "http://unknown.example/")
	getVia(t, client, "http://pay.billing/")
	if c, br, _ := tunnel(t, e, "", "db.shop:5432"); c != nil {
		_ = c.CloseWrite()
		_, _ = io.ReadAll(br)
		_ = c.Close()
	}
	want := map[string]int64{"shop/client -> billing/pay": 1, "shop/client -> shop/db": 1, "shop/client -> shop/web": 3,
		"shop/client -> unknown.example": 1}
	report := waitForEdgeRequests(t, e, 6)
	if len(report.Edges) != len(want) {
		t.Fatalf("edges %+v", report.Edges)
	}
	for _, edge := range report.Edges {
		key := edge.Caller() + " -> " + edge.Callee()
		wantErrors := int64(0)
		if edge.Egress != "" {
			wantErrors = 1 // the name does not resolve: 502
		}
		if edge.Totals.Requests != want[key] || edge.Totals.Errors != wantErrors {
			t.Errorf("%s: %+v, want %d requests, %d errors", key, edge.Totals, want[key], wantErrors)
		}
	}
	metrics := gatherMetrics(t, reg)
	if got := metrics[`switchyard_requests_total{backend="shop/web-v1:80"|route="shop/web-canary"}`] +
		metrics[`switchyard_requests_total{backend="shop/web-v2:80"|route="shop/web-canary"}`]; got != 3 {
		t.Errorf("requests of the mesh route in the metrics: %v, want 3 (%v)", got, metrics)
	}
	if _, ok := metrics[`switchyard_requests_in_flight{listener="mesh"}`]; !ok {
		t.Error("the node socket's in-flight gauge is not exported")
	}
	if v, ok := metrics[`switchyard_unmatched_requests_total{listener="mesh"|reason="no-route"}`]; !ok || v != 0 {
		t.Errorf("unmatched requests of the node socket: %v (exported %v), want 0: egress takes no route by design", v, ok)
	}
	if err := accessLog.Flush(); err != nil {
		t.Fatal(err)
	}
	var line struct {
		Route          string `json:"route"`
		Listener       string `json:"listener"`
		CallerPod      string `json:"caller_pod"`
		CallerWorkload string `json:"caller_workload"`
	}
	first, _, _ := strings.Cut(log.String(), "\n")
	if err := json.Unmarshal([]byte(first), &line); err != nil {
		t.Fatalf("access log %q: %v", log.String(), err)
	}
	if line.Route != "shop/web-canary" || line.Listener != MeshListener || line.CallerPod != testCaller.Name || line.CallerWorkload != "client" {
		t.Errorf("access log line %+v", line)
	}
}

// gatherMetrics returns every sample of reg by name and labels (without the code
// class), summed over the rest.
func gatherMetrics(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	return gatherSamples(t, reg, "code")
}

// gatherSamples returns the counters and gauges of reg by name and labels, but the
// label named drop, summed over the rest, and the sample counts of its histograms
// under the name and labels with "_count" after them.
func gatherSamples(t *testing.T, reg *prometheus.Registry, drop string) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				if l.GetName() != drop {
					labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
			}
			key := f.GetName() + "{" + strings.Join(labels, "|") + "}"
			switch {
			case m.GetCounter() != nil:
				out[key] += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				out[key+"_count"] += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func TestNodeKeepsTheCompiledMeshWhileOnlyEndpointsChange(t *testing.T) {
	b := startMeshBackends(t)
	e := startNode(t, meshSnapshot(b, "v1", "r1"), mesh.EgressOptions{})
	compiled := e.RouteCompilations()
	client := viaProxy(t, e)

	// The pay endpoints move to web v2's address: no compilation, new endpoints.
	moved := meshSnapshot(b, "v2", "r1")
	moved.Mesh.Backends[0].Endpoints = []config.Endpoint{endpoint(b.web2)}
	if err := e.Apply(moved); err != nil {
		t.Fatal(err)
	}
	if e.RouteCompilations() != compiled {
		t.Error("an endpoint change recompiled the mesh")
	}
	if _, _, body := getVia(t, client, "http://pay.billing/"); !strings.HasPrefix(body, "web-v2") {
		t.Errorf("after the endpoint change pay answered %q", body)
	}
	// A mesh whose routes refer to a backend it lacks is refused, on either path.
	broken := meshSnapshot(b, "v3", "r1")
	broken.Mesh.Backends = broken.Mesh.Backends[1:]
	if err := e.Apply(broken); err == nil || !strings.Contains(err.Error(), "billing/pay:80") {
		t.Errorf("a snapshot without a backend the mesh uses: %v", err)
	}
	broken.Mesh.RoutesVersion = "r3"
	if err := e.Apply(broken); err == nil {
		t.Error("a new mesh without a backend it uses was accepted")
	}
	if snap, _ := e.Snapshot(); snap.Version != "v2" {
		t.Fatalf("serving %s after refused snapshots", snap.Version)
	}
	// New routes: compiled once.
	rerouted := meshSnapshot(b, "v4", "r4")
	rerouted.Mesh.Services[0].Ports[0].Routes[0].Rules[0].Backends[0].Backend = "shop/web-v1:80"
	if err := e.Apply(rerouted); err != nil {
		t.Fatal(err)
	}
	if e.RouteCompilations() != compiled+1 {
		t.Errorf("%d compilations after a route change, want %d", e.RouteCompilations(), compiled+1)
	}
	if _, _, body := getVia(t, client, "http://pay.billing/"); !strings.HasPrefix(body, "web-v1") {
		t.Errorf("after the route change pay answered %q", body)
	}
}

func TestEdgeEngineIgnoresTheMesh(t *testing.T) {
	b := startMeshBackends(t)
	snap := snapshotFor("edge", b.web1)
	// The mesh is grafted on whole: the backends its ports name come with it, as
	// mesh-only backends.
	node := meshSnapshot(b, "v1", "r1")
	mesh := *node.Mesh
	mesh.Backends = append(slices.Clone(node.Backends), mesh.Backends...)
	snap.Mesh = &mesh
	e := New(Options{})
	t.Cleanup(func() { _ = e.Shutdown(t.Context()) })
	if err := e.Apply(snap); err != nil {
		t.Fatal(err)
	}
	if e.Addr(MeshListener) != "" || e.MeshHandler() != nil || len(e.MeshEdges().Edges) != 0 {
		t.Error("an edge engine serves the mesh")
	}
	if e.backends.Pool("billing/pay:80") != nil {
		t.Error("an edge engine took the mesh's backends")
	}
	pool := e.backends.Pool("default/b:80")
	ep := pool.Endpoints()[0].Endpoint
	for range 3 {
		pool.Report(ep, 2)
	}
	if ep.Ejected() {
		t.Error("the mesh's default outlier detection applied on an edge engine")
	}
	if code, body := get(t, "http://"+e.Addr("127.0.0.1:0")+"/"); code != 200 || !strings.HasPrefix(body, "web-v1") {
		t.Errorf("edge listener: %d %q", code, body)
	}
}

func TestNodeWithoutSnapshotServesNothing(t *testing.T) {
	e := New(Options{Node: &NodeOptions{Address: "127.0.0.1"}})
	t.Cleanup(func() { _ = e.Shutdown(t.Context()) })
	if e.Ready() || e.Addr(MeshListener) != "" {
		t.Fatal("the node socket is bound before any snapshot")
	}
	// The handler itself refuses everyone when no callers are known.
	w := &discardWriter{header: http.Header{}}
	r, _ := http.NewRequest(http.MethodGet, "http://web.shop/", nil)
	r.RemoteAddr = "127.0.0.1:1234"
	e.MeshHandler().ServeHTTP(w, r)
	if w.status != http.StatusForbidden {
		t.Errorf("status %d, want 403", w.status)
	}
}

func TestNodeTunnelsHTTP2Connect(t *testing.T) {
	b := startMeshBackends(t)
	e := startNode(t, meshSnapshot(b, "v1", "r1"), mesh.EgressOptions{})
	// A client with prior knowledge of HTTP/2 (h2c), as gRPC clients speak it: its
	// CONNECT is a stream, the request body one way and the response body the other.
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	node := e.Addr(MeshListener)
	tr := &http.Transport{Protocols: protocols, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", node)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	body, send := io.Pipe()
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Scheme: "http", Host: "db.shop:5432"}, Host: "db.shop:5432",
		Header: http.Header{}, Body: body}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := tr.RoundTrip(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.ProtoMajor != 2 {
		t.Fatalf("CONNECT answered %d over %s", res.StatusCode, res.Proto)
	}
	if _, err := io.WriteString(send, "select 2"); err != nil {
		t.Fatal(err)
	}
	_ = send.Close()
	got, err := io.ReadAll(res.Body)
	if err != nil || string(got) != "got:select 2" {
		t.Fatalf("the HTTP/2 tunnel carried %q, %v", got, err)
	}
}
