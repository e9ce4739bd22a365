package clientip

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/peeraddr"
)

func TestFrom(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	cases := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"untrusted peer ignores the header", "192.0.2.7:5000", []string{"198.51.100.1"}, "192.0.2.7"},
		{"trusted peer: right-most untrusted hop", "127.0.0.1:5000", []string{"203.0.113.9, 198.51.100.1"}, "198.51.100.1"},
		{"trusted hops are skipped", "127.0.0.1:5000", []string{"198.51.100.1", "127.0.0.2"}, "198.51.100.1"},
		{"a spoofed left part does not count", "127.0.0.1:5000", []string{"1.2.3.4, 198.51.100.1"}, "198.51.100.1"},
		{"malformed hop stops the walk", "127.0.0.1:5000", []string{"198.51.100.1, garbage"}, "127.0.0.1"},
		{"no header: the trusted peer itself", "[::1]:80", nil, "::1"},
		{"IPv4-mapped peers are unmapped", "[::ffff:192.0.2.7]:80", nil, "192.0.2.7"},
		{"unparsable peer is returned as is", "pipe", nil, "pipe"},
		{"upper-case IPv6 peer in canonical form", "[2001:DB8::7]:80", nil, "2001:db8::7"},
		{"IPv6 peer zone dropped", "[fe80::1%eth0]:80", nil, "fe80::1"},
		{"non-canonical hop", "127.0.0.1:5000", []string{"2001:0db8:0:0::9"}, "2001:db8::9"},
		{"empty hop on the right stops the walk", "127.0.0.1:5000", []string{"198.51.100.1,"}, "127.0.0.1"},
		{"empty hop in the middle stops the walk", "127.0.0.1:5000", []string{"198.51.100.1,,127.0.0.3"}, "127.0.0.3"},
		{"hops across values, right-most value first", "127.0.0.1:5000", []string{"198.51.100.1", "127.0.0.2, 127.0.0.3"}, "198.51.100.1"},
	}
	for _, tc := range cases {
		r := &http.Request{RemoteAddr: tc.peer, Header: http.Header{}}
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := From(r, trusted); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestFromDoesNotAllocateForCanonicalAddresses checks that the common cases, an
// untrusted peer and a trusted one with a forwarded client, written canonically,
// cost no allocation: rate limits key every request by them.
func TestFromDoesNotAllocateForCanonicalAddresses(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	direct := &http.Request{RemoteAddr: "192.0.2.7:5000", Header: http.Header{}}
	forwarded := &http.Request{RemoteAddr: "127.0.0.1:5000", Header: http.Header{"X-Forwarded-For": {"203.0.113.9, 2001:db8::1"}}}
	for _, r := range []*http.Request{direct, forwarded} {
		want := From(r, trusted)
		if n := testing.AllocsPerRun(100, func() {
			if From(r, trusted) != want {
				t.Fatal("unstable result")
			}
		}); n != 0 {
			t.Errorf("From(%s, %v) allocated %v times", r.RemoteAddr, r.Header, n)
		}
	}
}

// TestFromPeerIsFromWithoutForwardedFor checks that FromPeer gives what From gives
// for a request without X-Forwarded-For, whatever proxies are trusted: rate limits
// key raw requests by FromPeer and the same client's http.Requests by From, and the
// two must find the same bucket.
func TestFromPeerIsFromWithoutForwardedFor(t *testing.T) {
	peers := []string{
		"192.0.2.7:5000", "127.0.0.1:80", "192.0.2.7", "10.0.0.1:",
		"[2001:db8::7]:80", "[2001:DB8::7]:80", "[2001:0db8:0:0::7]:80", "[::1]:443", "2001:db8::7", "::1",
		"[::ffff:192.0.2.7]:80", "[::ffff:127.0.0.1]:80", "::ffff:c000:207",
		"[fe80::1%eth0]:80", "fe80::1%eth0", "[fe80::1%25eth0]:80",
		"pipe", "", "@", "[::1]", "01.2.3.4:80", "192.0.2.7:80:90", "[bad]:80", "host.example:80",
	}
	trustedLists := [][]netip.Prefix{
		nil,
		{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
		{netip.MustParsePrefix("fe80::/10"), netip.MustParsePrefix("192.0.2.0/24")},
	}
	for _, peer := range peers {
		got := FromPeer(peer)
		for _, trusted := range trustedLists {
			for _, header := range []http.Header{nil, {}, {"X-Real-Ip": {"198.51.100.1"}}} {
				r := &http.Request{RemoteAddr: peer, Header: header}
				if want := From(r, trusted); got != want {
					t.Errorf("FromPeer(%q) = %q; From with trusted %v and header %v gives %q", peer, got, trusted, header, want)
				}
			}
		}
	}
}

// TestFromPeerDoesNotAllocateForCanonicalAddresses checks that FromPeer, which keys
// every raw request of a limit by client address, costs no allocation for an
// address written canonically, as From does.
func TestFromPeerDoesNotAllocateForCanonicalAddresses(t *testing.T) {
	for _, peer := range []string{"192.0.2.7:5000", "[2001:db8::1]:443", "[::1]:80"} {
		want := FromPeer(peer)
		if n := testing.AllocsPerRun(100, func() {
			if FromPeer(peer) != want {
				t.Fatal("unstable result")
			}
		}); n != 0 {
			t.Errorf("FromPeer(%q) allocated %v times", peer, n)
		}
	}
}

// TestFromPeerIsTheParsedPeerText checks that FromPeer gives the text
// peeraddr.Parse reads of the peer, which is what the HTTP/1.1 server keeps for a
// connection's raw requests (h1.Exchange.RemoteIP): a raw request's rate limit
// bucket is then the one its http.Request form counts in.
func TestFromPeerIsTheParsedPeerText(t *testing.T) {
	peers := []string{"192.0.2.7:5000", "192.0.2.7", "[::1]:80", "::1", "[::ffff:192.0.2.7]:80", "[fe80::1%eth0]:80",
		"[2001:DB8::7]:80", "2001:0db8::7", "01.2.3.4:80", "1.2.3.4:", "pipe", "", "[1.2.3.4]:80", "host.test:80"}
	for _, peer := range peers {
		if _, text, _ := peeraddr.Parse(peer); FromPeer(peer) != text {
			t.Errorf("FromPeer(%q) = %q, peeraddr.Parse reads %q", peer, FromPeer(peer), text)
		}
	}
}
