package config

// FilterType names a filter. The Gateway API filter kinds keep their upstream names;
// Switchyard's own filters and policies add to the list.
type FilterType string

// The Gateway API filters.
const (
	FilterRequestHeaderModifier  FilterType = "RequestHeaderModifier"
	FilterResponseHeaderModifier FilterType = "ResponseHeaderModifier"
	FilterRequestRedirect        FilterType = "RequestRedirect"
	FilterURLRewrite             FilterType = "URLRewrite"
	FilterRequestMirror          FilterType = "RequestMirror"
	FilterCORS                   FilterType = "CORS"
)

// Switchyard's own filters.
const (
	// FilterRateLimit limits request rates per key (a TrafficPolicy's rateLimit).
	FilterRateLimit FilterType = "RateLimit"
)

// Filter is one step of a rule's (or backend reference's) filter chain. Type names
// the filter; exactly the field that belongs to that Type is set.
type Filter struct {
	// Type names the filter and selects which field below holds its settings.
	Type FilterType `json:"type"`
	// RequestHeaderModifier edits request headers before forwarding.
	RequestHeaderModifier *HeaderModifier `json:"requestHeaderModifier,omitempty"`
	// ResponseHeaderModifier edits response headers before they reach the client.
	ResponseHeaderModifier *HeaderModifier `json:"responseHeaderModifier,omitempty"`
	// RequestRedirect answers with a redirect instead of forwarding.
	RequestRedirect *Redirect `json:"requestRedirect,omitempty"`
	// URLRewrite rewrites the host and/or path before forwarding.
	URLRewrite *URLRewrite `json:"urlRewrite,omitempty"`
	// RequestMirror copies the request to another backend and ignores its response.
	RequestMirror *Mirror `json:"requestMirror,omitempty"`
	// CORS answers preflight requests and adds CORS headers to responses.
	CORS *CORS `json:"cors,omitempty"`
	// RateLimit answers 429 to requests over a rate limit.
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
}

// HeaderModifier edits a header set. Header names are case-insensitive. The edits are
// applied in the order the Gateway API gives: Set, then Add, then Remove.
type HeaderModifier struct {
	// Set replaces any existing values of each header with the given value.
	Set []Header `json:"set,omitempty"`
	// Add appends a value to each header (comma-joined with any existing value).
	Add []Header `json:"add,omitempty"`
	// Remove deletes each named header.
	Remove []string `json:"remove,omitempty"`
}

// Header is a header name and value.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// PathModifierType selects how a redirect or rewrite changes the path.
type PathModifierType string

const (
	// ReplaceFullPath replaces the whole path with ReplaceFullPath.
	ReplaceFullPath PathModifierType = "ReplaceFullPath"
	// ReplacePrefixMatch replaces the matched PathPrefix with ReplacePrefixMatch,
	// segment-wise; it is valid only on rules whose matches are all PathPrefix.
	ReplacePrefixMatch PathModifierType = "ReplacePrefixMatch"
)

// PathModifier is a path change for RequestRedirect and URLRewrite.
type PathModifier struct {
	// Type is ReplaceFullPath or ReplacePrefixMatch.
	Type PathModifierType `json:"type"`
	// ReplaceFullPath is the new path, for Type ReplaceFullPath.
	ReplaceFullPath string `json:"replaceFullPath,omitempty"`
	// ReplacePrefixMatch is the new prefix, for Type ReplacePrefixMatch.
	ReplacePrefixMatch string `json:"replacePrefixMatch,omitempty"`
}

// Redirect is a RequestRedirect filter. Unset fields keep the request's value.
type Redirect struct {
	// Scheme is "http" or "https".
	Scheme string `json:"scheme,omitempty"`
	// Hostname replaces the request's host (without port).
	Hostname string `json:"hostname,omitempty"`
	// Path changes the path.
	Path *PathModifier `json:"path,omitempty"`
	// Port is the port of the Location; 0 derives it as the Gateway API says (the
	// scheme's well-known port is omitted; otherwise the listener's port is kept when
	// the scheme does not change).
	Port int `json:"port,omitempty"`
	// StatusCode is 301, 302, 303, 307 or 308; 0 means 302.
	StatusCode int `json:"statusCode,omitempty"`
}

