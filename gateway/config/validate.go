package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Duration is a time.Duration that reads and writes as a Go duration string ("1.5s").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes the duration as a string such as "250ms".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string ("250ms") or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("duration must be a string such as \"1s\": %w", err)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Validate checks that the snapshot is internally consistent and that everything the
// data plane will compile (regular expressions, redirect codes, references between
// routes and backends) is well formed. It reports every problem it finds, each naming
// where it is.
func (s *Snapshot) Validate() error {
	v := &validator{backends: make(map[string]bool, len(s.Backends))}
	if s.SchemaVersion != SchemaVersion && s.SchemaVersion != SchemaVersion-1 {
		v.add("snapshot", "schemaVersion %d is not supported (want %d or %d)", s.SchemaVersion, SchemaVersion-1, SchemaVersion)
	}
	for i := range s.Backends {
		v.backend(&s.Backends[i])
	}
	bound := map[string]bool{}
	for i := range s.Listeners {
		l := &s.Listeners[i]
		key := net.JoinHostPort(l.Address, fmt.Sprint(l.Port))
		if bound[key] {
			v.add("listener "+l.Name, "address %s is used by another listener", key)
		}
		bound[key] = true
		v.listener(l)
	}
	if s.Mesh != nil {
		v.mesh(s.Mesh)
	}
	return errors.Join(v.errs...)
}

type validator struct {
	errs     []error
	backends map[string]bool
}

func (v *validator) add(where, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...)))
}

func (v *validator) backend(b *Backend) {
	where := "backend " + b.Name
	if b.Name == "" {
		v.add("backend", "name is empty")
	}
	if v.backends[b.Name] {
		v.add(where, "name is used twice")
	}
	v.backends[b.Name] = true
	switch b.Protocol {
	case AppProtocolHTTP1, AppProtocolH2C, AppProtocolWebSocket:
	default:
		v.add(where, "protocol %q is not one of http, h2c, ws", b.Protocol)
	}
	for _, e := range b.Endpoints {
		if _, _, err := net.SplitHostPort(e.Address); err != nil {
			v.add(where, "endpoint %q: %v", e.Address, err)
		}
	}
	if cb := b.CircuitBreaker; cb != nil && (cb.MaxConnections < 0 || cb.MaxPendingRequests < 0 || cb.MaxRequests < 0 || cb.MaxRetries < 0) {
		v.add(where, "circuit breaker caps must not be negative")
	}
	if od := b.OutlierDetection; od != nil {
		if od.Consecutive5xx < 0 || od.ConsecutiveGatewayErrors < 0 || od.Interval < 0 || od.BaseEjectionTime <= 0 ||
			od.MaxEjectionPercent < 0 || od.MaxEjectionPercent > 100 {
			v.add(where, "outlier detection needs a positive baseEjectionTime, counts not negative and maxEjectionPercent 0-100")
		}
	}
	if hc := b.HealthCheck; hc != nil {
		if !strings.HasPrefix(hc.Path, "/") || hc.Interval <= 0 || hc.Timeout <= 0 || hc.HealthyThreshold < 1 || hc.UnhealthyThreshold < 1 {
			v.add(where, "health check needs a path starting with /, positive interval and timeout, and thresholds of at least 1")
		}
	}
	if b.TLS != nil {
		v.upstreamTLS(where+" tls", b.TLS)
	}
}

func (v *validator) listener(l *Listener) {
	where := "listener " + l.Name
	if l.Port < 0 || l.Port > 65535 {
		v.add(where, "port %d is out of range", l.Port)
	}
	if l.Address != "" && net.ParseIP(l.Address) == nil {
		v.add(where, "address %q is not an IP address", l.Address)
	}
	if l.Protocol != ProtocolHTTP && l.Protocol != ProtocolHTTPS {
		v.add(where, "protocol %q is not HTTP or HTTPS", l.Protocol)
	}
	hosts := map[string]bool{}
	for i := range l.VirtualHosts {
		vh := &l.VirtualHosts[i]
		vwhere := where + " virtual host " + vh.Name
		if hosts[vh.Hostname] {
			v.add(vwhere, "hostname %q is served by another virtual host on this listener", vh.Hostname)
		}
		hosts[vh.Hostname] = true
		if l.Protocol == ProtocolHTTPS && (vh.TLS == nil || len(vh.TLS.Certificates) == 0) {
			v.add(vwhere, "HTTPS needs at least one certificate")
		}
		if vh.TLS != nil && vh.TLS.ClientValidation != nil {
			v.clientValidation(vwhere, l.Protocol, vh.TLS.ClientValidation)
		}
		for j := range vh.Routes {
			v.route(vwhere, &vh.Routes[j])
		}
	}
}

// clientValidation checks a virtual host's client certificate settings. The PEM is
// parsed by the data plane, which rejects a bundle without certificates.
func (v *validator) clientValidation(where string, p Protocol, cv *ClientValidation) {
	if p != ProtocolHTTPS {
		v.add(where, "client validation needs an HTTPS listener")
	}
	switch cv.Mode {
	case ClientValidationRequired, ClientValidationOptional:
	default:
		v.add(where, "client validation mode %q is not %s or %s", cv.Mode, ClientValidationRequired, ClientValidationOptional)
	}
	if len(cv.CACertificates) == 0 {
		v.add(where, "client validation needs at least one CA certificate")
	}
	for _, ca := range cv.CACertificates {
		if !strings.Contains(ca.PEM, "-----BEGIN CERTIFICATE-----") {
			v.add(where, "CA certificate %q holds no PEM certificate", ca.Name)
		}
	}
}

