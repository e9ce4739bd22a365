package server

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestTLSStateDespiteSchemeHTTP: an HTTP/2 client on a TLS connection that says
// ":scheme: http" still gives handlers the connection's TLS state, whichever
// servers the socket runs, since the data plane's checks of the TLS session against
// the virtual host (the client certificate a host requires, the host the session
// was set up for) only run when Request.TLS is set. net/http's HTTP/2 server leaves
// it nil for such a request; its TLS hand-over to HTTP/2 fills it in, which this
// test holds it to.
func TestTLSStateDespiteSchemeHTTP(t *testing.T) {
	cert := newTestCert(t, "a.example.test")
	store, _ := NewCertStore([]CertPair{{Name: "a", CertPEM: cert.certPEM, KeyPEM: cert.keyPEM}})
	for _, modes := range []struct {
		h1 HTTP1Mode
		h2 HTTP2Mode
	}{{HTTP1Fast, HTTP2Fast}, {HTTP1Fast, HTTP2Std}, {HTTP1Std, HTTP2Std}} {
		limits := DefaultLimits()
		limits.HTTP1, limits.HTTP2 = modes.h1, modes.h2
		m := newTestManager(t, limits)
		sawTLS := make(chan bool, 1)
		addr := serveOne(t, m, Spec{TLS: true, GetCertificate: store.GetCertificate, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sawTLS <- r.TLS != nil && r.TLS.ServerName == "a.example.test"
		})})
		status := schemeHTTPOverTLS(t, addr, cert)
		select {
		case saw := <-sawTLS:
			if !saw || status != "200" {
				t.Errorf("%s/%s: the handler saw the TLS state: %v; status %s", modes.h1, modes.h2, saw, status)
			}
		default:
			t.Errorf("%s/%s: the handler was not called; status %s", modes.h1, modes.h2, status)
		}
	}
}

// schemeHTTPOverTLS sends one HTTP/2 GET with ":scheme: http" over TLS to addr and
// returns the response's status.
func schemeHTTPOverTLS(t *testing.T, addr string, cert testCert) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, clientTLS("a.example.test", []string{"h2"}, cert))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "a.example.test"}, {":path", "/"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the answer: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			return f.PseudoValue("status")
		case *http2.RSTStreamFrame:
			return "reset " + f.ErrCode.String()
		case *http2.GoAwayFrame:
			return "goaway " + f.ErrCode.String()
		}
	}
	t.Fatal("no answer within 50 frames")
	return ""
}
