package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/switchyard-dev/switchyard/gateway/reqctx"
)

// setForwarded sets X-Forwarded-For, -Proto and -Host on the outbound request.
// Client-supplied values are believed only when the TCP peer is a trusted proxy: then
// the peer is appended to the client's X-Forwarded-For and the client's -Proto and
// -Host are kept. From anyone else they are replaced, since a client could otherwise
// claim any address. The outbound request arrives with all three removed.
//
// It also gives the outbound request an empty User-Agent when the client sent none,
// so that the transport does not send its own (as ReverseProxy does, after the
// rewrite; it finds the header set).
func (p *Proxy) setForwarded(out, in *http.Request, values *outboundValues) {
	peer, _, err := net.SplitHostPort(in.RemoteAddr)
	if err != nil {
		peer = in.RemoteAddr
	}
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	xff, host := peer, in.Host
	if info := reqctx.From(in.Context()); info != nil && info.Host != "" {
		// A URLRewrite may have changed in.Host; the backend should learn the host
		// the client asked for.
		host = info.Host
	}
	if p.trusted(peer) {
		if prior := in.Header["X-Forwarded-For"]; len(prior) > 0 {
			xff = strings.Join(prior, ", ") + ", " + peer
		}
		if v := in.Header.Get("X-Forwarded-Proto"); v != "" {
			proto = v
		}
		if v := in.Header.Get("X-Forwarded-Host"); v != "" {
			host = v
		}
	}
	// One backing array for the values; each header gets a capped slice of it, so
	// an append by a later stage copies instead of overwriting a neighbour.
	values.forwarded = [4]string{xff, proto, host, ""}
	backing := values.forwarded[:]
	if peer != "" {
		out.Header["X-Forwarded-For"] = backing[0:1:1]
	}
	out.Header["X-Forwarded-Proto"] = backing[1:2:2]
	if host != "" {
		out.Header["X-Forwarded-Host"] = backing[2:3:3]
	}
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = backing[3:4:4]
	}
}

// trusted reports whether a peer address lies in one of the trusted proxy ranges.
func (p *Proxy) trusted(peer string) bool {
	if len(p.trustedProxies) == 0 {
		return false
	}
	addr, err := netip.ParseAddr(peer)
	if err != nil {
		return false
	}
	addr = addr.WithZone("").Unmap()
	for _, prefix := range p.trustedProxies {
		if prefix.Contains(addr) {
			return true
		}
	}
	return false
}

// outboundValues holds the values of the headers the rewrite sets, so that they
// take no allocation of their own: X-Forwarded-For, -Proto, -Host and an empty
// User-Agent, and the deadline headers.
type outboundValues struct {
	forwarded [4]string
	deadline  [2]string
}

// isUpgrade reports whether the request asks to switch protocols (a WebSocket
// handshake). Upgraded connections live as long as the conversation, so route
// timeouts are not applied to them.
func isUpgrade(r *http.Request) bool {
	// The map is read directly: the names are in canonical form already, which
	// Header.Get would establish again on every request.
	upgrade := r.Header["Upgrade"]
	return len(upgrade) > 0 && upgrade[0] != "" && httpguts.HeaderValuesContainsToken(r.Header["Connection"], "upgrade")
}
