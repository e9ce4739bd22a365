// Package cors implements the Gateway API CORS filter: it answers preflight requests
// itself and adds the CORS response headers to allowed cross-origin requests.
package cors

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/plugins"
	"github.com/switchyard-dev/switchyard/plugins/internal/respwriter"
)

func init() { plugins.Register(config.FilterCORS, plugin{}) }

// defaultMaxAge is the Gateway API's default preflight cache time, in seconds.
const defaultMaxAge = 5

type plugin struct{}

// Validate checks the CORS settings.
func (plugin) Validate(spec *config.Filter) error {
	c := spec.CORS
	if c == nil {
		return errors.New("settings are missing")
	}
	for i, o := range c.AllowOrigins {
		if _, err := parseOrigin(o); err != nil {
			return fmt.Errorf("allowOrigins[%d]: %w", i, err)
		}
	}
	for i, m := range c.AllowMethods {
		if m != "*" && !httpguts.ValidHeaderFieldName(m) {
			return fmt.Errorf("allowMethods[%d]: %q is not an HTTP method", i, m)
		}
	}
	for _, list := range []struct {
		field string
		names []string
	}{{"allowHeaders", c.AllowHeaders}, {"exposeHeaders", c.ExposeHeaders}} {
		for i, h := range list.names {
			if h != "*" && !httpguts.ValidHeaderFieldName(h) {
				return fmt.Errorf("%s[%d]: %q is not a valid header name", list.field, i, h)
			}
		}
	}
	if c.MaxAge < 0 {
		return fmt.Errorf("maxAge %d is negative", c.MaxAge)
	}
	return nil
}

// policy is a CORS filter compiled for per-request use.
type policy struct {
	origins     []originPattern
	credentials bool
	// anyMethod and anyHeader record a "*" in the lists; the request's own values are
	// then echoed, which is always allowed and required with credentials.
	anyMethod bool
	methods   string
	anyHeader bool
	headers   string
	// anyExpose records a "*" in exposeHeaders. Without credentials "*" is sent as
	// is; with credentials browsers do not honour it, so the response's own header
	// names are listed instead.
	anyExpose bool
	expose    string
	maxAge    string
}

// Provision builds the CORS middleware.
func (p plugin) Provision(_ plugins.Context, spec *config.Filter) (plugins.Middleware, error) {
	if err := p.Validate(spec); err != nil {
		return nil, err
	}
	c := spec.CORS
	pol := &policy{credentials: c.AllowCredentials}
	for _, o := range c.AllowOrigins {
		pat, _ := parseOrigin(o)
		pol.origins = append(pol.origins, pat)
	}
	pol.anyMethod, pol.methods = wildcardOrList(c.AllowMethods)
	pol.anyHeader, pol.headers = wildcardOrList(c.AllowHeaders)
	pol.anyExpose, pol.expose = wildcardOrList(c.ExposeHeaders)
	maxAge := int(c.MaxAge)
	if maxAge == 0 {
		maxAge = defaultMaxAge
	}
	pol.maxAge = strconv.Itoa(maxAge)
	return pol.middleware, nil
}

func wildcardOrList(values []string) (bool, string) {
	if slices.Contains(values, "*") {
		return true, ""
	}
	return false, strings.Join(values, ", ")
}

func (p *policy) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		allowed := p.allows(origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			// A preflight is answered here and never reaches the backend. A denied
			// origin gets an OK without CORS headers, so the browser refuses the real
			// request.
			h := w.Header()
			addVaryOrigin(h)
			if allowed {
				p.preflightHeaders(h, r, origin)
			}
			h.Set("Content-Length", "0")
			w.WriteHeader(http.StatusOK)
			return
		}
		if !allowed {
			// The answer still depends on the origin, which caches must know.
			addVaryOrigin(w.Header())
			next.ServeHTTP(w, r)
			return
		}
		rw := &respwriter.Writer{ResponseWriter: w, Edit: func(h http.Header) {
			p.actualHeaders(h, origin)
		}}
		next.ServeHTTP(rw, r)
		rw.Finish()
	})
}

// preflightHeaders answers which method and headers the real request may use.
func (p *policy) preflightHeaders(h http.Header, r *http.Request, origin string) {
	p.originHeaders(h, origin)
	if p.anyMethod {
		h.Set("Access-Control-Allow-Methods", r.Header.Get("Access-Control-Request-Method"))
	} else if p.methods != "" {
		h.Set("Access-Control-Allow-Methods", p.methods)
	}
	if p.anyHeader {
		if requested := r.Header.Values("Access-Control-Request-Headers"); len(requested) > 0 {
			h.Set("Access-Control-Allow-Headers", strings.Join(requested, ", "))
		}
	} else if p.headers != "" {
		h.Set("Access-Control-Allow-Headers", p.headers)
	}
	if p.expose != "" {
		h.Set("Access-Control-Expose-Headers", p.expose)
	} else if p.anyExpose && !p.credentials {
		h.Set("Access-Control-Expose-Headers", "*")
	}
	h.Set("Access-Control-Max-Age", p.maxAge)
}

// actualHeaders are set on the response to an allowed cross-origin request. They
// replace any the backend sent, so the browser sees one consistent answer.
func (p *policy) actualHeaders(h http.Header, origin string) {
	p.originHeaders(h, origin)
	switch {
	case p.expose != "":
		h.Set("Access-Control-Expose-Headers", p.expose)
	case p.anyExpose && !p.credentials:
		h.Set("Access-Control-Expose-Headers", "*")
	case p.anyExpose:
		if names := exposableNames(h); names != "" {
			h.Set("Access-Control-Expose-Headers", names)
		}
	}
}

// exposableNames lists a response's header names for Access-Control-Expose-Headers,
// sorted so the value is stable, leaving out the CORS headers themselves and
// Set-Cookie, which browsers never expose.
func exposableNames(h http.Header) string {
	names := make([]string, 0, len(h))
	for name := range h {
		if strings.HasPrefix(name, "Access-Control-") || name == "Set-Cookie" || name == "Vary" {
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func (p *policy) originHeaders(h http.Header, origin string) {
	// The request's origin is echoed rather than "*": it is always correct, and
	// required when credentials are allowed.
	h.Set("Access-Control-Allow-Origin", origin)
	if p.credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	} else {
		h.Del("Access-Control-Allow-Credentials")
	}
	addVaryOrigin(h)
}

// addVaryOrigin adds Origin to Vary unless it is listed already.
func addVaryOrigin(h http.Header) {
	for _, v := range h.Values("Vary") {
		for field := range strings.SplitSeq(v, ",") {
			if f := strings.TrimSpace(field); f == "*" || strings.EqualFold(f, "Origin") {
				return
			}
		}
	}
	h.Add("Vary", "Origin")
}

func (p *policy) allows(origin string) bool {
	o, err := parseOrigin(origin)
	if err != nil || strings.Contains(o.host, "*") {
		return false
	}
	for _, pat := range p.origins {
		if pat.matches(o) {
			return true
		}
	}
	return false
}