func (v *validator) route(where string, r *Route) {
	where += " route " + r.Name
	for i := range r.Rules {
		rule := &r.Rules[i]
		rwhere := fmt.Sprintf("%s rule %d", where, i)
		for j := range rule.Matches {
			v.match(fmt.Sprintf("%s match %d", rwhere, j), &rule.Matches[j])
		}
		v.filters(rwhere, rule.Filters)
		for j := range rule.Backends {
			b := &rule.Backends[j]
			bwhere := fmt.Sprintf("%s backend %d", rwhere, j)
			if b.Weight < 0 {
				v.add(bwhere, "weight %d is negative", b.Weight)
			}
			if b.Invalid == nil && !v.backends[b.Backend] {
				v.add(bwhere, "backend %q is not defined", b.Backend)
			}
			v.filters(bwhere, b.Filters)
		}
		if rule.Retry != nil {
			v.retry(rwhere+" retry", rule.Retry)
		}
		if hr := rule.HeaderRoute; hr != nil {
			v.headerRoute(rwhere+" header route", hr, len(rule.Backends))
		}
	}
}

func (v *validator) headerRoute(where string, hr *HeaderRoute, backends int) {
	if len(hr.Headers) == 0 {
		v.add(where, "names no header")
	}
	for _, h := range hr.Headers {
		if !httpguts.ValidHeaderFieldName(h.Name) {
			v.add(where, "header name %q is not a valid HTTP header name", h.Name)
		}
	}
	if hr.Backend < 0 || hr.Backend >= backends {
		v.add(where, "backend index %d is not one of the rule's %d backends", hr.Backend, backends)
	}
}

// retryConditions are the RetryCondition values a policy may name.
var retryConditions = map[RetryCondition]bool{RetryConnectFailure: true, RetryReset: true,
	RetryTimeout: true, RetryGatewayError: true, Retry5xx: true, RetryStatusCodesOnly: true}

func (v *validator) retry(where string, r *Retry) {
	if r.Attempts < 0 {
		v.add(where, "attempts %d is negative", r.Attempts)
	}
	for _, c := range r.Codes {
		if c < 400 || c > 599 {
			v.add(where, "status code %d is not in 400-599", c)
		}
	}
	for _, on := range r.On {
		if !retryConditions[on] {
			v.add(where, "condition %q is not one of connect-failure, reset, timeout, gateway-error, 5xx", on)
		}
	}
	if r.Backoff < 0 || r.MaxBackoff < 0 || r.PerTryTimeout < 0 {
		v.add(where, "durations must not be negative")
	}
	if r.MaxBackoff != 0 && r.MaxBackoff < r.Backoff {
		v.add(where, "maxBackoff %v is shorter than backoff %v", r.MaxBackoff.D(), r.Backoff.D())
	}
	if b := r.Budget; b != nil && (b.Percent < 0 || b.Percent > 100 || b.MinRetriesPerSecond < 0) {
		v.add(where, "budget percent must be 0-100 and minRetriesPerSecond not negative")
	}
}

func (v *validator) match(where string, m *Match) {
	if m.Path != nil {
		switch m.Path.Type {
		case PathExact, PathPrefix:
			if !strings.HasPrefix(m.Path.Value, "/") {
				v.add(where, "path %q must start with /", m.Path.Value)
			}
		case PathRegularExpression:
			v.regex(where+" path", m.Path.Value)
		default:
			v.add(where, "path match type %q is not supported", m.Path.Type)
		}
	}
	for _, list := range [][]ValueMatch{m.Headers, m.QueryParams} {
		for _, h := range list {
			if h.Name == "" {
				v.add(where, "a header or query match has no name")
			}
			switch h.Type {
			case MatchExact:
			case MatchRegularExpression:
				v.regex(where+" "+h.Name, h.Value)
			default:
				v.add(where, "match type %q for %q is not supported", h.Type, h.Name)
			}
		}
	}
}

func (v *validator) regex(where, expr string) {
	if _, err := regexp.Compile(expr); err != nil {
		v.add(where, "invalid regular expression %q: %v", expr, err)
	}
}

func (v *validator) filters(where string, fs []Filter) {
	for i := range fs {
		f := &fs[i]
		fwhere := fmt.Sprintf("%s filter %d (%s)", where, i, f.Type)
		switch f.Type {
		case FilterRequestRedirect:
			if f.RequestRedirect == nil {
				v.add(fwhere, "settings are missing")
				continue
			}
			switch f.RequestRedirect.StatusCode {
			case 0, 301, 302, 303, 307, 308:
			default:
				v.add(fwhere, "status code %d is not a redirect code", f.RequestRedirect.StatusCode)
			}
		case FilterRequestMirror:
			if f.RequestMirror == nil {
				v.add(fwhere, "settings are missing")
				continue
			}
			if f.RequestMirror.Backend != "" && !v.backends[f.RequestMirror.Backend] {
				v.add(fwhere, "backend %q is not defined", f.RequestMirror.Backend)
			}
			if fr := f.RequestMirror.Fraction; fr != nil && (fr.Denominator <= 0 || fr.Numerator < 0 || fr.Numerator > fr.Denominator) {
				v.add(fwhere, "fraction %d/%d is out of range", fr.Numerator, fr.Denominator)
			}
		case FilterRequestHeaderModifier:
			if f.RequestHeaderModifier == nil {
				v.add(fwhere, "settings are missing")
			}
		case FilterResponseHeaderModifier:
			if f.ResponseHeaderModifier == nil {
				v.add(fwhere, "settings are missing")
			}
		case FilterURLRewrite:
			if f.URLRewrite == nil {
				v.add(fwhere, "settings are missing")
			}
		case FilterCORS:
			if f.CORS == nil {
				v.add(fwhere, "settings are missing")
			}
		default:
			// Filters of Switchyard's own kinds are checked by their plugin's Validate.
		}
	}
}
