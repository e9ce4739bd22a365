package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// MatchQuery is a request to explain: GET /api/v1/routes/match's parameters.
type MatchQuery struct {
	// Host is the request's Host (a port is allowed and ignored by matching).
	Host string
	// Target is the request target: a path, escaped as on the wire, with an
	// optional "?query".
	Target string
	// Method is the request method.
	Method string
	// Header holds the request headers.
	Header http.Header
	// Port, when not 0, limits the answer to the listeners on that port.
	Port int
	// Listener, when set, limits the answer to the listener of that name.
	Listener string
	// All lists the matches whose route's hostnames do not accept the host too;
	// without it they are only counted, since on a shared gateway they are most.
	All bool
}

// MatchView is what GET /api/v1/routes/match answers.
type MatchView struct {
	// Version is the serving snapshot's version.
	Version string `json:"version"`
	// Request is the request as matched.
	Request MatchRequestView `json:"request"`
	// Listeners hold the answer of each listener the request could arrive on.
	Listeners []ListenerMatch `json:"listeners"`
}

// MatchRequestView is the request Match explained.
type MatchRequestView struct {
	// Host is the host as compared: no port, lower case, no trailing dot.
	Host string `json:"host"`
	// Path is the decoded path, as path conditions see it.
	Path string `json:"path"`
	// Query is the raw query string.
	Query string `json:"query,omitempty"`
	// Method is the request method.
	Method string `json:"method"`
	// Headers are the request headers.
	Headers http.Header `json:"headers,omitempty"`
}

// ListenerMatch is one listener's answer to a request.
type ListenerMatch struct {
	// Listener is the listener's name, Port and Protocol its own.
	Listener string `json:"listener"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
	// Result is Matched, NoRoute (404: no match holds) or NoVirtualHost (404: no
	// Gateway listener on the socket accepts the host).
	Result string `json:"result"`
	// VirtualHost is the Gateway listener the host selects; only its routes are
	// considered.
	VirtualHost string `json:"virtualHost,omitempty"`
	// Chosen is the match that serves the request.
	Chosen *RouteMatch `json:"chosen,omitempty"`
	// Candidates are every match of the virtual host in the order they are
	// considered, each with its outcome and reasons, except (unless all=true) those
	// whose route's hostnames do not accept the host.
	Candidates []MatchCandidate `json:"candidates"`
	// OmittedForHostname counts the matches left out of Candidates because their
	// route's hostnames do not accept the host.
	OmittedForHostname int `json:"omittedForHostname"`
}

// MatchCandidate is one match and what became of it.
type MatchCandidate struct {
	RouteMatch
	// Tier is how specifically the route's hostnames name the host: Exact,
	// Wildcard, Any (no hostnames) or None (they do not accept it).
	Tier string `json:"tier"`
	// TierHostname is the route hostname that places the match in Tier.
	TierHostname string `json:"tierHostname,omitempty"`
	// Outcome is Chosen, NotMatched or Outranked.
	Outcome string `json:"outcome"`
	// Reasons are the conditions that do not hold, or the precedence criterion by
	// which the chosen match ranks ahead.
	Reasons []MatchReason `json:"reasons,omitempty"`
}

// MatchReason is one reason a match loses.
type MatchReason struct {
	// Criterion is hostname, path, method, header, query or precedence.
	Criterion string `json:"criterion"`
	// Detail explains it.
	Detail string `json:"detail"`
}

// The results of ListenerMatch.
const (
	MatchResultMatched       = "Matched"
	MatchResultNoRoute       = "NoRoute"
	MatchResultNoVirtualHost = "NoVirtualHost"
)

// matchParams are the query parameters GET /api/v1/routes/match takes.
var matchParams = map[string]bool{"host": true, "path": true, "method": true, "header": true, "query": true,
	"port": true, "listener": true, "all": true}

// parseMatchQuery reads GET /api/v1/routes/match's parameters: host (required),
// path (default "/", may carry "?query"), method (default GET), header=Name:value
// and query=name=value (repeatable), port, listener and all.
func parseMatchQuery(values url.Values) (MatchQuery, error) {
	for key := range values {
		if !matchParams[key] {
			return MatchQuery{}, fmt.Errorf("%w: unknown parameter %q; the parameters are host, path, method, header, query, port, listener and all", ErrInvalid, key)
		}
	}
	q := MatchQuery{Host: values.Get("host"), Target: values.Get("path"), Method: values.Get("method"),
		Header: http.Header{}, Listener: values.Get("listener")}
	if q.Host == "" {
		return q, fmt.Errorf("%w: host is required", ErrInvalid)
	}
	if q.Target == "" {
		q.Target = "/"
	}
	if q.Method == "" {
		q.Method = http.MethodGet
	}
	if !httpguts.ValidHeaderFieldName(q.Method) {
		return q, fmt.Errorf("%w: method %q is not a valid method", ErrInvalid, q.Method)
	}
	for _, h := range values["header"] {
		name, value, ok := strings.Cut(h, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || !httpguts.ValidHeaderFieldName(name) || !httpguts.ValidHeaderFieldValue(value) {
			return q, fmt.Errorf("%w: header=%q is not Name:value", ErrInvalid, h)
		}
		if strings.EqualFold(name, "Host") {
			return q, fmt.Errorf("%w: give the host as host=, not as a header", ErrInvalid)
		}
		q.Header.Add(name, value)
	}
	var extra []string
	for _, pair := range values["query"] {
		name, value, _ := strings.Cut(pair, "=")
		if name == "" {
			return q, fmt.Errorf("%w: query=%q is not name=value", ErrInvalid, pair)
		}
		extra = append(extra, url.QueryEscape(name)+"="+url.QueryEscape(value))
	}
	if len(extra) > 0 {
		sep := "?"
		if strings.Contains(q.Target, "?") {
			sep = "&"
		}
		q.Target += sep + strings.Join(extra, "&")
	}
	if p := values.Get("port"); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil || port < 0 || port > 65535 {
			return q, fmt.Errorf("%w: port=%q is not a port number", ErrInvalid, p)
		}
		q.Port = port
	}
	if a := values.Get("all"); a != "" {
		all, err := strconv.ParseBool(a)
		if err != nil {
			return q, fmt.Errorf("%w: all=%q is not true or false", ErrInvalid, a)
		}
		q.All = all
	}
	return q, nil
}

// request builds the request Match looks up, as net/http would have parsed it.
func (q MatchQuery) request() (*http.Request, error) {
	u, err := url.ParseRequestURI(q.Target)
	if err != nil || !strings.HasPrefix(q.Target, "/") {
		return nil, fmt.Errorf("%w: path %q is not an absolute path", ErrInvalid, q.Target)
	}
	return &http.Request{Method: q.Method, Host: q.Host, URL: u, Header: q.Header, RequestURI: q.Target}, nil
}
