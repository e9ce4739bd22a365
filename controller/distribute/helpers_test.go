package distribute

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/internal/testpki"
)

// testPKI is a CA and a server certificate for 127.0.0.1, made fresh for each test.
type testPKI struct {
	server *tls.Config
	client *tls.Config
}

func newTestPKI(t testing.TB) testPKI {
	t.Helper()
	pki := testpki.New(t)
	return testPKI{server: pki.Server, client: pki.Client}
}

const testToken = "s3cret"

// testServer is a Server serving TLS on a loopback port.
type testServer struct {
	*Server
	base   *url.URL
	client *http.Client
}

func startServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	if opts.Authenticator == nil {
		opts.Authenticator = SharedToken(testToken)
	}
	srv, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	pki := newTestPKI(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, pki.server) }()
	// Small HTTP/2 receive windows make a client that does not read block the
	// server's writes after a few hundred KiB, as a slow replica would.
	tr := &http.Transport{TLSClientConfig: pki.client, ForceAttemptHTTP2: true,
		HTTP2: &http.HTTP2Config{MaxReceiveBufferPerStream: 64 << 10, MaxReceiveBufferPerConnection: 64 << 10}}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testServer{
		Server: srv,
		base:   &url.URL{Scheme: "https", Host: ln.Addr().String()},
		client: &http.Client{Transport: tr, Timeout: 0},
	}
}

// openStream opens a snapshot stream; the caller closes the body.
func (ts *testServer) openStream(t *testing.T, p StreamParams, token string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, StreamURL(ts.base, p), nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (ts *testServer) ack(t *testing.T, token string, ack Ack) int {
	t.Helper()
	body, _ := json.Marshal(ack)
	req, err := http.NewRequest(http.MethodPost, AcksURL(ts.base), strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// keepAlive acks on the stream every interval until the test ends, as an agent does.
func (ts *testServer) keepAlive(t *testing.T, stream string, every time.Duration) {
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				body, _ := json.Marshal(Ack{Stream: stream})
				req, _ := http.NewRequest(http.MethodPost, AcksURL(ts.base), strings.NewReader(string(body)))
				req.Header.Set("Authorization", "Bearer "+testToken)
				if resp, err := ts.client.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}
	}()
}

// frame is one frame read from a stream.
type frame struct {
	typ  FrameType
	snap *config.Snapshot
	err  error
}

// frames reads a stream's frames into a channel until the stream ends.
func frames(body io.Reader) <-chan frame {
	ch := make(chan frame, 64)
	go func() {
		defer close(ch)
		for {
			typ, payload, err := ReadFrame(body, DefaultMaxFrameBytes)
			if err != nil {
				ch <- frame{err: err}
				return
			}
			f := frame{typ: typ}
			if typ == FrameSnapshot {
				f.snap, f.err = DecodeSnapshot(payload, DefaultMaxFrameBytes)
			}
			ch <- f
		}
	}()
	return ch
}

// nextSnapshot returns the next snapshot frame, skipping heartbeats.
func nextSnapshot(t *testing.T, ch <-chan frame) *config.Snapshot {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case f, ok := <-ch:
			if !ok {
				t.Fatal("stream ended")
			}
			if f.err != nil {
				t.Fatalf("stream: %v", f.err)
			}
			if f.typ == FrameSnapshot {
				return f.snap
			}
		case <-timeout:
			t.Fatal("no snapshot within 5s")
		}
	}
}

// waitFor polls cond until it holds or 5 seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func replicaOf(s *Server, node, role string) (ReplicaStatus, bool) {
	for _, r := range s.Replicas() {
		if r.Node == node && r.Role == role {
			return r, true
		}
	}
	return ReplicaStatus{}, false
}

// snapshotWith returns a small valid snapshot whose route points at path and whose one
// backend has the given endpoint address; Version and RoutesVersion are content hashes,
// as the translator makes them.
func snapshotWith(path, endpoint string) *config.Snapshot {
	s := &config.Snapshot{
		SchemaVersion: config.SchemaVersion,
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
	s.RoutesVersion = hashJSON(s.Listeners)
	s.Version = contentVersion(s)
	return s
}

func mustNotErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var errTest = errors.New("test error")

func fmtVersion(i int) string { return fmt.Sprintf("v%03d", i) }
