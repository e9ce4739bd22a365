package translate

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// compiledRoute is an HTTPRoute's rules in IR form, with what went wrong on the way.
type compiledRoute struct {
	rules []config.Rule
	// invalidReason is set when the route cannot be served at all (a bad regular
	// expression, an unsupported filter, ...); the route is then not programmed.
	invalidReason gwv1.RouteConditionReason
	invalidDetail string
	// refsReason is set when some backend reference could not be resolved; the route
	// is still served and the share of that reference is answered with 500.
	refsReason gwv1.RouteConditionReason
	refsDetail string
	// tlsPolicies are the BackendTLSPolicies that target the route's backends.
	tlsPolicies []types.NamespacedName
}

// routeError makes a route unservable.
type routeError struct {
	reason gwv1.RouteConditionReason
	detail string
}

func (e *routeError) Error() string { return e.detail }

func unsupported(where *fieldPath, format string, args ...any) *routeError {
	return &routeError{reason: gwv1.RouteReasonUnsupportedValue, detail: where.String() + ": " + fmt.Sprintf(format, args...)}
}

// unsupportedIn makes a route unservable for a value in the named field below where.
func unsupportedIn(where *fieldPath, field, format string, args ...any) *routeError {
	p := where.field(field)
	return unsupported(&p, format, args...)
}

// routeCompiler carries what compiling one route needs.
type routeCompiler struct {
	ix     *index
	route  *gwv1.HTTPRoute
	result *compiledRoute
}

// refFailed records the first unresolved reference, which becomes ResolvedRefs=False.
// The detail names where the reference is; it is rendered for the first one only.
func (c *routeCompiler) refFailed(reason gwv1.RouteConditionReason, where *fieldPath, detail string) {
	if c.result.refsReason == "" {
		c.result.refsReason, c.result.refsDetail = reason, where.String()+": "+detail
	}
}

// compileRoute translates all rules of a route. Any invalid rule makes the whole
// route invalid, so that a route is either served as written or not at all.
func (ix *index) compileRoute(route *gwv1.HTTPRoute) *compiledRoute {
	c := &routeCompiler{ix: ix, route: route, result: &compiledRoute{}}
	rules := make([]config.Rule, 0, len(route.Spec.Rules))
	for i := range route.Spec.Rules {
		where := rootItem("spec.rules", i)
		rule, err := c.rule(&route.Spec.Rules[i], &where)
		if err != nil {
			c.result.invalidReason, c.result.invalidDetail = err.reason, err.detail
			c.result.rules = nil
			return c.result
		}
		rules = append(rules, rule)
	}
	c.shiftRollouts(rules)
	c.result.rules = rules
	c.result.tlsPolicies = policyKeys(c.result.tlsPolicies)
	return c.result
}

func (c *routeCompiler) rule(r *gwv1.HTTPRouteRule, where *fieldPath) (config.Rule, *routeError) {
	out := config.Rule{Name: str(r.Name, "")}
	if len(r.Matches) > 0 {
		out.Matches = make([]config.Match, 0, len(r.Matches))
	}
	for j := range r.Matches {
		mwhere := where.item("matches", j)
		m, err := compileMatch(&r.Matches[j], &mwhere)
		if err != nil {
			return out, err
		}
		out.Matches = append(out.Matches, m)
	}
	filters, err := c.filters(r.Filters, where, r.Matches)
	if err != nil {
		return out, err
	}
	out.Filters = filters
	if len(r.BackendRefs) > 0 {
		out.Backends = make([]config.BackendRef, 0, len(r.BackendRefs))
	}
	for k := range r.BackendRefs {
		bwhere := where.item("backendRefs", k)
		b, err := c.backendRef(&r.BackendRefs[k], &bwhere, r.Matches)
		if err != nil {
			return out, err
		}
		out.Backends = append(out.Backends, b)
	}
	if out.Timeouts, err = compileTimeouts(r.Timeouts, where); err != nil {
		return out, err
	}
	if out.Retry, err = compileRetry(r.Retry, where); err != nil {
		return out, err
	}
	return out, nil
}

// compileMatch translates one HTTPRouteMatch, applying the API defaults (PathPrefix
// "/", Exact) and checking regular expressions with the data plane's RE2 engine.
func compileMatch(m *gwv1.HTTPRouteMatch, where *fieldPath) (config.Match, *routeError) {
	var out config.Match
	if m.Path != nil {
		p := &config.PathMatch{Type: config.PathMatchType(str(m.Path.Type, string(gwv1.PathMatchPathPrefix))), Value: str(m.Path.Value, "/")}
		switch p.Type {
		case config.PathExact, config.PathPrefix:
			if !strings.HasPrefix(p.Value, "/") {
				return out, unsupportedIn(where, "path.value", "path %q must start with \"/\"", p.Value)
			}
		case config.PathRegularExpression:
			if _, err := regexp.Compile(p.Value); err != nil {
				return out, unsupportedIn(where, "path.value", "invalid regular expression %q: %v", p.Value, err)
			}
		default:
			return out, unsupportedIn(where, "path.type", "path match type %q is not supported", p.Type)
		}
		out.Path = p
	}
	var err *routeError
	if out.Headers, err = compileHeaderMatches(m.Headers, where); err != nil {
		return out, err
	}
	if out.QueryParams, err = compileQueryMatches(m.QueryParams, where); err != nil {
		return out, err
	}
	out.Method = str(m.Method, "")
	return out, nil
}

