// Package clientip finds the address of the client behind a request.
package clientip

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// From returns the client's address: the TCP peer, unless the peer is a trusted
// proxy; then the right-most X-Forwarded-For hop that is not a trusted proxy. Hops
// left of that one were written by the client and are ignored, so a client cannot
// pose as another address. The result is a canonical IP string, or the raw peer
// address when it does not parse. It allocates only when the address was not
// written in its canonical form.
func From(r *http.Request, trusted []netip.Prefix) string {
	return from(r.RemoteAddr, r.Header, trusted)
}

// FromPeer returns what From returns for a request from the TCP peer remoteAddr
// that has no X-Forwarded-For header, whatever the trusted proxies: without the
// header a trusted peer has no hop to defer to, so it is the client. It is for
// requests without an http.Request, such as the raw form the data plane forwards,
// which never carries the header. Like From, it allocates only when the address
// was not written in its canonical form.
func FromPeer(remoteAddr string) string {
	// One code path with From, so that a raw request and its http.Request form
	// always count in the same bucket: a nil header has no X-Forwarded-For.
	return from(remoteAddr, nil, nil)
}

// from is From given the pieces of the request it reads: the peer's address and
// the header, which only a trusted peer's X-Forwarded-For is read from.
func from(remoteAddr string, header http.Header, trusted []netip.Prefix) string {
	host, peer, shortcut := splitIPv4Peer(remoteAddr)
	if !shortcut {
		var err error
		if host, _, err = net.SplitHostPort(remoteAddr); err != nil {
			host = remoteAddr
		}
		if peer, err = netip.ParseAddr(host); err != nil {
			return host
		}
		peer = peer.WithZone("").Unmap()
	}
	if !contains(trusted, peer) {
		if shortcut {
			// The shortcut reads only the canonical form: host is the answer.
			return host
		}
		return canonical(peer, host)
	}
	client, clientText := peer, host
	values := header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		// The hops of one value, from the right-most; an empty hop is malformed.
		rest, more := values[i], true
		for more {
			var hopText string
			hopText, rest, more = lastHop(rest)
			hopText = strings.TrimSpace(hopText)
			hop, err := netip.ParseAddr(hopText)
			if err != nil {
				// A malformed hop cannot be vouched for; the last good one stands.
				return canonical(client, clientText)
			}
			client, clientText = hop.WithZone("").Unmap(), hopText
			if !contains(trusted, client) {
				return canonical(client, clientText)
			}
		}
	}
	return canonical(client, clientText)
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

// lastHop splits the right-most comma-separated hop off a list, reporting whether
// hops remain before it.
func lastHop(list string) (hop, rest string, more bool) {
	if i := strings.LastIndexByte(list, ','); i >= 0 {
		return list[i+1:], list[:i], true
	}
	return list, "", false
}

// canonical returns addr's canonical string: text, the form it was parsed from,
// when that is the canonical form already, so that the common case allocates
// nothing.
func canonical(addr netip.Addr, text string) string {
	var buf [64]byte
	b := addr.AppendTo(buf[:0])
	if string(b) == text {
		return text
	}
	return string(b)
}

func contains(prefixes []netip.Prefix, addr netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
