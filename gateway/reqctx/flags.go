package reqctx

import (
	"math/bits"
	"strings"
)

// Flags is a set of facts about how the gateway handled a request, for access logs
// and metrics. The names of the flags for answers the gateway gives in a backend's
// place are the values of the X-Switchyard-Error response header.
type Flags uint32

// The flags. Their order is that of their names in String.
const (
	// FlagRateLimited: a rate limit refused the request (429).
	FlagRateLimited Flags = 1 << iota
	// FlagCircuitOpen: the backend's circuit breaker turned the request away.
	FlagCircuitOpen
	// FlagNoEndpoints: the backend had no endpoint to send the request to.
	FlagNoEndpoints
	// FlagDeadlineExceeded: the caller's deadline ran out.
	FlagDeadlineExceeded
	// FlagRequestTimeout: the route's request timeout ran out.
	FlagRequestTimeout
	// FlagUpstreamTimeout: an attempt ran past its timeout.
	FlagUpstreamTimeout
	// FlagUpstreamConnectFailed: no connection to the endpoint could be made.
	FlagUpstreamConnectFailed
	// FlagUpstreamError: the backend reset or closed the connection, or answered
	// with something that is not HTTP.
	FlagUpstreamError
	// FlagBackendNotFound: the backend is not configured.
	FlagBackendNotFound
	// FlagNoBackends: the rule has no backend to send to.
	FlagNoBackends
	// FlagInvalidBackend: the chosen backend reference could not be resolved.
	FlagInvalidBackend
	// FlagRequestBodyError: the request body could not be read.
	FlagRequestBodyError
	// FlagNoRoute: no route matched the request.
	FlagNoRoute
	// FlagMisdirected: the request named another host than its TLS connection.
	FlagMisdirected
	// FlagRetried: the request was tried more than once.
	FlagRetried
	// FlagClientClosed: the client went away before it was answered.
	FlagClientClosed
	// FlagUnknownCaller: a node replica refused the request because its sender is
	// not a Pod of the node.
	FlagUnknownCaller
	// FlagEgress: a node replica sent the request out of the mesh (its destination
	// is no Service of the mesh).
	FlagEgress
	// FlagEgressDenied: a node replica refused to send the request out of the mesh.
	FlagEgressDenied
	// FlagTunnel: a node replica answered a CONNECT, tunnelling (or failing to
	// tunnel) the connection rather than routing a request.
	FlagTunnel
	// FlagRateLimitPassed: a rate limit admitted the request. It is bookkeeping for
	// the decision metrics and has no name in String.
	FlagRateLimitPassed
)

// flagNames are the names of the flags in bit order.
var flagNames = [...]string{
	"rate-limited", "circuit-open", "no-endpoints", "deadline-exceeded", "request-timeout",
	"upstream-timeout", "upstream-connect-failed", "upstream-error", "backend-not-found",
	"no-backends", "invalid-backend", "request-body-error", "no-route", "misdirected",
	"retried", "client-closed", "unknown-caller", "egress", "egress-denied", "tunnel",
}

// named masks the flags that have a name.
const named = Flags(1)<<len(flagNames) - 1

// String lists the names of the flags, comma-separated, in a fixed order. A single
// flag's name is returned without allocating.
func (f Flags) String() string {
	f &= named
	switch bits.OnesCount32(uint32(f)) {
	case 0:
		return ""
	case 1:
		return flagNames[bits.TrailingZeros32(uint32(f))]
	}
	var b strings.Builder
	for f != 0 {
		i := bits.TrailingZeros32(uint32(f))
		f &^= 1 << i
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(flagNames[i])
	}
	return b.String()
}
