// Package peeraddr reads the IP address of a connection's peer from the text of its
// address: the client address rate limits key requests by.
package peeraddr

import (
	"net"
	"net/netip"
	"strings"
)

// Parse reads remoteAddr, a peer's address as net.Conn.RemoteAddr().String() writes
// it ("192.0.2.7:5000", "[2001:db8::7]:5000") or a bare host: it returns the IP
// address, without its zone and with an IPv4-mapped address unmapped, and the
// address's canonical text. ok is false when the host is not an IP address; text is
// then the host as given (remoteAddr itself when it has no port). It allocates only
// when the address was not written in its canonical form.
func Parse(remoteAddr string) (addr netip.Addr, text string, ok bool) {
	host, addr, ok := splitIPv4Peer(remoteAddr)
	if ok {
		// The shortcut reads only the canonical form: host is the text.
		return addr, host, true
	}
	var err error
	if host, _, err = net.SplitHostPort(remoteAddr); err != nil {
		host = remoteAddr
	}
	if addr, err = netip.ParseAddr(host); err != nil {
		return netip.Addr{}, host, false
	}
	addr = addr.WithZone("").Unmap()
	return addr, Canonical(addr, host), true
}

// splitIPv4Peer is the common case of a peer's address, an IPv4 address in its
// canonical dotted-decimal form and a port of digits ("192.0.2.7:5000"), read
// without the general parsers: every rate-limited request reads its client's
// address, and the general path costs several times as much. It returns the host
// part and the address; ok is false for anything else, which the general path
// reads, to the same result.
func splitIPv4Peer(remoteAddr string) (host string, addr netip.Addr, ok bool) {
	colon := strings.LastIndexByte(remoteAddr, ':')
	if colon < 0 {
		return "", netip.Addr{}, false
	}
	for i := colon + 1; i < len(remoteAddr); i++ {
		if remoteAddr[i]-'0' > 9 {
			return "", netip.Addr{}, false
		}
	}
	host = remoteAddr[:colon]
	var octets [4]byte
	i := 0
	for n := range octets {
		if n > 0 {
			if i == len(host) || host[i] != '.' {
				return "", netip.Addr{}, false
			}
			i++
		}
		first, value := i, 0
		for i < len(host) && i-first < 3 && host[i]-'0' <= 9 {
			value = value*10 + int(host[i]-'0')
			i++
		}
		// One to three digits, no leading zero (not the canonical form), at most
		// 255.
		if i == first || value > 255 || (i-first > 1 && host[first] == '0') {
			return "", netip.Addr{}, false
		}
		octets[n] = byte(value)
	}
	if i != len(host) {
		return "", netip.Addr{}, false
	}
	return host, netip.AddrFrom4(octets), true
}

// Canonical returns addr's canonical string: text, the form it was parsed from,
// when that is the canonical form already, so that the common case allocates
// nothing.
func Canonical(addr netip.Addr, text string) string {
	var buf [64]byte
	b := addr.AppendTo(buf[:0])
	if string(b) == text {
		return text
	}
	return string(b)
}
