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
// address when it does not parse.
func From(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.WithZone("").Unmap()
	if !contains(trusted, peer) {
		return peer.String()
	}
	client := peer
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		hops := strings.Split(values[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
			if err != nil {
				// A malformed hop cannot be vouched for; the last good one stands.
				return client.String()
			}
			client = hop.WithZone("").Unmap()
			if !contains(trusted, client) {
				return client.String()
			}
		}
	}
	return client.String()
}

func contains(prefixes []netip.Prefix, addr netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
