package proxy

import (
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// A rule may split traffic between a cleartext backend and a TLS one; each is
// reached with its own scheme and transport, and a TLS backend whose certificate does
// not verify answers 502 rather than being spoken to anyway.
func TestForwardToTLSBackends(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls sni=%s", r.TLS.ServerName)
	}))
	t.Cleanup(srv.Close)
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	tlsAddr := srv.Listener.Addr().String()
	backends := []config.Backend{
		httpBackend("plain", ready(startBackend(t, named("plain")))),
		{Name: "secure", Protocol: config.AppProtocolHTTP1, Endpoints: ready(tlsAddr),
			TLS: &config.UpstreamTLS{ServerName: "example.com", CACertificatesPEM: caPEM}},
		{Name: "wrong-name", Protocol: config.AppProtocolHTTP1, Endpoints: ready(tlsAddr),
			TLS: &config.UpstreamTLS{ServerName: "other.org", CACertificatesPEM: caPEM}},
	}
	for _, c := range []struct {
		backend string
		status  int
		body    string
	}{
		{"plain", 200, "plain"},
		{"secure", 200, "tls sni=example.com"},
		{"wrong-name", 502, ""},
	} {
		t.Run(c.backend, func(t *testing.T) {
			rule := config.Rule{Backends: []config.BackendRef{{Backend: c.backend, Weight: 1}}}
			g := newGateway(t, Options{}, backends, rule, nil)
			status, _, body := g.get(t, "/")
			if status != c.status || !strings.Contains(body, c.body) {
				t.Fatalf("got %d %q, want %d %q", status, body, c.status, c.body)
			}
		})
	}
}
