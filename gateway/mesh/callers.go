// Package mesh holds what the node replica's east-west data plane needs beyond a
// gateway's: where a request asks to go (an absolute-form URI, a Host header or a
// CONNECT authority, naming a cluster Service by any of its DNS names or cluster
// IPs, or something outside the cluster), the compiled index of the mesh's
// Services, CONNECT tunnels to a Service's endpoints, egress out of the mesh under
// an allow-list and a fixed deny-list checked on the address actually dialled, the
// identity of the calling Pod, and statistics per caller and callee for the
// service graph.
//
// Package dataplane ties these together with the route tables and the proxy of the
// gateway; this package knows nothing of sockets and configuration versions.
package mesh

import (
	"net"
	"net/netip"

	"github.com/switchyard-dev/switchyard/gateway/reqctx"
)

// Caller is the Pod that sent a request.
type Caller = reqctx.Caller

// Callers maps the source address of a connection to the Pod that made it. A node
// replica serves only the Pods of its own node: a request from any other address is
// refused, so that the replica never acts as an open proxy.
type Callers interface {
	// Lookup returns the Pod whose address ip is, and whether there is one. It is
	// called for every request and must be cheap and safe for concurrent use.
	Lookup(ip netip.Addr) (Caller, bool)
}

// StaticCallers is a fixed table of callers, for tests and for embedding the data
// plane where Pods are known in advance.
type StaticCallers map[netip.Addr]Caller

// Lookup returns the caller at ip.
func (s StaticCallers) Lookup(ip netip.Addr) (Caller, bool) {
	c, ok := s[ip.Unmap()]
	return c, ok
}

// RemoteAddr parses a request's RemoteAddr ("ip:port") into its IP address, unmapped
// from IPv4-in-IPv6 and without zone. It does not allocate.
func RemoteAddr(remote string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return netip.Addr{}, false
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return addr.Unmap().WithZone(""), true
}
