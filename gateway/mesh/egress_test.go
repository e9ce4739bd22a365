package mesh

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/testtcp"
)

// egressProxy serves e on a loopback test server: CONNECT tunnels, and HTTP
// requests in absolute or origin form.
func egressProxy(t *testing.T, e *Egress) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			e.ServeHTTP(w, r)
			return
		}
		d, err := ParseDestination(r.Host, 0)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		e.ServeConnect(w, w, r, d, nil)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func mustAllow(t *testing.T, entries ...string) AllowList {
	t.Helper()
	a, err := ParseAllowList(entries)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestEgressForwardsWhatTheAllowListAllows(t *testing.T) {
	backend := echoBackend(t, "outside")
	_, port, _ := net.SplitHostPort(backend.Listener.Addr().String())
	resolver := &fakeResolver{addrs: map[string][]string{
		"api.example.test": {"127.0.0.1"}, "a.b.wild.test": {"127.0.0.1"}, "wild.test": {"127.0.0.1"},
		"other.test": {"127.0.0.1"}, "ranged.test": {"127.0.0.1"},
	}}
	cases := []struct {
		name   string
		allow  []string
		deny   bool
		url    string
		status int
	}{
		{"listed name", []string{"api.example.test", "*.wild.test"}, false, "http://api.example.test:" + port + "/x", 200},
		{"listed name, case and dot", []string{"api.example.test"}, true, "http://API.Example.Test.:" + port + "/x", 200},
		{"wildcard at depth", []string{"*.wild.test"}, false, "http://a.b.wild.test:" + port + "/", 200},
		{"wildcard is not its apex", []string{"*.wild.test"}, false, "http://wild.test:" + port + "/", 403},
		{"unlisted name", []string{"api.example.test"}, false, "http://other.test:" + port + "/", 403},
		{"unlisted address", []string{"api.example.test"}, false, "http://127.0.0.1:" + port + "/", 403},
		{"address in a listed range", []string{"127.0.0.0/8"}, true, "http://127.0.0.1:" + port + "/", 200},
		{"name resolving into a listed range", []string{"127.0.0.0/8"}, true, "http://ranged.test:" + port + "/", 200},
		{"empty list allows all", nil, false, "http://other.test:" + port + "/", 200},
		{"empty list in deny mode", nil, true, "http://other.test:" + port + "/", 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := NewEgress(EgressOptions{DenyByDefault: c.deny, Allow: mustAllow(t, c.allow...), Resolver: resolver})
			e.permitLoopback = true
			client := proxyClient(t, egressProxy(t, e).URL)
			status, reason, body := get(t, client, c.url)
			if status != c.status {
				t.Fatalf("status %d (%s: %s), want %d", status, reason, body, c.status)
			}
			if status == 403 && reason != "egress-denied" {
				t.Errorf("refusal names %q, want egress-denied", reason)
			}
			if status == 200 && (!strings.HasPrefix(body, "outside host=") || !strings.HasSuffix(body, "xff=")) {
				t.Errorf("backend saw %q: want the Host asked for and no X-Forwarded-For", body)
			}
		})
	}
	before := resolver.lookups.Load()
	e := NewEgress(EgressOptions{Allow: mustAllow(t, "api.example.test"), Resolver: resolver})
	e.permitLoopback = true
	if status, _, _ := get(t, proxyClient(t, egressProxy(t, e).URL), "http://other.test:"+port+"/"); status != 403 {
		t.Fatalf("unlisted name: %d", status)
	}
	if n := resolver.lookups.Load() - before; n != 0 {
		t.Errorf("a name no entry could allow was looked up %d times", n)
	}
}

func TestEgressRefusesForbiddenAddressesWhateverTheAllowList(t *testing.T) {
	resolver := &fakeResolver{addrs: map[string][]string{
		"loop.test":    {"127.0.0.1"},
		"mapped.test":  {"::ffff:127.0.0.1"},
		"meta.test":    {"169.254.169.254"},
		"meta6.test":   {"fe80::1"},
		"nat64.test":   {"64:ff9b::a9fe:a9fe"},
		"node.test":    {"192.0.2.10"},
		"cluster.test": {"10.96.5.5"},
		"mesh.test":    {"10.97.0.1"},
		"zero.test":    {"0.0.0.0"},
		"multi.test":   {"224.0.0.1"},
	}}
	allowEverything := []string{"*.test", "0.0.0.0/0", "::/0"}
	for _, allow := range [][]string{nil, allowEverything} {
		e := NewEgress(EgressOptions{
			Allow: mustAllow(t, allow...), Resolver: resolver,
			NodeAddresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")},
			ServiceCIDRs:  []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16")},
			ClusterIP:     func(a netip.Addr) bool { return a == netip.MustParseAddr("10.97.0.1") },
		})
		srv := egressProxy(t, e)
		client := proxyClient(t, srv.URL)
		targets := []string{"http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/", "http://127.0.0.1:1/", "http://[::1]:1/"}
		for host := range resolver.addrs {
			targets = append(targets, "http://"+host+"/")
		}
		for _, target := range targets {
			status, reason, body := get(t, client, target)
			if status != http.StatusForbidden || reason != "egress-denied" {
				t.Errorf("allow-list %v: %s answered %d %q (%s), want 403 egress-denied", allow, target, status, reason, body)
			}
		}
		for _, target := range []string{"meta.test:443", "169.254.169.254:80", "node.test:22"} {
			if c, _, status := connect(t, srv.Listener.Addr().String(), target); c != nil || status != http.StatusForbidden {
				t.Errorf("allow-list %v: CONNECT %s answered %d, want 403", allow, target, status)
			}
		}
	}
}

