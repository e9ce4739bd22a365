package backend

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// shopBackends are two ports of the Service shop/web, a client-certificate variant
// of one, and another Service sharing an endpoint address.
func shopBackends(webEndpoints ...string) []config.Backend {
	return []config.Backend{
		{Name: "shop/web:80", Protocol: config.AppProtocolHTTP1, Endpoints: endpoints(webEndpoints...)},
		{Name: "shop/web:80#client=shop/cert", Protocol: config.AppProtocolHTTP1, Endpoints: endpoints(webEndpoints...)},
		{Name: "shop/web:9090", Protocol: config.AppProtocolHTTP1, Endpoints: endpoints("10.0.0.1:9090", "10.0.0.2:9090")},
		{Name: "shop/api:80", Protocol: config.AppProtocolHTTP1, Endpoints: endpoints("10.0.0.1:8080")},
	}
}

func picked(t *testing.T, p *Pool, n int) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, a := range pickN(t, p, n) {
		out[a]++
	}
	return out
}

func TestDrainTakesEndpointOutOfBalancing(t *testing.T) {
	m := NewManager(Options{})
	m.Update(shopBackends("10.0.0.1:8080", "10.0.0.2:8080"))
	got, err := m.SetDrained(EndpointSelector{Service: "shop/web", Address: "10.0.0.1:8080"}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []DrainedEndpoint{
		{Backend: "shop/web:80", Address: "10.0.0.1:8080", Drained: true, Available: 1},
		{Backend: "shop/web:80#client=shop/cert", Address: "10.0.0.1:8080", Drained: true, Available: 1},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("SetDrained = %+v, want %+v", got, want)
	}
	for _, name := range []string{"shop/web:80", "shop/web:80#client=shop/cert"} {
		if n := picked(t, m.Pool(name), 10); n["10.0.0.1:8080"] != 0 || n["10.0.0.2:8080"] != 10 {
			t.Errorf("%s picks after the drain: %v", name, n)
		}
	}
	// Another Service with the same address is not touched.
	if n := picked(t, m.Pool("shop/api:80"), 2); n["10.0.0.1:8080"] != 2 {
		t.Errorf("shop/api picks: %v", n)
	}

	// The drain outlives configuration versions that keep the endpoint.
	m.Update(shopBackends("10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"))
	if n := picked(t, m.Pool("shop/web:80"), 10); n["10.0.0.1:8080"] != 0 {
		t.Errorf("picks after an update: %v", n)
	}
	if !m.Pool("shop/web:80").Endpoints()[0].Endpoint.Drained() {
		t.Error("the endpoint does not report its drain")
	}

	got, err = m.SetDrained(EndpointSelector{Service: "shop/web", Port: 80, Address: "10.0.0.1:8080"}, false)
	if err != nil || len(got) != 2 || got[0].Drained || got[0].Available != 3 {
		t.Fatalf("undrain = %+v, %v", got, err)
	}
	if n := picked(t, m.Pool("shop/web:80"), 9); n["10.0.0.1:8080"] != 3 {
		t.Errorf("picks after the undrain: %v", n)
	}
}

func TestDrainIsForgottenWhenTheEndpointLeaves(t *testing.T) {
	m := NewManager(Options{})
	m.Update(shopBackends("10.0.0.1:8080", "10.0.0.2:8080"))
	if _, err := m.SetDrained(EndpointSelector{Service: "shop/web", Address: "10.0.0.1:8080"}, true); err != nil {
		t.Fatal(err)
	}
	// A change of zone keeps the drain: it follows the address.
	moved := shopBackends("10.0.0.1:8080", "10.0.0.2:8080")
	moved[0].Endpoints[0].Zone = "b"
	m.Update(moved)
	if !m.Pool("shop/web:80").Endpoints()[0].Endpoint.Drained() {
		t.Error("a change of zone lost the drain")
	}
	m.Update(shopBackends("10.0.0.2:8080"))
	m.Update(shopBackends("10.0.0.1:8080", "10.0.0.2:8080"))
	if n := picked(t, m.Pool("shop/web:80"), 4); n["10.0.0.1:8080"] != 2 {
		t.Errorf("an endpoint that left and came back is still drained: %v", n)
	}
}

func TestDrainSelectors(t *testing.T) {
	m := NewManager(Options{})
	m.Update(shopBackends("10.0.0.1:8080", "10.0.0.2:8080"))
	cases := []struct {
		name string
		sel  EndpointSelector
		want []string
		err  error
	}{
		{"bare IP, every port", EndpointSelector{Service: "shop/web", Address: "10.0.0.1"},
			[]string{"shop/web:80 10.0.0.1:8080", "shop/web:80#client=shop/cert 10.0.0.1:8080", "shop/web:9090 10.0.0.1:9090"}, nil},
		{"one port", EndpointSelector{Service: "shop/web", Port: 9090, Address: "10.0.0.2"},
			[]string{"shop/web:9090 10.0.0.2:9090"}, nil},
		{"unknown Service", EndpointSelector{Service: "shop/none", Address: "10.0.0.1"}, nil, ErrUnknownService},
		{"unknown port", EndpointSelector{Service: "shop/web", Port: 81, Address: "10.0.0.1"}, nil, ErrUnknownService},
		{"unknown address", EndpointSelector{Service: "shop/web", Address: "10.0.0.9:8080"}, nil, ErrUnknownEndpoint},
		{"wrong endpoint port", EndpointSelector{Service: "shop/web", Port: 9090, Address: "10.0.0.1:8080"}, nil, ErrUnknownEndpoint},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := m.SetDrained(tc.sel, true)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			var names []string
			for _, d := range got {
				names = append(names, d.Backend+" "+d.Address)
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("drained %v, want %v", names, tc.want)
			}
			if _, err := m.SetDrained(tc.sel, false); !errors.Is(err, tc.err) {
				t.Errorf("undrain error %v", err)
			}
		})
	}
	for _, bad := range []string{"", "web", "10.0.0.1:", "10.0.0.1:080", "10.0.0.1:70000", "host:80", "[::1", "::1]"} {
		if _, err := m.SetDrained(EndpointSelector{Service: "shop/web", Address: bad}, true); !errors.Is(err, ErrInvalidAddress) {
			t.Errorf("address %q: %v, want ErrInvalidAddress", bad, err)
		}
	}
}

