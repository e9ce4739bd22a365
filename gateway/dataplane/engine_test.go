package dataplane

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// snapshotFor serves one catch-all route on an ephemeral loopback port, forwarding to
// backendAddr, and tags responses by way of the backend's reply.
func snapshotFor(version, backendAddr string) *config.Snapshot {
	return &config.Snapshot{
		SchemaVersion: config.SchemaVersion,
		Version:       version,
		Listeners: []config.Listener{{
			Name: "127.0.0.1:0", Address: "127.0.0.1", Port: 0, Protocol: config.ProtocolHTTP,
			VirtualHosts: []config.VirtualHost{{
				Name: "default/gw/http",
				Routes: []config.Route{{
					Name:  "default/r",
					Rules: []config.Rule{{Backends: []config.BackendRef{{Backend: "default/b:80", Weight: 1}}}},
				}},
			}},
		}},
		Backends: []config.Backend{{
			Name: "default/b:80", Protocol: config.AppProtocolHTTP1,
			Endpoints: []config.Endpoint{{Address: backendAddr, Ready: true, Serving: true}},
		}},
	}
}

func startBackend(t *testing.T, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestApplySwapsAndRejectsInvalidSnapshots(t *testing.T) {
	e := New(Options{})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	if e.Ready() {
		t.Fatal("ready before any configuration")
	}
	if err := e.Apply(snapshotFor("one", startBackend(t, "first"))); err != nil {
		t.Fatal(err)
	}
	if !e.Ready() {
		t.Fatalf("not ready after a good apply (bind errors %v)", e.BindErrors())
	}
	addr := e.Addr("127.0.0.1:0")
	if _, _, err := net.SplitHostPort(addr); err != nil {
		t.Fatalf("listener address %q: %v", addr, err)
	}
	url := "http://" + addr + "/"
	if code, body := get(t, url); code != 200 || body != "first" {
		t.Fatalf("got %d %q, want 200 first", code, body)
	}

	bad := snapshotFor("bad", startBackend(t, "never"))
	bad.Listeners[0].VirtualHosts[0].Routes[0].Rules[0].Matches = []config.Match{{
		Path: &config.PathMatch{Type: config.PathRegularExpression, Value: "(unclosed"},
	}}
	if err := e.Apply(bad); err == nil {
		t.Fatal("a snapshot with an invalid regex was accepted")
	}
	if snap, _ := e.Snapshot(); snap.Version != "one" {
		t.Fatalf("serving version %q after a rejected apply, want one", snap.Version)
	}
	if code, body := get(t, url); code != 200 || body != "first" {
		t.Fatalf("after rejected apply got %d %q, want 200 first", code, body)
	}

	if err := e.Apply(snapshotFor("two", startBackend(t, "second"))); err != nil {
		t.Fatal(err)
	}
	if e.Addr("127.0.0.1:0") != addr {
		t.Fatalf("socket was rebound: %s then %s", addr, e.Addr("127.0.0.1:0"))
	}
	if code, body := get(t, url); code != 200 || body != "second" {
		t.Fatalf("after swap got %d %q, want 200 second", code, body)
	}
	e.SetDraining(true)
	if e.Ready() {
		t.Fatal("ready while draining")
	}
}

func TestUnknownHostAndPathAnswer404(t *testing.T) {
	e := New(Options{})
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	snap := snapshotFor("one", startBackend(t, "x"))
	snap.Listeners[0].VirtualHosts[0].Hostname = "only.example.com"
	if err := e.Apply(snap); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, "http://"+e.Addr("127.0.0.1:0")+"/"); code != http.StatusNotFound {
		t.Fatalf("unknown host: got %d, want 404", code)
	}
}