// URLRewrite is a URLRewrite filter. Unset fields keep the request's value.
type URLRewrite struct {
	// Hostname replaces the Host header sent to the backend.
	Hostname string `json:"hostname,omitempty"`
	// Path changes the path sent to the backend.
	Path *PathModifier `json:"path,omitempty"`
}

// Mirror is a RequestMirror filter.
type Mirror struct {
	// Backend names the Snapshot.Backends entry that receives the copies. Empty when
	// the reference could not be resolved; then the filter does nothing.
	Backend string `json:"backend,omitempty"`
	// Percent of requests to mirror, 0-100, as a fraction Numerator/Denominator.
	// A nil Fraction mirrors every request.
	Fraction *Fraction `json:"fraction,omitempty"`
}

// Fraction is Numerator/Denominator.
type Fraction struct {
	Numerator   int32 `json:"numerator"`
	Denominator int32 `json:"denominator"`
}

// CORS is a CORS filter (the Gateway API's HTTPCORSFilter).
type CORS struct {
	// AllowOrigins are the origins allowed: "*", exact origins, or origins with a
	// wildcard host label ("https://*.example.com").
	AllowOrigins []string `json:"allowOrigins,omitempty"`
	// AllowCredentials sets Access-Control-Allow-Credentials: true.
	AllowCredentials bool `json:"allowCredentials,omitempty"`
	// AllowMethods are the methods allowed ("*" for any).
	AllowMethods []string `json:"allowMethods,omitempty"`
	// AllowHeaders are the request headers allowed ("*" for any).
	AllowHeaders []string `json:"allowHeaders,omitempty"`
	// ExposeHeaders are the response headers exposed to scripts ("*" for any).
	ExposeHeaders []string `json:"exposeHeaders,omitempty"`
	// MaxAge is how long, in seconds, a preflight result may be cached; 0 means the
	// Gateway API default of 5.
	MaxAge int32 `json:"maxAge,omitempty"`
}

// RateLimitMode says where rate limit buckets live.
type RateLimitMode string

const (
	// RateLimitLocal keeps buckets in each replica: each replica allows the limit.
	RateLimitLocal RateLimitMode = "Local"
	// RateLimitGlobal keeps buckets in Redis, shared by all replicas.
	RateLimitGlobal RateLimitMode = "Global"
)

// RateLimitKeyType says what a rate limit counts requests by.
type RateLimitKeyType string

const (
	// KeyClientIP counts per client address (see TrustedProxies).
	KeyClientIP RateLimitKeyType = "ClientIP"
	// KeyHeader counts per value of a request header; requests without the header
	// share one bucket.
	KeyHeader RateLimitKeyType = "Header"
	// KeyRoute counts all requests of the rule together.
	KeyRoute RateLimitKeyType = "Route"
	// KeyCaller counts per calling workload ("<namespace>/<workload>") of east-west
	// requests on node replicas; requests with no known caller (north-south ones)
	// count per client address, as KeyClientIP.
	KeyCaller RateLimitKeyType = "Caller"
)

// RateLimit is a RateLimit filter: every rule must admit a request.
type RateLimit struct {
	// ID names the policy; buckets are shared by filters with the same ID and rule,
	// across configuration versions and, in Global mode, across replicas.
	ID string `json:"id"`
	// Mode is Local or Global.
	Mode RateLimitMode `json:"mode"`
	// FailureMode applies in Global mode while Redis cannot be reached:
	// LocalFallback (default), Allow or Deny.
	FailureMode string `json:"failureMode,omitempty"`
	// Rules are the limits; a request must fit all of them.
	Rules []RateLimitRule `json:"rules"`
}

// RateLimitRule is one token bucket per key.
type RateLimitRule struct {
	// Key says what requests are counted by.
	Key RateLimitKey `json:"key"`
	// Requests is how many requests the bucket refills per Per.
	Requests int64 `json:"requests"`
	// Per is the refill period.
	Per Duration `json:"per"`
	// Burst is how many requests beyond Requests the bucket holds; it starts full.
	Burst int64 `json:"burst,omitempty"`
}

// RateLimitKey is what a rate limit rule counts by.
type RateLimitKey struct {
	// Type is ClientIP, Header, Route or Caller.
	Type RateLimitKeyType `json:"type"`
	// Name is the header name, for Type Header.
	Name string `json:"name,omitempty"`
}
