package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/controller/distribute"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/internal/testpki"

	"github.com/switchyard-dev/switchyard/internal/syncbuf"
)

// testPKI is a CA, written to caFile, and a server certificate for 127.0.0.1 signed by it.
type testPKI struct {
	server *tls.Config
	caFile string
}

func newTestPKI(t testing.TB) testPKI {
	t.Helper()
	pki := testpki.New(t)
	caFile, _, _ := pki.WriteFiles(t, t.TempDir())
	return testPKI{server: pki.Server, caFile: caFile}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

const testToken = "s3cret"

// controller is a distribute.Server serving TLS on a loopback address.
type controller struct {
	*distribute.Server
	addr string
	stop func()
}

// startController serves a new Server at addr ("127.0.0.1:0" for any port). stop ends
// it; the test's cleanup stops it too.
func startController(t testing.TB, pki testPKI, addr string, opts distribute.Options) *controller {
	t.Helper()
	if opts.Authenticator == nil {
		opts.Authenticator = distribute.SharedToken(testToken)
	}
	srv, err := distribute.NewServer(opts)
	must(t, err)
	var ln net.Listener
	// A restarted controller binds the port its predecessor just released.
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		ln, err = net.Listen("tcp", addr)
		if err == nil || time.Since(start) > 5*time.Second {
			break
		}
	}
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, pki.server) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &controller{Server: srv, addr: ln.Addr().String(), stop: stop}
}

func (c *controller) url() string { return "https://" + c.addr }

func (c *controller) replica(node, role string) (distribute.ReplicaStatus, bool) {
	for _, r := range c.Replicas() {
		if r.Node == node && r.Role == role {
			return r, true
		}
	}
	return distribute.ReplicaStatus{}, false
}

// serveTLS serves h over TLS on a loopback port until the test ends.
func serveTLS(t testing.TB, pki testPKI, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	srv := &http.Server{Handler: h, TLSConfig: pki.server.Clone(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// recorder is an Apply function that records what it applied and can be told to fail.
type recorder struct {
	mu      sync.Mutex
	applied []*config.Snapshot
	fail    map[string]error // by version
	gate    chan struct{}    // when set, Apply waits for it
	entered chan string      // when set, Apply reports each version it starts
}

func (r *recorder) apply(s *config.Snapshot) error {
	if r.entered != nil {
		r.entered <- s.Version
	}
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.fail[s.Version]; err != nil {
		return err
	}
	r.applied = append(r.applied, s)
	return nil
}

func (r *recorder) versions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.applied {
		out = append(out, s.Version)
	}
	return out
}

func (r *recorder) last() *config.Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.applied) == 0 {
		return nil
	}
	return r.applied[len(r.applied)-1]
}

// runAgent starts an agent; the test's cleanup stops it and checks Run's result.
func runAgent(t testing.TB, opts Options) (*Agent, func()) {
	t.Helper()
	a, err := New(opts)
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return a, stop
}

// baseOptions are agent options for a controller, with a token file holding token.
func baseOptions(t testing.TB, pki testPKI, c *controller, rec *recorder, token string) Options {
	tokenFile := filepath.Join(t.TempDir(), "token")
	must(t, os.WriteFile(tokenFile, []byte(token+"\n"), 0o600))
	opts := Options{
		Node: "gw-1", Role: distribute.RoleEdge,
		TokenFile:  tokenFile,
		CAFile:     pki.caFile,
		StatePath:  filepath.Join(t.TempDir(), "snapshot.json.gz"),
		Apply:      rec.apply,
		MinBackoff: 10 * time.Millisecond,
		MaxBackoff: 100 * time.Millisecond,
	}
	if c != nil {
		opts.ControllerURL = c.url()
	}
	return opts
}

// waitFor polls cond until it holds or 10 seconds pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitWithin(t, 10*time.Second, what, cond)
}

// waitWithin polls cond until it holds or the timeout passes.
func waitWithin(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer = syncbuf.Buffer

func newLogger(w *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// syntheticSnapshot is a configuration of n routes on one listener, each with one rule
// and its own backend of three endpoints, versioned as the translator versions it.
func syntheticSnapshot(n int, tag string) *config.Snapshot {
	vh := config.VirtualHost{Name: "apps/public/http"}
	backends := make([]config.Backend, 0, n)
	for i := range n {
		svc := fmt.Sprintf("apps/svc-%05d:8080", i)
		vh.Routes = append(vh.Routes, config.Route{
			Name:      fmt.Sprintf("apps/route-%05d", i),
			Hostnames: []string{fmt.Sprintf("svc-%05d.example.com", i)},
			Rules: []config.Rule{{
				Matches:  []config.Match{{Path: &config.PathMatch{Type: config.PathPrefix, Value: fmt.Sprintf("/api/%s/%05d", tag, i)}}},
				Backends: []config.BackendRef{{Backend: svc, Weight: 1}},
			}},
		})
		b := config.Backend{Name: svc, Protocol: config.AppProtocolHTTP1}
		for e := range 3 {
			b.Endpoints = append(b.Endpoints, config.Endpoint{
				Address: fmt.Sprintf("10.%d.%d.%d:8080", e, i/250, i%250), Ready: true, Serving: true,
				Zone: "zone-a", NodeName: fmt.Sprintf("node-%03d", i%100),
			})
		}
		backends = append(backends, b)
	}
	s := &config.Snapshot{
		SchemaVersion: config.SchemaVersion,
		Listeners:     []config.Listener{{Name: ":8080", Port: 8080, Protocol: config.ProtocolHTTP, VirtualHosts: []config.VirtualHost{vh}}},
		Backends:      backends,
	}
	s.RoutesVersion = "routes-" + tag
	s.Version = fmt.Sprintf("%s-%d", tag, n)
	return s
}

// smallSnapshot is a valid one-route snapshot with the given version.
func smallSnapshot(version, path, endpoint string) *config.Snapshot {
	return &config.Snapshot{
		SchemaVersion: config.SchemaVersion,
		Version:       version,
		RoutesVersion: "routes-" + path,
		Listeners: []config.Listener{{
			Name: ":8080", Port: 8080, Protocol: config.ProtocolHTTP,
			VirtualHosts: []config.VirtualHost{{
				Name: "ns/gw/http",
				Routes: []config.Route{{
					Name: "ns/r",
					Rules: []config.Rule{{
						Matches:  []config.Match{{Path: &config.PathMatch{Type: config.PathPrefix, Value: path}}},
						Backends: []config.BackendRef{{Backend: "ns/svc:80", Weight: 1}},
					}},
				}},
			}},
		}},
		Backends: []config.Backend{{Name: "ns/svc:80", Protocol: config.AppProtocolHTTP1,
			Endpoints: []config.Endpoint{{Address: endpoint, Ready: true, Serving: true}}}},
	}
}

var errBadSnapshot = errors.New("listener :8080: address already in use")
