package mesh

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseDestination(t *testing.T) {
	cases := []struct {
		authority   string
		defaultPort int
		host        string
		addr        string
		port        int
		bad         bool
	}{
		{authority: "web", defaultPort: 80, host: "web", port: 80},
		{authority: "web:8080", defaultPort: 80, host: "web", port: 8080},
		{authority: "Web.Shop.SVC.Cluster.Local.", defaultPort: 80, host: "web.shop.svc.cluster.local", port: 80},
		{authority: "web.shop.svc.cluster.local.:81", defaultPort: 80, host: "web.shop.svc.cluster.local", port: 81},
		{authority: "10.96.0.10", defaultPort: 80, host: "10.96.0.10", addr: "10.96.0.10", port: 80},
		{authority: "10.96.0.10:443", defaultPort: 0, host: "10.96.0.10", addr: "10.96.0.10", port: 443},
		{authority: "[fd00::10]:8443", defaultPort: 0, host: "fd00::10", addr: "fd00::10", port: 8443},
		{authority: "[fd00::10]", defaultPort: 80, host: "fd00::10", addr: "fd00::10", port: 80},
		{authority: "fd00::10", defaultPort: 80, host: "fd00::10", addr: "fd00::10", port: 80},
		{authority: "[::ffff:10.0.0.1]:80", defaultPort: 80, host: "::ffff:10.0.0.1", addr: "10.0.0.1", port: 80},
		{authority: "_grpc._tcp.api", defaultPort: 80, host: "_grpc._tcp.api", port: 80},
		{authority: "", defaultPort: 80, bad: true},
		{authority: "web", defaultPort: 0, bad: true},
		{authority: "web:", defaultPort: 80, bad: true},
		{authority: ":80", defaultPort: 80, bad: true},
		{authority: "web:0", defaultPort: 80, bad: true},
		{authority: "web:65536", defaultPort: 80, bad: true},
		{authority: "web:+80", defaultPort: 80, bad: true},
		{authority: "web:080808", defaultPort: 80, bad: true},
		{authority: "[fd00::10", defaultPort: 80, bad: true},
		{authority: "[fd00::10]x", defaultPort: 80, bad: true},
		{authority: "[10.0.0.1]:80", defaultPort: 80, bad: true},
		{authority: "[fe80::1%eth0]:80", defaultPort: 80, bad: true},
		{authority: "a..b", defaultPort: 80, bad: true},
		{authority: "a b", defaultPort: 80, bad: true},
		{authority: "a/b", defaultPort: 80, bad: true},
		{authority: strings.Repeat("a", 64) + ".example", defaultPort: 80, bad: true},
	}
	for _, c := range cases {
		d, err := ParseDestination(c.authority, c.defaultPort)
		if c.bad {
			if err == nil {
				t.Errorf("%q: accepted as %+v", c.authority, d)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.authority, err)
			continue
		}
		var want netip.Addr
		if c.addr != "" {
			want = netip.MustParseAddr(c.addr)
		}
		if d.Host != c.host || d.Port != c.port || d.Addr != want {
			t.Errorf("%q: got %+v, want host %q addr %v port %d", c.authority, d, c.host, want, c.port)
		}
	}
}

func TestParseDestinationDoesNotAllocate(t *testing.T) {
	for _, a := range []string{"web.shop.svc.cluster.local:8080", "10.96.0.10:80", "[fd00::1]:80", "web"} {
		if n := testing.AllocsPerRun(100, func() { _, _ = ParseDestination(a, 80) }); n != 0 {
			t.Errorf("%q: %v allocations", a, n)
		}
	}
}

func FuzzParseDestination(f *testing.F) {
	for _, s := range []string{"web", "web:80", "[fd00::1]:80", "10.0.0.1:443", "A.B.", "[", ":", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, authority string) {
		d, err := ParseDestination(authority, 80)
		if err != nil {
			return
		}
		if d.Port < 1 || d.Port > 65535 || d.Host == "" {
			t.Fatalf("%q gave %+v", authority, d)
		}
		if !d.Addr.IsValid() && (strings.ToLower(d.Host) != d.Host || strings.HasSuffix(d.Host, ".")) {
			t.Fatalf("%q gave a host name not normalised: %q", authority, d.Host)
		}
	})
}
