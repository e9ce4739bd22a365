package dataplane

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/mesh"
	"github.com/switchyard-dev/switchyard/internal/testtcp"
)

// The caller every mesh test sends from: a Pod of namespace shop at 127.0.0.1, the
// source address of connections to loopback.
var testCaller = mesh.Caller{Namespace: "shop", Name: "client-5d8-abcde", Workload: "client", ServiceAccount: "client"}

// meshBackends are the real loopback backends of the test mesh.
type meshBackends struct {
	web1, web2, pay, db, deadPay string
	// hits counts the requests each HTTP backend served, by its name.
	hits sync.Map
}

func (b *meshBackends) count(name string) int64 {
	v, ok := b.hits.Load(name)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

// startMeshBackends starts web v1 and v2, pay (behind a dead endpoint) and a TCP db
// that answers after the client half-closes.
func startMeshBackends(t *testing.T) *meshBackends {
	t.Helper()
	b := &meshBackends{}
	b.web1 = b.serveHTTP(t, "127.0.0.11", "web-v1")
	b.web2 = b.serveHTTP(t, "127.0.0.12", "web-v2")
	b.pay = b.serveHTTP(t, "127.0.0.13", "pay")
	b.db = testtcp.ReplyAfterEOF(t, "127.0.0.14:0")
	ln, err := net.Listen("tcp", "127.0.0.15:0")
	if err != nil {
		t.Fatal(err)
	}
	b.deadPay = ln.Addr().String()
	_ = ln.Close()
	return b
}

// serveHTTP runs an HTTP backend on ip that answers with its name, the Host and
// X-Forwarded-For it got, and counts its requests.
func (b *meshBackends) serveHTTP(t *testing.T, ip, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	hits := &atomic.Int64{}
	b.hits.Store(name, hits)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprintf(w, "%s host=%s path=%s xff=%s", name, r.Host, r.URL.Path, r.Header.Get("X-Forwarded-For"))
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func endpoint(addr string) config.Endpoint {
	return config.Endpoint{Address: addr, Ready: true, Serving: true}
}

// meshSnapshot is a node replica's snapshot: no listeners, web (a 9:1 split with a
// header canary) and db in namespace shop, pay in namespace billing with the default
// route a translator gives a Service without routes (retrying connect failures),
// and default outlier detection.
func meshSnapshot(b *meshBackends, version, routesVersion string) *config.Snapshot {
	return &config.Snapshot{
		SchemaVersion: config.SchemaVersion, Version: version, RoutesVersion: "no-listeners",
		Backends: []config.Backend{
			{Name: "shop/web-v1:80", Protocol: config.AppProtocolHTTP1, Endpoints: []config.Endpoint{endpoint(b.web1)}},
			{Name: "shop/web-v2:80", Protocol: config.AppProtocolHTTP1, Endpoints: []config.Endpoint{endpoint(b.web2)}},
		},
		Mesh: &config.Mesh{
			RoutesVersion: routesVersion,
			Services: []config.MeshService{
				{Namespace: "billing", Name: "pay", ClusterIPs: []string{"127.0.0.60"}, Ports: []config.MeshPort{{
					Port: 80, Backend: "billing/pay:80",
					Routes: []config.Route{{Name: "billing/pay", Rules: []config.Rule{{
						Backends: []config.BackendRef{{Backend: "billing/pay:80", Weight: 1}},
						Retry:    &config.Retry{Attempts: 2, On: []config.RetryCondition{config.RetryConnectFailure}},
					}}}},
				}}},
				{Namespace: "shop", Name: "db", Ports: []config.MeshPort{{Name: "pg", Port: 5432, Backend: "shop/db:5432"}}},
				{Namespace: "shop", Name: "web", ClusterIPs: []string{"127.0.0.50"}, Ports: []config.MeshPort{{
					Port: 80, Backend: "shop/web-v1:80",
					Routes: []config.Route{{Name: "shop/web-canary", Rules: []config.Rule{{
						Backends:    []config.BackendRef{{Backend: "shop/web-v1:80", Weight: 9}, {Backend: "shop/web-v2:80", Weight: 1}},
						HeaderRoute: &config.HeaderRoute{Headers: []config.Header{{Name: "X-Canary", Value: "always"}}, Backend: 1},
					}}}},
				}}},
			},
			Backends: []config.Backend{
				{Name: "billing/pay:80", Protocol: config.AppProtocolHTTP1, Endpoints: []config.Endpoint{endpoint(b.deadPay), endpoint(b.pay)}},
				{Name: "shop/db:5432", Protocol: config.AppProtocolHTTP1, Endpoints: []config.Endpoint{endpoint(b.db)}},
			},
			DefaultOutlierDetection: &config.OutlierDetection{ConsecutiveGatewayErrors: 1,
				BaseEjectionTime: config.Duration(time.Minute), MaxEjectionPercent: 50},
		},
	}
}

// testResolver answers egress lookups from a table, so that no test looks up a real
// name.
type testResolver map[string][]netip.Addr

func (r testResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if addrs, ok := r[host]; ok {
		return addrs, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// startNode starts a node engine on a free loopback port, serving the test caller,
// and applies snap.
func startNode(t *testing.T, snap *config.Snapshot, egress mesh.EgressOptions) *Engine {
	t.Helper()
	if egress.Resolver == nil {
		egress.Resolver = testResolver{}
	}
	e := New(Options{Logger: slog.New(slog.DiscardHandler), Node: &NodeOptions{
		Address: "127.0.0.1", Callers: mesh.StaticCallers{netip.MustParseAddr("127.0.0.1"): testCaller}, Egress: egress,
	}})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	if err := e.Apply(snap); err != nil {
		t.Fatal(err)
	}
	if !e.Ready() {
		t.Fatalf("node engine not ready: %v", e.BindErrors())
	}
	return e
}

// viaProxy returns a client that sends every request through the node socket in
// absolute form, as HTTP_PROXY makes clients do.
func viaProxy(t *testing.T, e *Engine) *http.Client {
	t.Helper()
	u, err := url.Parse("http://" + e.Addr(MeshListener))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{Proxy: http.ProxyURL(u)}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// fetch sends req and returns the status, X-Switchyard-Error and body.
func fetch(t *testing.T, c *http.Client, req *http.Request) (int, string, string) {
	t.Helper()
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("X-Switchyard-Error"), strings.TrimSpace(string(body))
}

func getVia(t *testing.T, c *http.Client, target string, header ...string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return fetch(t, c, req)
}

// rawRequest writes a raw HTTP/1.1 request to the node socket from source (the
// address to dial from, "" for the default) and reads the response head and body.
func rawRequest(t *testing.T, e *Engine, source, request string) (*http.Response, string) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if source != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(source)}
	}
	c, err := d.Dial("tcp", e.Addr(MeshListener))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, strings.TrimSpace(string(body))
}

// tunnel opens a CONNECT tunnel to target through the node socket from source.
func tunnel(t *testing.T, e *Engine, source, target string) (*net.TCPConn, *bufio.Reader, *http.Response) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if source != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(source)}
	}
	c, err := d.Dial("tcp", e.Addr(MeshListener))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		_ = c.Close()
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	if res.StatusCode != http.StatusOK {
		_ = c.Close()
		return nil, nil, res
	}
	return c.(*net.TCPConn), br, res
}

// waitForEdgeRequests returns the node's edge report once it counts n requests in
// all, or after 5 s. A request is counted when its handler has finished, which may
// be just after the client has read the response.
func waitForEdgeRequests(t *testing.T, e *Engine, n int64) mesh.EdgeReport {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		report := e.MeshEdges()
		var total int64
		for _, edge := range report.Edges {
			total += edge.Totals.Requests
		}
		if total >= n || time.Now().After(deadline) {
			return report
		}
		time.Sleep(10 * time.Millisecond)
	}
}
