package h2

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

func TestShutdownWaitsForInflightStream(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	ts := startServer(t, blockingHandler(release, &calls), nil)
	rc := dialRaw(t, ts.addr)
	rc.request(1, true, "GET", "/")
	waitFor(t, "handler", func() bool { return calls.Load() == 1 })

	shutdownErr := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioBound)
		defer cancel()
		shutdownErr <- ts.srv.Shutdown(ctx)
	}()
	ga := rc.readUntil("GOAWAY", isGoAway).(*http2.GoAwayFrame)
	if ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID != 1 {
		t.Fatalf("GOAWAY %v last %d, want NO_ERROR last 1", ga.ErrCode, ga.LastStreamID)
	}
	select {
	case err := <-shutdownErr:
		t.Fatalf("Shutdown returned (%v) while a stream was in flight", err)
	default:
	}
	close(release)
	var body []byte
	rc.readUntil("END_STREAM on stream 1", func(f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.DataFrame:
			body = append(body, f.Data()...)
			return f.StreamEnded()
		case *http2.MetaHeadersFrame:
			return f.StreamEnded()
		}
		return false
	})
	if string(body) != "done" {
		t.Fatalf("in-flight response body %q", body)
	}
	if err := <-shutdownErr; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	rc.readUntilEnd()

	// A connection served after Shutdown closes at once.
	c1, c2 := net.Pipe()
	defer c2.Close()
	ts.srv.ServeConn(c1)
	c2.SetReadDeadline(time.Now().Add(ioBound))
	if _, err := c2.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after Shutdown: %v, want EOF", err)
	}
}

func TestShutdownContextEndsClosesConnections(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var calls atomic.Int32
	ts := startServer(t, blockingHandler(release, &calls), nil)
	rc := dialRaw(t, ts.addr)
	rc.request(1, true, "GET", "/")
	waitFor(t, "handler", func() bool { return calls.Load() == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ts.srv.Shutdown(ctx); err != context.Canceled {
		t.Fatalf("Shutdown = %v, want context.Canceled", err)
	}
	rc.readUntilEnd()
}

func TestIdleTimeoutSendsGoAway(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		func(c *Config) { c.IdleTimeout = 50 * time.Millisecond })
	rc := dialRaw(t, ts.addr)
	rc.request(1, true, "GET", "/")
	ga, _ := rc.readUntilEnd()
	if ga == nil || ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID != 1 {
		t.Fatalf("GOAWAY %+v, want NO_ERROR after stream 1", ga)
	}
}

// selfSignedTLS returns a server config with a fresh certificate for
// 127.0.0.1 and a client config that trusts it, both offering only "h2".
func selfSignedTLS(t *testing.T) (*tls.Config, *tls.Config) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "h2 test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		NextProtos:   []string{"h2"},
	}
	client := &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}}
	return server, client
}

func TestTLSSetsRequestTLS(t *testing.T) {
	serverTLS, clientTLS := selfSignedTLS(t)
	ts := startServerWrapped(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			io.WriteString(w, "no TLS")
			return
		}
		io.WriteString(w, "proto="+r.TLS.NegotiatedProtocol)
	}), nil, tlsHandshake(serverTLS))
	tr := &http2.Transport{TLSClientConfig: clientTLS}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: ioBound}
	res, err := c.Get("https://" + ts.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "proto=h2" || res.TLS == nil {
		t.Fatalf("body %q", b)
	}
}

func TestGoroutinesReturnToBaselineAfterClose(t *testing.T) {
	baseline := runtime.NumGoroutine()
	started := make(chan struct{}, 10)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			started <- struct{}{}
			<-r.Context().Done()
			return
		}
		io.Copy(w, r.Body)
	}), nil)
	tr := h2cTransport()
	c := &http.Client{Transport: tr, Timeout: ioBound}
	for i := 0; i < 20; i++ {
		res, err := c.Get("http://" + ts.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	blocked := make(chan struct{})
	go func() {
		defer close(blocked)
		if res, err := c.Get("http://" + ts.addr + "/block"); err == nil {
			res.Body.Close()
		}
	}()
	<-started
	ts.close()
	<-blocked
	tr.CloseIdleConnections()
	waitFor(t, "goroutines back to baseline", func() bool { return runtime.NumGoroutine() <= baseline })
}

func TestWriteByteTimeoutClosesStalledConnection(t *testing.T) {
	writeErr := make(chan error, 1)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		var err error
		for i := 0; i < 1000 && err == nil; i++ { // at most 64 MB
			_, err = w.Write(chunk)
		}
		writeErr <- err
	}), func(c *Config) { c.WriteByteTimeout = 100 * time.Millisecond })
	rc := dialRaw(t, ts.addr)
	// Grant huge windows, then read nothing.
	rc.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
	rc.fr.WriteWindowUpdate(0, 1<<31-1-65535)
	rc.request(1, true, "GET", "/")
	select {
	case err := <-writeErr:
		if err == nil {
			t.Fatal("handler wrote 64 MB to a client that reads nothing")
		}
	case <-time.After(ioBound):
		t.Fatal("handler still blocked; WriteByteTimeout did not close the connection")
	}
}

func TestSelfDependencyIsProtocolError(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil)
	rc := dialRaw(t, ts.addr)
	rc.fr.WritePriority(3, http2.PriorityParam{StreamDep: 3, Weight: 1})
	if f := rc.readUntil("RST_STREAM", isRST(3)).(*http2.RSTStreamFrame); f.ErrCode != http2.ErrCodeProtocol {
		t.Fatalf("reset with %v, want PROTOCOL_ERROR", f.ErrCode)
	}
}
