package peeraddr

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"testing"
)

// generalPeer is what Parse reads of a peer's address without the IPv4 shortcut:
// the host part as net.SplitHostPort gives it and the address it parses to.
func generalPeer(remoteAddr string) (host string, addr netip.Addr, ok bool) {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return "", netip.Addr{}, false
	}
	addr, err = netip.ParseAddr(host)
	if err != nil {
		return "", netip.Addr{}, false
	}
	return host, addr.WithZone("").Unmap(), true
}

// checkIPv4Peer fails t when splitIPv4Peer reads s differently from the general
// path, or declines an address the shortcut is for: a canonical IPv4 address with a
// port of digits.
func checkIPv4Peer(t *testing.T, s string) {
	t.Helper()
	host, addr, ok := splitIPv4Peer(s)
	wantHost, wantAddr, general := generalPeer(s)
	if ok {
		if !general || host != wantHost || addr != wantAddr {
			t.Fatalf("splitIPv4Peer(%q) = %q, %v; the general path gives %q, %v (ok %v)", s, host, addr, wantHost, wantAddr, general)
		}
		return
	}
	if general && wantAddr.Is4() && wantAddr.String() == wantHost && allDigits(s[len(wantHost)+1:]) {
		t.Fatalf("splitIPv4Peer(%q) declined a canonical IPv4 peer", s)
	}
}

func allDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// TestSplitIPv4PeerAgreesWithTheGeneralPath compares the shortcut with the general
// parsers on chosen addresses and on random strings made of the characters
// addresses are made of, and checks that Parse, which takes the shortcut, still
// gives what the general path gives.
func TestSplitIPv4PeerAgreesWithTheGeneralPath(t *testing.T) {
	chosen := []string{
		"192.0.2.7:5000", "0.0.0.0:1", "255.255.255.255:65535", "127.0.0.1:80", "10.0.0.1:",
		"256.0.0.1:80", "1.2.3:80", "1.2.3.4.5:80", "01.2.3.4:80", "1.02.3.4:80", "1.2.3.00:80",
		"1.2.3.4:8a", "1.2.3.4:[80]", "1.2.3.4]:80", "[1.2.3.4]:80", ":80", "1.2.3.4", "..3.4:80",
		"1.2.3.4::80", "1..3.4:80", "1.2.3.:80", ".1.2.3:80", "1.2.3.4 :80", "1.2.3.4:+80", "1.2.3.4:-1",
	}
	for _, s := range chosen {
		checkIPv4Peer(t, s)
	}
	rng := rand.New(rand.NewPCG(8, 26))
	const alphabet = "0123456789.:.:0125[]% a"
	for range 50000 {
		b := make([]byte, rng.IntN(24))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		checkIPv4Peer(t, string(b))
	}
	for range 20000 {
		s := strconv.Itoa(rng.IntN(300)) + "." + strconv.Itoa(rng.IntN(300)) + "." + strconv.Itoa(rng.IntN(300)) +
			"." + strconv.Itoa(rng.IntN(300)) + ":" + strconv.Itoa(rng.IntN(70000))
		checkIPv4Peer(t, s)
		if _, got, _ := Parse(s); got != fromGeneral(s) {
			t.Fatalf("Parse(%q) gives %q, the general path gives %q", s, got, fromGeneral(s))
		}
	}
}

// fromGeneral is the text Parse gives, by the general parsers alone.
func fromGeneral(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	return Canonical(peer.WithZone("").Unmap(), host)
}

// FuzzSplitIPv4Peer is TestSplitIPv4PeerAgreesWithTheGeneralPath on the fuzzer's
// strings.
func FuzzSplitIPv4Peer(f *testing.F) {
	for _, s := range []string{"192.0.2.7:5000", "01.2.3.4:80", "1.2.3.4:[80]", "[::1]:80", "256.1.1.1:1"} {
		f.Add(s)
	}
	f.Fuzz(checkIPv4Peer)
}

// BenchmarkParse reads the address of an IPv4 peer and of an IPv6 one.
func BenchmarkParse(b *testing.B) {
	for _, peer := range []string{"192.0.2.7:50312", "[2001:db8::7]:50312"} {
		b.Run(peer, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, text, _ := Parse(peer); text == "" {
					b.Fatal("no address")
				}
			}
		})
	}
}