func TestEgressDeniedReasons(t *testing.T) {
	e := NewEgress(EgressOptions{NodeAddresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	cases := map[string]string{
		"127.0.0.1": "loopback", "::1": "loopback", "::ffff:127.0.0.1": "loopback",
		"169.254.169.254": "link-local", "fe80::1": "link-local", "ff02::1": "link-local",
		"64:ff9b::a9fe:a9fe": "link-local", "0.0.0.0": "unspecified", "0.1.2.3": "unspecified", "::": "unspecified",
		"224.1.2.3": "multicast", "ff05::2": "multicast", "255.255.255.255": "broadcast", "192.0.2.77": "node",
		"64:ff9b:1::a9fe:a9fe": "NAT64", "fd00:ec2::254": "metadata", "fd20:ce::254": "metadata",
		"100.100.100.200": "metadata", "168.63.129.16": "metadata",
		"203.0.113.5": "", "10.0.0.1": "", "2001:db8::1": "",
	}
	for text, want := range cases {
		got := e.denied(netip.MustParseAddr(text))
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("%s: denied %q, want one mentioning %q", text, got, want)
		}
	}
}

func TestEgressDialerChecksTheSocketAddress(t *testing.T) {
	// Whatever path reaches the dialer, the address of the socket is checked last:
	// a dial of a forbidden address fails before any packet is sent.
	e := NewEgress(EgressOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := e.dialer.DialContext(ctx, "tcp", "169.254.169.254:80")
	var denied *DeniedError
	if !errors.As(err, &denied) {
		t.Fatalf("dialing a link-local address: %v, want a DeniedError", err)
	}
}

func TestEgressTriesTheAllowedAddressesOfAName(t *testing.T) {
	backend := echoBackend(t, "outside")
	_, port, _ := net.SplitHostPort(backend.Listener.Addr().String())
	resolver := &fakeResolver{addrs: map[string][]string{"mixed.test": {"169.254.169.254", "127.0.0.1"}}}
	e := NewEgress(EgressOptions{Resolver: resolver})
	e.permitLoopback = true
	status, reason, body := get(t, proxyClient(t, egressProxy(t, e).URL), "http://mixed.test:"+port+"/")
	if status != 200 {
		t.Fatalf("status %d %s %s: the refused address was not skipped", status, reason, body)
	}
}

func TestEgressTunnels(t *testing.T) {
	target := testtcp.ReplyAfterEOF(t, "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(target)
	resolver := &fakeResolver{addrs: map[string][]string{"db.example.test": {"127.0.0.1"}}}
	e := NewEgress(EgressOptions{Allow: mustAllow(t, "db.example.test"), Resolver: resolver})
	e.permitLoopback = true
	proxy := egressProxy(t, e).Listener.Addr().String()
	c, br, status := connect(t, proxy, "db.example.test:"+port)
	if status != 200 {
		t.Fatalf("CONNECT answered %d", status)
	}
	if got := halfCloseExchange(t, c, br, "hello"); got != "got:hello" {
		t.Fatalf("through the tunnel: %q", got)
	}
	if _, _, status := connect(t, proxy, "elsewhere.test:"+port); status != http.StatusForbidden {
		t.Fatalf("CONNECT to an unlisted host answered %d, want 403", status)
	}
}

func TestParseAllowList(t *testing.T) {
	a, err := ParseAllowList([]string{" API.example.com. ", "*.Example.org", "203.0.113.0/24", "2001:db8::1", ""})
	if err != nil {
		t.Fatal(err)
	}
	if !a.allowsName("api.example.com") || !a.allowsName("x.y.example.org") || a.allowsName("example.org") || a.allowsName("example.com") {
		t.Error("names matched wrongly")
	}
	if !a.allowsAddr(netip.MustParseAddr("203.0.113.9")) || !a.allowsAddr(netip.MustParseAddr("2001:db8::1")) || a.allowsAddr(netip.MustParseAddr("2001:db8::2")) {
		t.Error("addresses matched wrongly")
	}
	if n := testing.AllocsPerRun(100, func() { _ = a.allowsName("deep.x.y.example.org") }); n != 0 {
		t.Errorf("allowsName allocates %v times", n)
	}
	for _, bad := range []string{"*.", "*.bad name", "300.1.1.1/8", "a b", "*"} {
		if _, err := ParseAllowList([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if empty, _ := ParseAllowList(nil); !empty.Empty() {
		t.Error("no entries is not empty")
	}
}

func TestEgressBracketsAnIPv6Host(t *testing.T) {
	for host, want := range map[string]string{
		"2001:db8::1": "[2001:db8::1]", "[2001:db8::1]:8080": "[2001:db8::1]:8080",
		"example.com:81": "example.com:81", "192.0.2.1": "192.0.2.1",
	} {
		in := httptest.NewRequest(http.MethodGet, "/", nil)
		in.Host = host
		pr := &httputil.ProxyRequest{In: in, Out: in.Clone(in.Context())}
		rewriteEgress(pr)
		if pr.Out.URL.Host != want || pr.Out.Host != want {
			t.Errorf("Host %q: forwarded to %q (Host %q), want %q", host, pr.Out.URL.Host, pr.Out.Host, want)
		}
	}
}
