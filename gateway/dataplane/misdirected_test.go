package dataplane

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/internal/testpki"
)

// TestMisdirectedRequests serves virtual hosts without a hostname, with an exact one,
// with a wildcard and with an exact one under that wildcard on one HTTPS socket, all
// with one certificate that covers every name, as HTTP/2 clients coalesce
// connections for. A request whose Host selects another virtual host than its
// connection's server name gets 421; one that selects the same gets routed.
func TestMisdirectedRequests(t *testing.T) {
	pki := testpki.New(t)
	certPEM, keyPEM := pki.Leaf(t, "example.test", "second.test", "unknown.test", "*.wild.test", "127.0.0.1")
	f := &mtlsFixture{serverCAs: x509.NewCertPool()}
	f.serverCAs.AppendCertsFromPEM(pki.CAPEM)
	snap := snapshotFor("misdirected", startBackend(t, "ok"))
	l := &snap.Listeners[0]
	l.Protocol = config.ProtocolHTTPS
	routes := l.VirtualHosts[0].Routes
	terminate := &config.TLS{Certificates: []config.Certificate{{Name: "ns/cert", CertPEM: string(certPEM), KeyPEM: string(keyPEM)}}}
	// The catch-all's route only takes example.test, so other names it selects find
	// no route (404) rather than a virtual host (421).
	exampleOnly := append([]config.Route(nil), routes...)
	exampleOnly[0].Hostnames = []string{"example.test"}
	l.VirtualHosts = []config.VirtualHost{
		{Name: "ns/gw/any", TLS: terminate, Routes: exampleOnly},
		{Name: "ns/gw/exact-under-wildcard", Hostname: "fourth.wild.test", TLS: terminate, Routes: routes},
		{Name: "ns/gw/second", Hostname: "second.test", TLS: terminate, Routes: routes},
		{Name: "ns/gw/wildcard", Hostname: "*.wild.test", TLS: terminate, Routes: routes},
	}
	f.engine = New(Options{})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = f.engine.Shutdown(ctx)
	})
	if err := f.engine.Apply(snap); err != nil {
		t.Fatal(err)
	}
	f.addr = f.engine.Addr("127.0.0.1:0")
	cases := []struct {
		sni, host string
		want      int
	}{
		{"example.test", "example.test", 200},
		{"example.test", "second.test", 421},
		{"example.test", "unknown.test", 404},
		{"second.test", "second.test", 200},
		{"second.test", "example.test", 421},
		{"second.test", "unknown.test", 421},
		{"third.wild.test", "third.wild.test", 200},
		{"third.wild.test", "fifth.wild.test", 200},
		{"third.wild.test", "fourth.wild.test", 421},
		{"third.wild.test", "second.test", 421},
		{"fourth.wild.test", "fourth.wild.test", 200},
		{"fourth.wild.test", "fifth.wild.test", 421},
		{"unknown.test", "example.test", 200},
		{"unknown.test", "unknown.test", 404},
		{"", "second.test", 200},
	}
	for _, c := range cases {
		// One client per server name: its second request reuses the connection.
		client := f.client(c.sni, nil, nil)
		for range 2 {
			if got, err := do(client, c.host); got != c.want {
				t.Errorf("SNI %q, Host %q: got %d (%v), want %d", c.sni, c.host, got, err, c.want)
			}
		}
	}
}