func TestDrainIPv6Spellings(t *testing.T) {
	m := NewManager(Options{})
	m.Update([]config.Backend{{Name: "ns/v6:80", Protocol: config.AppProtocolHTTP1, Endpoints: endpoints("[fd00::1]:8080", "[fd00::2]:8080")}})
	for _, addr := range []string{"[fd00:0::1]:8080", "fd00::1", "[fd00::1]"} {
		got, err := m.SetDrained(EndpointSelector{Service: "ns/v6", Address: addr}, true)
		if err != nil || len(got) != 1 || got[0].Address != "[fd00::1]:8080" {
			t.Errorf("%s: %+v %v", addr, got, err)
		}
	}
}

func TestDrainingEveryEndpoint(t *testing.T) {
	m := NewManager(Options{})
	m.Update([]config.Backend{{Name: "ns/a:80", Protocol: config.AppProtocolHTTP1, Endpoints: []config.Endpoint{
		ep("10.0.0.1:80", true, true, false), ep("10.0.0.2:80", false, true, true),
	}}})
	// With the ready endpoint drained, the terminating one serves, as it would if
	// the ready one had gone.
	got, err := m.SetDrained(EndpointSelector{Service: "ns/a", Address: "10.0.0.1:80"}, true)
	if err != nil || got[0].Available != 1 {
		t.Fatalf("%+v %v", got, err)
	}
	if n := picked(t, m.Pool("ns/a:80"), 2); n["10.0.0.2:80"] != 2 {
		t.Errorf("picks: %v", n)
	}
	got, err = m.SetDrained(EndpointSelector{Service: "ns/a", Address: "10.0.0.2"}, true)
	if err != nil || got[0].Available != 0 {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := m.Pool("ns/a:80").Pick(); !errors.Is(err, ErrNoEndpoints) {
		t.Errorf("Pick with every endpoint drained: %v", err)
	}
}

func TestServiceOf(t *testing.T) {
	cases := map[string]struct {
		service string
		port    int
		ok      bool
	}{
		"shop/web:80":                  {"shop/web", 80, true},
		"shop/web:8443#client=ns/cert": {"shop/web", 8443, true},
		"b":                            {"", 0, false},
		"shop/web":                     {"", 0, false},
		"shop/web:0":                   {"", 0, false},
		"shop/web:http":                {"", 0, false},
		"/web:80":                      {"", 0, false},
		"a/b/c:80":                     {"", 0, false},
	}
	for name, want := range cases {
		service, port, ok := ServiceOf(name)
		if service != want.service || port != want.port || ok != want.ok {
			t.Errorf("ServiceOf(%q) = %q %d %v, want %+v", name, service, port, ok, want)
		}
	}
}

func TestSnapshotReportsState(t *testing.T) {
	m := NewManager(Options{})
	t.Cleanup(m.Close)
	breaker := &config.CircuitBreaker{MaxConnections: 1, MaxPendingRequests: 1, MaxRequests: 10}
	hc := &config.HealthCheck{Path: "/healthz", Interval: config.Duration(time.Hour), Timeout: config.Duration(time.Second),
		HealthyThreshold: 1, UnhealthyThreshold: 1}
	m.Update([]config.Backend{
		{Name: "ns/a:80", Protocol: config.AppProtocolH2C, Endpoints: endpoints("127.0.0.1:1", "127.0.0.1:2"),
			CircuitBreaker: breaker, OutlierDetection: &ejectAfterThree, HealthCheck: hc},
		{Name: "ns/b:80", Protocol: config.AppProtocolHTTP1},
	})
	p := m.Pool("ns/a:80")
	release, err := p.Breaker().Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	first := p.Endpoints()[0].Endpoint
	for range 3 {
		p.Report(first, OutcomeGatewayError)
	}
	first.InFlight.Add(2)
	if _, err := m.SetDrained(EndpointSelector{Service: "ns/a", Address: "127.0.0.1:2"}, true); err != nil {
		t.Fatal(err)
	}
	snap := m.Snapshot()
	if len(snap) != 2 || snap[0].Name != "ns/a:80" || snap[1].Name != "ns/b:80" {
		t.Fatalf("snapshot %+v", snap)
	}
	a := snap[0]
	if a.Protocol != config.AppProtocolH2C || a.TLS || a.CircuitBreaker == nil || *a.CircuitBreaker != *breaker ||
		a.OutlierDetection == nil || a.HealthCheck == nil || *a.HealthCheck != *hc {
		t.Errorf("settings %+v", a)
	}
	if a.Breaker.Requests != 1 || a.Breaker.ActiveConnections != 1 || a.Breaker.Pending != 0 {
		t.Errorf("breaker %+v", a.Breaker)
	}
	e0, e1 := a.Endpoints[0], a.Endpoints[1]
	if e0.EjectedUntil.IsZero() || e0.Ejections != 1 || e0.InFlight != 2 || e0.Drained || !e0.Ready {
		t.Errorf("first endpoint %+v", e0)
	}
	if !e1.Drained || !e1.EjectedUntil.IsZero() {
		t.Errorf("second endpoint %+v", e1)
	}
	if snap[1].CircuitBreaker != nil || snap[1].HealthCheck != nil || len(snap[1].Endpoints) != 0 {
		t.Errorf("plain backend %+v", snap[1])
	}
}

func TestConcurrentDrainUpdateAndPick(t *testing.T) {
	m := NewManager(Options{})
	m.Update(shopBackends("10.0.0.1:8080", "10.0.0.2:8080"))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := m.Pool("shop/web:80").Pick(); err != nil {
				t.Errorf("Pick: %v", err)
				return
			}
			_ = m.Snapshot()
		}
	})
	for i := range 200 {
		m.Update(shopBackends("10.0.0.1:8080", "10.0.0.2:8080"))
		if _, err := m.SetDrained(EndpointSelector{Service: "shop/web", Address: "10.0.0.1"}, i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}
