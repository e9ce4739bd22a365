package router

import "strings"

// hostKind classifies a configured hostname.
type hostKind int

const (
	// hostAny is an empty hostname: every host.
	hostAny hostKind = iota
	// hostExact names one host.
	hostExact
	// hostWildcard is "*.suffix": any host that ends in ".suffix", at any depth.
	hostWildcard
)

// parseHostname classifies a configured hostname and returns its normalised lookup
// key: the host itself, or the suffix after "*." for a wildcard. A bare "*" is
// treated like an empty hostname.
func parseHostname(name string) (hostKind, string) {
	name = normalizeHost(name)
	switch {
	case name == "" || name == "*":
		return hostAny, ""
	case strings.HasPrefix(name, "*."):
		return hostWildcard, name[2:]
	default:
		return hostExact, name
	}
}

// hostKey is a normalised host in either form Lookup holds it in: the Host header's
// own string, or a copy lowered into a buffer on the stack. Map lookups keyed by
// string(host) do not allocate for either.
type hostKey interface{ ~string | ~[]byte }

// normalizeHost turns a Host header value into the form hostnames are compared in:
// no port (IPv6 brackets removed), lower case, and without one trailing dot (the
// absolute form of a DNS name names the same host). It allocates only when the host
// has characters to lower.
func normalizeHost(host string) string {
	host = trimHost(host)
	if needsLowering(host) {
		host = strings.ToLower(host)
	}
	return host
}

// trimHost is normalizeHost without the lowering: the port and one trailing dot
// removed.
func trimHost(host string) string {
	return strings.TrimSuffix(stripPort(host), ".")
}

// hostBufferSize is the longest host Lookup lowers on the stack; DNS names are at
// most 253 characters, so only malformed hosts need more.
const hostBufferSize = 256

// lowerASCII appends host to dst with its ASCII upper-case letters lowered. It is
// the lowering of normalizeHost for hosts that are all ASCII, which is all that
// strings.ToLower changes in them.
func lowerASCII(dst []byte, host string) []byte {
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// isASCII reports whether s has only ASCII bytes.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// stripPort removes a ":port" suffix. A bracketed IPv6 literal loses its brackets;
// an unbracketed value with several colons is an IPv6 address without a port and is
// kept whole.
func stripPort(host string) string {
	if strings.HasPrefix(host, "[") {
		if end := strings.IndexByte(host, ']'); end > 0 {
			return host[1:end]
		}
		return host
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host, ':') == i {
		return host[:i]
	}
	return host
}

// needsLowering reports whether host has an upper-case ASCII letter or any non-ASCII
// byte (which strings.ToLower may fold).
func needsLowering(host string) bool {
	for i := 0; i < len(host); i++ {
		if c := host[i]; ('A' <= c && c <= 'Z') || c >= 0x80 {
			return true
		}
	}
	return false
}