// compileHeaderMatches translates header conditions. Header names are
// case-insensitive, and of equivalent entries the first counts.
func compileHeaderMatches(in []gwv1.HTTPHeaderMatch, where *fieldPath) ([]config.ValueMatch, *routeError) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]config.ValueMatch, 0, len(in))
	// seen holds the lower-cased names so far; a match has a few headers at most.
	var seenBuf [8]string
	seen := seenBuf[:0]
	for i := range in {
		h := &in[i]
		if len(in) > 1 {
			name := strings.ToLower(string(h.Name))
			if name != "" && slices.Contains(seen, name) {
				continue
			}
			seen = append(seen, name)
		}
		hwhere := where.item("headers", i)
		vm, err := compileValueMatch(str(h.Type, string(gwv1.HeaderMatchExact)), string(h.Name), h.Value, &hwhere)
		if err != nil {
			return out, err
		}
		out = append(out, vm)
	}
	return out, nil
}

// compileQueryMatches translates query parameter conditions; names are
// case-sensitive, and of entries with the same name the first counts.
func compileQueryMatches(in []gwv1.HTTPQueryParamMatch, where *fieldPath) ([]config.ValueMatch, *routeError) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]config.ValueMatch, 0, len(in))
	for i := range in {
		q := &in[i]
		// Every entry so far is in out: a bad entry ends translation.
		if q.Name != "" && slices.ContainsFunc(out, func(vm config.ValueMatch) bool { return vm.Name == string(q.Name) }) {
			continue
		}
		qwhere := where.item("queryParams", i)
		vm, err := compileValueMatch(str(q.Type, string(gwv1.QueryParamMatchExact)), string(q.Name), q.Value, &qwhere)
		if err != nil {
			return out, err
		}
		out = append(out, vm)
	}
	return out, nil
}

func compileValueMatch(matchType, name, value string, where *fieldPath) (config.ValueMatch, *routeError) {
	out := config.ValueMatch{Type: config.StringMatchType(matchType), Name: name, Value: value}
	if name == "" {
		return out, unsupportedIn(where, "name", "name must not be empty")
	}
	switch out.Type {
	case config.MatchExact:
	case config.MatchRegularExpression:
		if _, err := regexp.Compile(value); err != nil {
			return out, unsupportedIn(where, "value", "invalid regular expression %q: %v", value, err)
		}
	default:
		return out, unsupportedIn(where, "type", "match type %q is not supported", matchType)
	}
	return out, nil
}

// compileTimeouts parses the rule's timeouts. A backendRequest timeout longer than a
// non-zero request timeout is invalid: the request timeout covers every attempt.
func compileTimeouts(t *gwv1.HTTPRouteTimeouts, rule *fieldPath) (*config.Timeouts, *routeError) {
	if t == nil || (t.Request == nil && t.BackendRequest == nil) {
		return nil, nil
	}
	where := rule.field("timeouts")
	out := &config.Timeouts{}
	if t.Request != nil {
		d, err := parseGatewayDuration(string(*t.Request))
		if err != nil {
			return nil, unsupportedIn(&where, "request", "%v", err)
		}
		out.Request = config.Duration(d)
	}
	if t.BackendRequest != nil {
		d, err := parseGatewayDuration(string(*t.BackendRequest))
		if err != nil {
			return nil, unsupportedIn(&where, "backendRequest", "%v", err)
		}
		out.BackendRequest = config.Duration(d)
	}
	if t.Request != nil && t.BackendRequest != nil && out.Request != 0 && out.BackendRequest > out.Request {
		return nil, unsupportedIn(&where, "backendRequest", "backendRequest timeout %s is longer than request timeout %s", *t.BackendRequest, *t.Request)
	}
	return out, nil
}

// compileRetry parses the rule's retry policy. With no attempts given, one retry is
// made: a retry stanza asks for retries, so zero would contradict it.
func compileRetry(r *gwv1.HTTPRouteRetry, rule *fieldPath) (*config.Retry, *routeError) {
	if r == nil {
		return nil, nil
	}
	where := rule.field("retry")
	out := &config.Retry{Attempts: 1}
	if r.Attempts != nil {
		if *r.Attempts < 0 {
			return nil, unsupportedIn(&where, "attempts", "attempts %d is negative", *r.Attempts)
		}
		out.Attempts = *r.Attempts
	}
	seen := map[int]bool{}
	for _, code := range r.Codes {
		if code < 400 || code > 599 {
			return nil, unsupportedIn(&where, "codes", "status code %d is not in 400-599", code)
		}
		if !seen[int(code)] {
			seen[int(code)] = true
			out.Codes = append(out.Codes, int(code))
		}
	}
	sort.Ints(out.Codes)
	if r.Backoff != nil {
		d, err := parseGatewayDuration(string(*r.Backoff))
		if err != nil {
			return nil, unsupportedIn(&where, "backoff", "%v", err)
		}
		out.Backoff = config.Duration(d)
	}
	return out, nil
}
