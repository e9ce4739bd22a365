package standalone_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// h2cClient speaks HTTP/2 with prior knowledge over cleartext, as gRPC clients and
// meshes do, and nothing else.
func h2cClient(t *testing.T) *http.Client {
	t.Helper()
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: protocols}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// http2Backend is a loopback HTTP/1.1 backend whose paths exercise what HTTP/2
// clients rely on through the gateway: bodies both ways, trailers, streaming and
// the end of a stream the client gave up on.
type http2Backend struct {
	release  chan struct{}
	canceled chan struct{}
	once     sync.Once
}

func (b *http2Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/echo":
		_, _ = io.Copy(w, r.Body)
	case "/trailers":
		w.Header().Set("Trailer", "X-Checksum")
		sum := sha256.New()
		_, _ = io.Copy(io.MultiWriter(w, sum), strings.NewReader("a body with a trailer"))
		w.Header().Set("X-Checksum", hex.EncodeToString(sum.Sum(nil)))
	case "/events":
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-b.release:
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		fmt.Fprint(w, "data: second\n\n")
	case "/hang":
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			b.once.Do(func() { close(b.canceled) })
		case <-time.After(10 * time.Second):
		}
	default:
		fmt.Fprint(w, r.URL.Path)
	}
}

// TestHTTP2ClientsThroughGateway sends HTTP/2 clients' traffic through the gateway
// to an HTTP/1.1 backend, with whichever HTTP/2 server the environment chooses
// (the test suite runs once with each).
func TestHTTP2ClientsThroughGateway(t *testing.T) {
	b := &http2Backend{release: make(chan struct{}), canceled: make(chan struct{})}
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 5 * time.Second}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	port := freePort(t)
	startGateway(t, map[string]string{
		"gateway.yaml":  gatewayYAML("gw", port),
		"services.yaml": serviceYAML("v1", "", l.Addr().(*net.TCPAddr).Port),
		"routes.yaml":   catchAllRoute(),
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	client := h2cClient(t)
	waitForH2(t, client, base)

	t.Run("a large body both ways", func(t *testing.T) { h2Echo(t, client, base) })
	t.Run("trailers", func(t *testing.T) { h2Trailers(t, client, base) })
	t.Run("events are flushed", func(t *testing.T) { h2Events(t, client, base, b.release) })
	t.Run("concurrent streams", func(t *testing.T) { h2Concurrent(t, client, base) })
	t.Run("a client that gives up ends the backend's request", func(t *testing.T) { h2Cancel(t, client, base, b.canceled) })
}

// waitForH2 waits, for a bounded time, until the gateway routes over HTTP/2.
func waitForH2(t *testing.T, client *http.Client, base string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := client.Get(base + "/ready")
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK && res.ProtoMajor == 2 && string(body) == "/ready" {
				return
			}
			err = fmt.Errorf("%s %d %q", res.Proto, res.StatusCode, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway does not route HTTP/2: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func h2Echo(t *testing.T, client *http.Client, base string) {
	body := make([]byte, 3<<20)
	_, _ = rand.Read(body)
	res, err := client.Post(base+"/echo", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	got, err := io.ReadAll(res.Body)
	if err != nil || res.ProtoMajor != 2 || !bytes.Equal(got, body) {
		t.Fatalf("echo over %s: %d of %d bytes back, equal %v, error %v", res.Proto, len(got), len(body), bytes.Equal(got, body), err)
	}
}

func h2Trailers(t *testing.T, client *http.Client, base string) {
	res, err := client.Get(base + "/trailers")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	if got := res.Trailer.Get("X-Checksum"); string(body) != "a body with a trailer" || got != hex.EncodeToString(sum[:]) {
		t.Fatalf("body %q, trailer X-Checksum %q (trailers %v)", body, got, res.Trailer)
	}
}

func h2Events(t *testing.T, client *http.Client, base string, release chan struct{}) {
	res, err := client.Get(base + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	expectFlushedEvents(t, res.Body, release)
}

func h2Concurrent(t *testing.T, client *http.Client, base string) {
	const streams = 64
	errs := make(chan error, streams)
	var wg sync.WaitGroup
	for i := range streams {
		wg.Go(func() {
			path := fmt.Sprintf("/stream/%d", i)
			res, err := client.Get(base + path)
			if err != nil {
				errs <- err
				return
			}
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || string(body) != path || res.ProtoMajor != 2 {
				errs <- fmt.Errorf("%s: %s %q %v", path, res.Proto, body, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func h2Cancel(t *testing.T, client *http.Client, base string, canceled chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/hang", nil)
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	cancel()
	select {
	case <-canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend's request went on after the HTTP/2 client reset its stream")
	}
}

// TestGRPCOverHTTP2ThroughGateway carries a gRPC-shaped exchange (a framed message
// each way, grpc-status in the trailers) from an HTTP/2 client to an h2c backend.
func TestGRPCOverHTTP2ThroughGateway(t *testing.T) {
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	backend := &http.Server{Protocols: protocols, ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			msg, err := io.ReadAll(r.Body)
			if err != nil || r.ProtoMajor != 2 || r.Header.Get("Content-Type") != "application/grpc" {
				http.Error(w, fmt.Sprintf("%s %q %v", r.Proto, r.Header.Get("Content-Type"), err), http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
			_, _ = w.Write(append([]byte{0, 0, 0, 0, byte(len(msg) - 5)}, bytes.ToUpper(msg[5:])...))
			w.Header().Set("Grpc-Status", "0")
			w.Header().Set("Grpc-Message", "fine")
		})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = backend.Serve(l) }()
	t.Cleanup(func() { backend.Close() })
	port := freePort(t)
	startGateway(t, map[string]string{
		"gateway.yaml":  gatewayYAML("gw", port),
		"services.yaml": serviceYAML("v1", "kubernetes.io/h2c", l.Addr().(*net.TCPAddr).Port),
		"routes.yaml":   catchAllRoute(),
	})
	client := h2cClient(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/echo.Echo/Say", port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte{0, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'}))
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("TE", "trailers")
		res, err := client.Do(req)
		if err == nil {
			body, rerr := io.ReadAll(res.Body)
			res.Body.Close()
			if rerr == nil && res.StatusCode == http.StatusOK && string(body) == "\x00\x00\x00\x00\x05HELLO" &&
				res.Trailer.Get("Grpc-Status") == "0" && res.Trailer.Get("Grpc-Message") == "fine" {
				return
			}
			err = fmt.Errorf("%s %d body %q trailers %v %v", res.Proto, res.StatusCode, body, res.Trailer, rerr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("gRPC exchange through the gateway: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
