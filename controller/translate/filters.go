package translate

import (
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// filters translates the filter list of a rule or of a backendRef, at owner. matches
// are the rule's matches, which decide whether ReplacePrefixMatch is allowed.
func (c *routeCompiler) filters(in []gwv1.HTTPRouteFilter, owner *fieldPath, matches []gwv1.HTTPRouteMatch) ([]config.Filter, *routeError) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]config.Filter, 0, len(in))
	hasRedirect, hasRewrite := false, false
	for i := range in {
		fwhere := owner.item("filters", i)
		f, err := c.filter(&in[i], &fwhere, matches)
		if err != nil {
			return nil, err
		}
		hasRedirect = hasRedirect || f.Type == config.FilterRequestRedirect
		hasRewrite = hasRewrite || f.Type == config.FilterURLRewrite
		if hasRedirect && hasRewrite {
			return nil, &routeError{reason: gwv1.RouteReasonIncompatibleFilters,
				detail: fwhere.String() + ": RequestRedirect and URLRewrite filters cannot be combined"}
		}
		out = append(out, f)
	}
	return out, nil
}

func (c *routeCompiler) filter(f *gwv1.HTTPRouteFilter, where *fieldPath, matches []gwv1.HTTPRouteMatch) (config.Filter, *routeError) {
	out := config.Filter{Type: config.FilterType(f.Type)}
	if missingSettings(f) {
		return out, unsupported(where, "filter type %s needs its settings", f.Type)
	}
	switch f.Type {
	case gwv1.HTTPRouteFilterRequestHeaderModifier:
		out.RequestHeaderModifier = headerModifier(f.RequestHeaderModifier)
	case gwv1.HTTPRouteFilterResponseHeaderModifier:
		out.ResponseHeaderModifier = headerModifier(f.ResponseHeaderModifier)
	case gwv1.HTTPRouteFilterRequestRedirect:
		rwhere := where.field("requestRedirect")
		r, err := redirect(f.RequestRedirect, &rwhere, matches)
		if err != nil {
			return out, err
		}
		out.RequestRedirect = r
	case gwv1.HTTPRouteFilterURLRewrite:
		pwhere := where.field("urlRewrite.path")
		path, err := pathModifier(f.URLRewrite.Path, &pwhere, matches)
		if err != nil {
			return out, err
		}
		out.URLRewrite = &config.URLRewrite{Hostname: str(f.URLRewrite.Hostname, ""), Path: path}
	case gwv1.HTTPRouteFilterRequestMirror:
		mwhere := where.field("requestMirror")
		m, err := c.mirror(f.RequestMirror, &mwhere)
		if err != nil {
			return out, err
		}
		out.RequestMirror = m
	case gwv1.HTTPRouteFilterCORS:
		out.CORS = cors(f.CORS)
	default:
		// ExtensionRef, ExternalAuth and unknown types: serving the rule without the
		// filter would silently drop what it was meant to do (for example
		// authentication), so the route is refused instead.
		return out, unsupportedIn(where, "type", "filter type %q is not supported", f.Type)
	}
	return out, nil
}

// missingSettings reports a filter of a supported type without the settings its type
// needs.
func missingSettings(f *gwv1.HTTPRouteFilter) bool {
	switch f.Type {
	case gwv1.HTTPRouteFilterRequestHeaderModifier:
		return f.RequestHeaderModifier == nil
	case gwv1.HTTPRouteFilterResponseHeaderModifier:
		return f.ResponseHeaderModifier == nil
	case gwv1.HTTPRouteFilterRequestRedirect:
		return f.RequestRedirect == nil
	case gwv1.HTTPRouteFilterURLRewrite:
		return f.URLRewrite == nil
	case gwv1.HTTPRouteFilterRequestMirror:
		return f.RequestMirror == nil
	case gwv1.HTTPRouteFilterCORS:
		return f.CORS == nil
	default:
		return false
	}
}

func headerModifier(h *gwv1.HTTPHeaderFilter) *config.HeaderModifier {
	out := &config.HeaderModifier{Remove: append([]string(nil), h.Remove...)}
	for _, s := range h.Set {
		out.Set = append(out.Set, config.Header{Name: string(s.Name), Value: s.Value})
	}
	for _, a := range h.Add {
		out.Add = append(out.Add, config.Header{Name: string(a.Name), Value: a.Value})
	}
	return out
}

