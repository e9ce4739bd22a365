package cors

import (
	"fmt"
	"strconv"
	"strings"
)

// originPattern is an allowed origin: "*", or a scheme, a host that may start with a
// "*" label matching any number of labels, and a port (defaulted from the scheme).
type originPattern struct {
	any    bool
	scheme string
	host   string
	port   int
}

// parseOrigin reads "<scheme>://<host>[:<port>]" or "*". It parses both the allowed
// origins of the configuration, whose host may start with a "*" label, and the Origin
// header of requests.
func parseOrigin(s string) (originPattern, error) {
	if s == "*" {
		return originPattern{any: true}, nil
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || (scheme != "http" && scheme != "https") || rest == "" {
		return originPattern{}, fmt.Errorf("origin %q is not of the form http(s)://host[:port]", s)
	}
	if strings.ContainsAny(rest, "/?#@") {
		return originPattern{}, fmt.Errorf("origin %q must not have a path, query or user", s)
	}
	host, portText := rest, ""
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.HasSuffix(rest, "]") {
		host, portText = rest[:i], rest[i+1:]
	}
	port := 80
	if scheme == "https" {
		port = 443
	}
	if portText != "" {
		p, err := strconv.Atoi(portText)
		if err != nil || p < 1 || p > 65535 {
			return originPattern{}, fmt.Errorf("origin %q has an invalid port", s)
		}
		port = p
	}
	if host == "" {
		return originPattern{}, fmt.Errorf("origin %q has no host", s)
	}
	if strings.Contains(host, "*") && host != "*" &&
		(!strings.HasPrefix(host, "*.") || strings.Count(host, "*") > 1) {
		return originPattern{}, fmt.Errorf("origin %q may use * only as its whole host or as its leftmost label", s)
	}
	return originPattern{scheme: scheme, host: strings.ToLower(host), port: port}, nil
}

// matches reports whether a concrete origin is allowed by the pattern.
func (p originPattern) matches(o originPattern) bool {
	if p.any {
		return true
	}
	if p.scheme != o.scheme || p.port != o.port {
		return false
	}
	if p.host == "*" {
		return true
	}
	if suffix, ok := strings.CutPrefix(p.host, "*"); ok {
		return len(o.host) > len(suffix) && strings.HasSuffix(o.host, suffix)
	}
	return p.host == o.host
}
