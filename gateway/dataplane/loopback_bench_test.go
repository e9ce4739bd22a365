package dataplane

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/observe"
)

// BenchmarkProxyRequestOverLoopback sends GETs from a keep-alive client through an
// engine's loopback listener to a loopback backend: the whole path, sockets, server
// and client included, as a load generator drives it one request at a time.
//
// The goroutines of each party carry a pprof label "role" (client, gateway,
// backend), inherited by the goroutines they start (a transport's connection
// goroutines, a server's connection goroutines), so that a CPU profile splits by
// party: go tool pprof -tagfocus role=gateway.
func BenchmarkProxyRequestOverLoopback(b *testing.B) {
	benchLoopback(b, nil, nil, nil)
}

// BenchmarkProxyRequestOverLoopbackPolicies is BenchmarkProxyRequestOverLoopback
// without policies (off) and with the typical policy set of
// BenchmarkProxyRequestPolicies, timeouts included, with request metrics and an
// access log line per request (on). Run with SWITCHYARD_FORWARDING=raw and
// =handler, it shows what each way of forwarding pays for the policies.
func BenchmarkProxyRequestOverLoopbackPolicies(b *testing.B) {
	b.Run("off", func(b *testing.B) { benchLoopback(b, nil, nil, nil) })
	b.Run("on", func(b *testing.B) {
		benchLoopback(b, func(snap *config.Snapshot) { withTypicalPolicies(snap, true) }, benchObserver(b, true, true, -1), nil)
	})
}

// BenchmarkProxyRequestOverLoopbackHeaderModifier is BenchmarkProxyRequestOverLoopback
// with a RequestHeaderModifier that sets, adds to and removes a field. Run with
// SWITCHYARD_FORWARDING=raw and =handler, it shows what each way of forwarding pays
// for the edits.
func BenchmarkProxyRequestOverLoopbackHeaderModifier(b *testing.B) {
	benchLoopback(b, func(snap *config.Snapshot) {
		rule := &snap.Listeners[0].VirtualHosts[0].Routes[0].Rules[0]
		rule.Filters = append(rule.Filters, config.Filter{Type: config.FilterRequestHeaderModifier,
			RequestHeaderModifier: &config.HeaderModifier{
				Set:    []config.Header{{Name: "X-Gateway", Value: "switchyard"}},
				Add:    []config.Header{{Name: "Accept-Encoding", Value: "identity"}},
				Remove: []string{"X-Debug"},
			}})
	}, nil, nil)
}

// BenchmarkProxyRequestOverLoopbackPost is BenchmarkProxyRequestOverLoopback with
// every request a POST of a 1 KiB body, which the client sends with its head. Run
// with SWITCHYARD_FORWARDING=raw and =handler, it shows what each way of forwarding
// pays for a request body.
func BenchmarkProxyRequestOverLoopbackPost(b *testing.B) {
	benchLoopback(b, nil, nil, bytes.Repeat([]byte("x"), 1<<10))
}

// benchLoopback measures GETs over loopback through an engine with obs as its
// Observer, to a snapshotFor snapshot that edit, when not nil, changes; POSTs of
// body when it is not nil.
func benchLoopback(b *testing.B, edit func(*config.Snapshot), obs *observe.Observer, body []byte) {
	var backendAddr string
	pprof.Do(context.Background(), pprof.Labels("role", "backend"), func(context.Context) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			_, _ = io.WriteString(w, "hello from the backend")
		}))
		b.Cleanup(srv.Close)
		backendAddr = srv.Listener.Addr().String()
	})
	snap := snapshotFor("loopback", backendAddr)
	if edit != nil {
		edit(snap)
	}
	e := New(Options{Logger: slog.New(slog.DiscardHandler), Observer: obs})
	b.Cleanup(func() { shutdownEngine(e) })
	pprof.Do(context.Background(), pprof.Labels("role", "gateway"), func(context.Context) {
		if err := e.Apply(snap); err != nil {
			b.Fatal(err)
		}
	})
	url := "http://" + e.Addr(snap.Listeners[0].Name) + "/bench?q=1"
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	b.Cleanup(client.CloseIdleConnections)
	pprof.Do(context.Background(), pprof.Labels("role", "client"), func(context.Context) {
		b.ReportAllocs()
		for b.Loop() {
			var res *http.Response
			var err error
			if body == nil {
				res, err = client.Get(url)
			} else {
				res, err = client.Post(url, "application/json", bytes.NewReader(body))
			}
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Fatalf("status %d", res.StatusCode)
			}
		}
	})
}