func redirect(r *gwv1.HTTPRequestRedirectFilter, where *fieldPath, matches []gwv1.HTTPRouteMatch) (*config.Redirect, *routeError) {
	out := &config.Redirect{Scheme: str(r.Scheme, ""), Hostname: str(r.Hostname, ""), StatusCode: 302}
	if out.Scheme != "" && out.Scheme != "http" && out.Scheme != "https" {
		return nil, unsupportedIn(where, "scheme", "scheme %q is not http or https", out.Scheme)
	}
	if r.Port != nil {
		if *r.Port < 1 || *r.Port > 65535 {
			return nil, unsupportedIn(where, "port", "port %d is out of range", *r.Port)
		}
		out.Port = int(*r.Port)
	}
	if r.StatusCode != nil {
		switch *r.StatusCode {
		case 301, 302, 303, 307, 308:
			out.StatusCode = *r.StatusCode
		default:
			return nil, unsupportedIn(where, "statusCode", "status code %d is not a supported redirect code", *r.StatusCode)
		}
	}
	pwhere := where.field("path")
	path, err := pathModifier(r.Path, &pwhere, matches)
	if err != nil {
		return nil, err
	}
	out.Path = path
	return out, nil
}

// pathModifier translates a redirect or rewrite path. ReplacePrefixMatch only makes
// sense when every match of the rule is a PathPrefix match (a rule without matches
// matches the prefix "/").
func pathModifier(p *gwv1.HTTPPathModifier, where *fieldPath, matches []gwv1.HTTPRouteMatch) (*config.PathModifier, *routeError) {
	if p == nil {
		return nil, nil
	}
	switch p.Type {
	case gwv1.FullPathHTTPPathModifier:
		if p.ReplaceFullPath == nil {
			return nil, unsupportedIn(where, "replaceFullPath", "replaceFullPath must be set for type ReplaceFullPath")
		}
		return &config.PathModifier{Type: config.ReplaceFullPath, ReplaceFullPath: *p.ReplaceFullPath}, nil
	case gwv1.PrefixMatchHTTPPathModifier:
		if p.ReplacePrefixMatch == nil {
			return nil, unsupportedIn(where, "replacePrefixMatch", "replacePrefixMatch must be set for type ReplacePrefixMatch")
		}
		for i, m := range matches {
			if m.Path != nil && str(m.Path.Type, string(gwv1.PathMatchPathPrefix)) != string(gwv1.PathMatchPathPrefix) {
				return nil, unsupportedIn(where, "replacePrefixMatch",
					"ReplacePrefixMatch needs PathPrefix matches, but match %d is of type %s", i, *m.Path.Type)
			}
		}
		return &config.PathModifier{Type: config.ReplacePrefixMatch, ReplacePrefixMatch: *p.ReplacePrefixMatch}, nil
	default:
		return nil, unsupportedIn(where, "type", "path modifier type %q is not supported", p.Type)
	}
}

// mirror resolves a RequestMirror filter. An unresolvable backend leaves the mirror
// without a destination (it then does nothing) and is reported in ResolvedRefs.
func (c *routeCompiler) mirror(m *gwv1.HTTPRequestMirrorFilter, where *fieldPath) (*config.Mirror, *routeError) {
	out := &config.Mirror{}
	switch {
	case m.Percent != nil && m.Fraction != nil:
		return nil, unsupported(where, "only one of percent and fraction may be set")
	case m.Percent != nil:
		if *m.Percent < 0 || *m.Percent > 100 {
			return nil, unsupportedIn(where, "percent", "percent %d is not in 0-100", *m.Percent)
		}
		out.Fraction = &config.Fraction{Numerator: *m.Percent, Denominator: 100}
	case m.Fraction != nil:
		den := int32(100)
		if m.Fraction.Denominator != nil {
			den = *m.Fraction.Denominator
		}
		if den < 1 || m.Fraction.Numerator < 0 || m.Fraction.Numerator > den {
			return nil, unsupportedIn(where, "fraction", "fraction %d/%d is not between 0 and 1", m.Fraction.Numerator, den)
		}
		out.Fraction = &config.Fraction{Numerator: m.Fraction.Numerator, Denominator: den}
	}
	r := c.resolve(m.BackendRef)
	if r.reason != "" {
		bwhere := where.field("backendRef")
		c.refFailed(r.reason, &bwhere, r.detail)
	}
	out.Backend = r.name
	return out, nil
}

func cors(f *gwv1.HTTPCORSFilter) *config.CORS {
	out := &config.CORS{MaxAge: f.MaxAge}
	if f.AllowCredentials != nil {
		out.AllowCredentials = *f.AllowCredentials
	}
	for _, o := range f.AllowOrigins {
		out.AllowOrigins = append(out.AllowOrigins, string(o))
	}
	for _, m := range f.AllowMethods {
		out.AllowMethods = append(out.AllowMethods, string(m))
	}
	for _, h := range f.AllowHeaders {
		out.AllowHeaders = append(out.AllowHeaders, string(h))
	}
	for _, h := range f.ExposeHeaders {
		out.ExposeHeaders = append(out.ExposeHeaders, string(h))
	}
	return out
}
