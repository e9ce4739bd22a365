package dataplane

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/router"
)

// withEndpoint returns a copy of snap whose backends point at addr, with a new
// Version and the same listeners (and RoutesVersion).
func withEndpoint(snap *config.Snapshot, version, addr string) *config.Snapshot {
	c := *snap
	c.Version = version
	c.Backends = []config.Backend{{
		Name: snap.Backends[0].Name, Protocol: snap.Backends[0].Protocol,
		Endpoints: []config.Endpoint{{Address: addr, Ready: true, Serving: true}},
	}}
	return &c
}

// servingTable returns the route table the engine serves for the test listener.
func servingTable(t *testing.T, e *Engine) *router.Table {
	t.Helper()
	gen := e.current.Load()
	if gen == nil || gen.routes.listeners["127.0.0.1:0"] == nil {
		t.Fatal("no listener is being served")
	}
	return gen.routes.listeners["127.0.0.1:0"].table
}

func newTestEngine(t *testing.T) *Engine {
	t.Helper()
	e := New(Options{})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	return e
}

func mustApply(t *testing.T, e *Engine, snap *config.Snapshot) {
	t.Helper()
	if err := e.Apply(snap); err != nil {
		t.Fatal(err)
	}
	if errs := e.BindErrors(); len(errs) > 0 {
		t.Fatalf("bind errors: %v", errs)
	}
}

func expectBody(t *testing.T, url, want string) {
	t.Helper()
	if code, body := get(t, url); code != http.StatusOK || body != want {
		t.Fatalf("GET %s: got %d %q, want 200 %q", url, code, body, want)
	}
}

func TestEndpointChurnKeepsTheRouteTable(t *testing.T) {
	e := newTestEngine(t)
	a := snapshotFor("a", startBackend(t, "first"))
	a.RoutesVersion = "routes-1"
	mustApply(t, e, a)
	url := "http://" + e.Addr("127.0.0.1:0") + "/"
	expectBody(t, url, "first")
	table := servingTable(t, e)
	if got := e.compilations.Load(); got != 1 {
		t.Fatalf("%d compilations after the first snapshot, want 1", got)
	}

	second := startBackend(t, "second")
	mustApply(t, e, withEndpoint(a, "a2", second))
	expectBody(t, url, "second")
	if got := e.compilations.Load(); got != 1 {
		t.Errorf("%d compilations after an endpoint change, want still 1", got)
	}
	if servingTable(t, e) != table {
		t.Error("the route table was replaced although only endpoints changed")
	}
	snap, _ := e.Snapshot()
	if snap.Version != "a2" || snap.Backends[0].Endpoints[0].Address != second || len(snap.Listeners) != 1 {
		t.Errorf("serving snapshot %s with backends %+v and %d listeners, want a2 with %s and 1",
			snap.Version, snap.Backends, len(snap.Listeners), second)
	}

	// A route change under a new RoutesVersion is compiled and takes effect.
	b := withEndpoint(a, "b", startBackend(t, "third"))
	b.RoutesVersion = "routes-2"
	b.Listeners = []config.Listener{a.Listeners[0]}
	b.Listeners[0].VirtualHosts = []config.VirtualHost{a.Listeners[0].VirtualHosts[0]}
	b.Listeners[0].VirtualHosts[0].Routes = []config.Route{a.Listeners[0].VirtualHosts[0].Routes[0]}
	b.Listeners[0].VirtualHosts[0].Routes[0].Rules = []config.Rule{{
		Matches:  []config.Match{{Path: &config.PathMatch{Type: config.PathPrefix, Value: "/only"}}},
		Backends: a.Listeners[0].VirtualHosts[0].Routes[0].Rules[0].Backends,
	}}
	mustApply(t, e, b)
	if got := e.compilations.Load(); got != 2 {
		t.Errorf("%d compilations after a route change, want 2", got)
	}
	if servingTable(t, e) == table {
		t.Error("the route table was kept although the routes changed")
	}
	if code, _ := get(t, url); code != http.StatusNotFound {
		t.Errorf("GET / after the route change: got %d, want 404", code)
	}
	expectBody(t, url+"only", "third")
}

// Without a RoutesVersion nothing says the listeners are unchanged: every snapshot is
// compiled, and the new endpoints serve all the same.
func TestSnapshotsWithoutRoutesVersionAreCompiled(t *testing.T) {
	e := newTestEngine(t)
	a := snapshotFor("a", startBackend(t, "first"))
	a.SchemaVersion = config.SchemaVersion - 1
	mustApply(t, e, a)
	url := "http://" + e.Addr("127.0.0.1:0") + "/"
	table := servingTable(t, e)

	mustApply(t, e, withEndpoint(a, "a2", startBackend(t, "second")))
	expectBody(t, url, "second")
	if servingTable(t, e) == table || e.compilations.Load() != 2 {
		t.Errorf("a snapshot without RoutesVersion reused the route table (%d compilations)", e.compilations.Load())
	}

	// Nor does a RoutesVersion match a snapshot that had none.
	b := withEndpoint(a, "b", startBackend(t, "third"))
	b.SchemaVersion, b.RoutesVersion = config.SchemaVersion, "routes-1"
	mustApply(t, e, b)
	mustApply(t, e, withEndpoint(b, "b2", startBackend(t, "fourth")))
	expectBody(t, url, "fourth")
	if got := e.compilations.Load(); got != 3 {
		t.Errorf("%d compilations, want 3: one for the first snapshot with a RoutesVersion only", got)
	}
}

// A snapshot with unchanged routes is still validated as a whole: one whose backends
// no longer include a referenced backend is refused, and the serving one stays.
func TestEndpointChurnIsValidated(t *testing.T) {
	e := newTestEngine(t)
	a := snapshotFor("a", startBackend(t, "first"))
	a.RoutesVersion = "routes-1"
	mustApply(t, e, a)
	bad := withEndpoint(a, "bad", startBackend(t, "never"))
	bad.Backends[0].Name = "default/other:80"
	if err := e.Apply(bad); err == nil {
		t.Fatal("a snapshot whose routes name a missing backend was accepted")
	}
	expectBody(t, "http://"+e.Addr("127.0.0.1:0")+"/", "first")
	if snap, _ := e.Snapshot(); snap.Version != "a" {
		t.Errorf("serving version %q after a refused snapshot, want a", snap.Version)
	}
}

// A request in flight to an endpoint that an endpoint-only update removes completes
// normally; requests after the update go to the new endpoint.
func TestInFlightRequestSurvivesEndpointChurn(t *testing.T) {
	e := newTestEngine(t)
	arrived, release := make(chan struct{}), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		fmt.Fprint(w, "slow")
	}))
	t.Cleanup(slow.Close)
	a := snapshotFor("a", slow.Listener.Addr().String())
	a.RoutesVersion = "routes-1"
	mustApply(t, e, a)
	url := "http://" + e.Addr("127.0.0.1:0") + "/"

	type result struct {
		code int
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{code: resp.StatusCode, body: string(b), err: err}
	}()
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the first request never reached the backend")
	}
	mustApply(t, e, withEndpoint(a, "a2", startBackend(t, "fast")))
	expectBody(t, url, "fast")
	close(release)
	select {
	case r := <-done:
		if r.err != nil || r.code != http.StatusOK || r.body != "slow" {
			t.Fatalf("in-flight request: got %d %q (%v), want 200 slow", r.code, r.body, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the in-flight request did not complete")
	}
}
