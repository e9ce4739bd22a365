// Package clientip finds the address of the client behind a request.
package clientip

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/switchyard-dev/switchyard/internal/peeraddr"
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
	peer, host, ok := peeraddr.Parse(remoteAddr)
	if !ok || !contains(trusted, peer) {
		return host
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
				return peeraddr.Canonical(client, clientText)
			}
			client, clientText = hop.WithZone("").Unmap(), hopText
			if !contains(trusted, client) {
				return peeraddr.Canonical(client, clientText)
			}
		}
	}
	return peeraddr.Canonical(client, clientText)
}

// lastHop splits the right-most comma-separated hop off a list, reporting whether
// hops remain before it.
func lastHop(list string) (hop, rest string, more bool) {
	if i := strings.LastIndexByte(list, ','); i >= 0 {
		return list[i+1:], list[:i], true
	}
	return list, "", false
}

func contains(prefixes []netip.Prefix, addr netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
