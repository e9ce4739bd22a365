package mesh

import (
	"errors"
	"net/netip"
	"strings"
)

// The ports of destinations that name none: an HTTP request's, and an absolute-form
// request's for an https URI.
const (
	DefaultHTTPPort  = 80
	DefaultHTTPSPort = 443
)

// Destination is where a request to the node replica asks to go, as its absolute-form
// URI, its Host header or its CONNECT authority names it.
type Destination struct {
	// Host is the host name, lower-case and without a trailing dot, or the IP
	// address's text without brackets. It shares memory with the request.
	Host string
	// Addr is the host as an IP address, when it is one.
	Addr netip.Addr
	// Port is the port named, or the default port when none is.
	Port int
}

// Errors of ParseDestination.
var (
	errNoHost      = errors.New("the request names no destination host")
	errBadPort     = errors.New("the destination's port is not a number from 1 to 65535")
	errPortMissing = errors.New("CONNECT needs a destination port")
	errBadHost     = errors.New("the destination host is not a host name or IP address")
)

// ParseDestination reads a request's destination from its authority ("host",
// "host:port", "[v6]:port"), which net/http puts in Request.Host for absolute-form
// and origin-form requests and for CONNECT alike. defaultPort is used when the
// authority names no port; 0 makes a port mandatory (CONNECT). It allocates only
// when the host has upper-case letters.
func ParseDestination(authority string, defaultPort int) (Destination, error) {
	host, portText, err := splitAuthority(authority)
	if err != nil {
		return Destination{}, err
	}
	d := Destination{Port: defaultPort}
	if portText != "" {
		if d.Port = parsePort(portText); d.Port == 0 {
			return Destination{}, errBadPort
		}
	} else if defaultPort == 0 {
		return Destination{}, errPortMissing
	}
	if addr, ok := parseIP(host); ok {
		if addr.Zone() != "" {
			return Destination{}, errBadHost
		}
		d.Host, d.Addr = host, addr.Unmap()
		return d, nil
	}
	host = strings.TrimSuffix(host, ".")
	if !validHostName(host) {
		return Destination{}, errBadHost
	}
	if hasUpper(host) {
		host = strings.ToLower(host)
	}
	d.Host = host
	return d, nil
}

// splitAuthority separates the host from the port text (empty when there is no
// port). A bracketed host is an IPv6 address; an unbracketed host with more than
// one colon is taken as an IPv6 address without a port.
func splitAuthority(a string) (host, port string, err error) {
	if a == "" {
		return "", "", errNoHost
	}
	if a[0] == '[' {
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return "", "", errBadHost
		}
		host, rest := a[1:end], a[end+1:]
		switch {
		case rest == "":
		case rest[0] == ':':
			port = rest[1:]
			if port == "" {
				return "", "", errBadPort
			}
		default:
			return "", "", errBadHost
		}
		if _, err := netip.ParseAddr(host); err != nil || !strings.Contains(host, ":") {
			return "", "", errBadHost
		}
		return host, port, nil
	}
	i := strings.LastIndexByte(a, ':')
	switch {
	case i < 0:
		return a, "", nil
	case strings.IndexByte(a, ':') != i:
		// Several colons without brackets: an IPv6 address alone.
		return a, "", nil
	case i == len(a)-1:
		return "", "", errBadPort
	}
	if i == 0 {
		return "", "", errNoHost
	}
	return a[:i], a[i+1:], nil
}

// parsePort reads a decimal port from 1 to 65535, or returns 0.
func parsePort(s string) int {
	if len(s) > 5 {
		return 0
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	if n < 1 || n > 65535 {
		return 0
	}
	return n
}

// validHostName reports whether s is a DNS name: labels of letters, digits, hyphens
// and underscores (which Service records use), none empty or longer than 63, 253
// bytes at most.
func validHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
			continue
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
		label++
		if label > 63 {
			return false
		}
	}
	return label > 0
}

// parseIP parses s as an IP address when it looks like one. Failing to parse
// allocates an error, so host names are told apart first.
func parseIP(s string) (netip.Addr, bool) {
	if !looksLikeIP(s) {
		return netip.Addr{}, false
	}
	addr, err := netip.ParseAddr(s)
	return addr, err == nil
}

// looksLikeIP reports whether s could be an IP address: it has a colon (IPv6), or
// only digits and dots (IPv4).
func looksLikeIP(s string) bool {
	if strings.IndexByte(s, ':') >= 0 {
		return true
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return true
		}
	}
	return false
}
