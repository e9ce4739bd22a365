// Package redirect implements the RequestRedirect filter: it answers with a redirect
// and never forwards the request.
package redirect

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
	"github.com/switchyard-dev/switchyard/plugins"
	"github.com/switchyard-dev/switchyard/plugins/internal/pathmod"
)

func init() { plugins.Register(config.FilterRequestRedirect, plugin{}) }

type plugin struct{}

// Validate checks the RequestRedirect settings.
func (plugin) Validate(spec *config.Filter) error {
	rd := spec.RequestRedirect
	if rd == nil {
		return errors.New("settings are missing")
	}
	switch rd.StatusCode {
	case 0, http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		return fmt.Errorf("status code %d is not one of 301, 302, 303, 307, 308", rd.StatusCode)
	}
	switch rd.Scheme {
	case "", "http", "https":
	default:
		return fmt.Errorf("scheme %q is not http or https", rd.Scheme)
	}
	if rd.Port < 0 || rd.Port > 65535 {
		return fmt.Errorf("port %d is out of range 1-65535", rd.Port)
	}
	if rd.Hostname != "" && !validHostname(rd.Hostname) {
		return fmt.Errorf("hostname %q is not a valid host name", rd.Hostname)
	}
	return pathmod.Validate(rd.Path)
}

// validHostname accepts DNS names and IP addresses, without a port; anything else
// would produce an unusable or ambiguous Location.
func validHostname(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return h[0] != '.' && h[0] != '-'
}

// Provision builds middleware that answers every request with a redirect; the rest of
// the chain never runs.
func (p plugin) Provision(_ plugins.Context, spec *config.Filter) (plugins.Middleware, error) {
	if err := p.Validate(spec); err != nil {
		return nil, err
	}
	rd := *spec.RequestRedirect
	code := rd.StatusCode
	if code == 0 {
		code = http.StatusFound
	}
	return func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Location"] = []string{location(&rd, r)}
			w.WriteHeader(code)
		})
	}, nil
}

// location builds the redirect target. Unset parts keep the request's. The port
// follows the Gateway API rules: an explicit port wins, a configured scheme takes its
// well-known port, otherwise the listener's port is kept; the well-known port of the
// final scheme is left out.
func location(rd *config.Redirect, r *http.Request) string {
	info := reqctx.From(r.Context())
	scheme := rd.Scheme
	if scheme == "" {
		scheme = "http"
		if r.TLS != nil || (info != nil && info.TLS) {
			scheme = "https"
		}
	}
	host, hostPort := splitHost(r.Host)
	if rd.Hostname != "" {
		host = rd.Hostname
	}
	var port int
	switch {
	case rd.Port != 0:
		port = rd.Port
	case rd.Scheme != "":
		port = wellKnownPort(scheme)
	case info != nil && info.ListenerPort != 0:
		port = info.ListenerPort
	default:
		// Without routing information the port the client used is the best guess.
		port, _ = strconv.Atoi(hostPort)
	}
	path := requestPath(rd, r, info)

	var b strings.Builder
	b.Grow(len(scheme) + len(host) + len(path) + len(r.URL.RawQuery) + 16)
	b.WriteString(scheme)
	b.WriteString("://")
	if strings.IndexByte(host, ':') >= 0 {
		// An IPv6 literal needs brackets, with or without a port.
		b.WriteByte('[')
		b.WriteString(host)
		b.WriteByte(']')
	} else {
		b.WriteString(host)
	}
	if port != 0 && port != wellKnownPort(scheme) {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(port))
	}
	b.WriteString(path)
	if r.URL.RawQuery != "" {
		b.WriteByte('?')
		b.WriteString(r.URL.RawQuery)
	}
	return b.String()
}

// requestPath is the escaped path of the Location: the request's own, or the result
// of the path modifier, with the client's escaping kept where possible.
func requestPath(rd *config.Redirect, r *http.Request, info *reqctx.Info) string {
	if rd.Path == nil {
		return r.URL.EscapedPath()
	}
	prefix := ""
	if info != nil {
		prefix = info.MatchedPrefix
	}
	u := url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath}
	pathmod.Rewrite(rd.Path, &u, prefix)
	return u.EscapedPath()
}

func wellKnownPort(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}

// splitHost separates a Host header into host and port, removing the brackets of an
// IPv6 literal. It is written out rather than using net.SplitHostPort, which
// allocates an error for the common Host without a port.
func splitHost(hostport string) (host, port string) {
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return hostport, ""
		}
		host, rest := hostport[1:end], hostport[end+1:]
		if p, ok := strings.CutPrefix(rest, ":"); ok {
			return host, p
		}
		return host, ""
	}
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 || strings.IndexByte(hostport, ':') != i {
		// No port, or an unbracketed IPv6 literal, which cannot carry one.
		return hostport, ""
	}
	return hostport[:i], hostport[i+1:]
}
