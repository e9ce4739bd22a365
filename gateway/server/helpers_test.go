package server

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testTimeout bounds every network wait in the tests.
const testTimeout = 5 * time.Second

// newTestManager returns a Manager that is shut down when the test ends.
func newTestManager(t testing.TB, limits Limits) *Manager {
	t.Helper()
	m := NewManager(limits, nil)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_ = m.Shutdown(ctx)
	})
	return m
}

// serveOne binds a single loopback socket on a free port and returns its address.
func serveOne(t testing.TB, m *Manager, spec Spec) string {
	t.Helper()
	if spec.Name == "" {
		spec.Name = "127.0.0.1:0"
	}
	if spec.Address == "" {
		spec.Address = "127.0.0.1"
	}
	if errs := m.Sync([]Spec{spec}); errs != nil {
		t.Fatalf("Sync: %v", errs)
	}
	addr := m.Addr(spec.Name)
	if addr == "" {
		t.Fatalf("listener %q not bound", spec.Name)
	}
	return addr
}

// recordingHandler answers 200 with "<method> <path> <body length>" after reading the
// whole body, and counts its calls.
type recordingHandler struct {
	calls    atomic.Int64
	lastBody atomic.Value // string
	trailer  atomic.Value // string, the X-Trailer trailer of the last request
}

func (h *recordingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.calls.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.lastBody.Store(string(body))
	h.trailer.Store(r.Trailer.Get("X-Trailer"))
	w.Header().Set("X-Proto", r.Proto)
	_, _ = io.WriteString(w, r.Method+" "+r.URL.Path+" "+itoa(len(body)))
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// rawResult is what a raw exchange saw: the responses in order and whether the
// server closed the connection afterwards.
type rawResult struct {
	statuses []int
	bodies   []string
	closed   bool
}

// rawExchange writes payload on a fresh TCP connection (or on conn, if given) and
// reads responses until the server closes the connection or want responses arrived
// and no more come within a short wait.
func rawExchange(t testing.TB, addr, payload string, want int) rawResult {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	return exchangeOn(t, conn, payload, want)
}

func exchangeOn(t testing.TB, conn net.Conn, payload string, want int) rawResult {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(conn, payload); err != nil {
		t.Fatalf("write: %v", err)
	}
	var res rawResult
	br := bufio.NewReader(conn)
	for {
		if len(res.statuses) >= want {
			// Expecting no more answers: the connection should be closed or idle.
			_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), isConnReset(err):
				res.closed = true
			case errors.As(err, &ne) && ne.Timeout() && len(res.statuses) >= want:
			default:
				t.Fatalf("reading response %d: %v", len(res.statuses)+1, err)
			}
			return res
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res.statuses = append(res.statuses, resp.StatusCode)
		res.bodies = append(res.bodies, string(body))
	}
}

func isConnReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

// testCert is a self-signed certificate for the given DNS names.
type testCert struct {
	certPEM, keyPEM string
	x509            *x509.Certificate
}

func newTestCert(t testing.TB, names ...string) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: names[0]},
		DNSNames:              names,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return testCert{
		certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		keyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})),
		x509:    leaf,
	}
}

// clientTLS returns a client TLS config that trusts certs and asks for serverName.
func clientTLS(serverName string, nextProtos []string, certs ...testCert) *tls.Config {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c.x509)
	}
	return &tls.Config{RootCAs: pool, ServerName: serverName, NextProtos: nextProtos, MinVersion: tls.VersionTLS12}
}

// eventually polls cond until it holds or the test timeout passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
