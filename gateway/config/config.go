// Package config is Switchyard's intermediate representation (IR): the complete,
// self-contained description of what a gateway replica serves. The controller (or the
// standalone file source) produces it by translation; the data plane compiles it once
// per version and swaps it in atomically.
//
// The IR is plain Go data: JSON-serialisable, free of Kubernetes types, and checked by
// Validate. Every name in it is resolved already: routes name backends, backends list
// endpoints, and TLS material is inline.
package config

import "time"

// SchemaVersion is the version of this IR's shape. Replicas accept snapshots of their
// own schema version and of the one before it, and a controller serves replicas that
// are one schema version behind it, so that upgrades need no lockstep.
//
// History: 1 is the first shape; 2 adds Snapshot.RoutesVersion; 3 adds Backend.TLS,
// TLS.ClientValidation, the RateLimit filter and the resilience settings of rules and
// backends; 4 adds Snapshot.Mesh (east-west, served by node replicas).
const SchemaVersion = 4

// Snapshot is one complete configuration generation.
type Snapshot struct {
	// SchemaVersion is the IR shape this snapshot was written in; see SchemaVersion.
	SchemaVersion int `json:"schemaVersion"`
	// Version identifies this generation. Two snapshots with the same Version carry the
	// same content; the translator derives it from a hash of the content.
	Version string `json:"version"`
	// RoutesVersion identifies the Listeners alone (a hash of them, empty when not
	// computed). When it is unchanged from one snapshot to the next, only backends and
	// endpoints changed, and the data plane keeps its compiled route table.
	// Added in schema version 2.
	RoutesVersion string `json:"routesVersion,omitempty"`
	// Listeners are the sockets to serve, one per distinct (address, port).
	Listeners []Listener `json:"listeners,omitempty"`
	// Backends are the upstream groups that routes send traffic to, sorted by Name.
	// They are kept apart from routes so that endpoint churn does not rebuild routing.
	Backends []Backend `json:"backends,omitempty"`
	// Mesh is the east-west configuration that node replicas serve; edge replicas
	// ignore it and are not sent it. Nil when the source has no Services to serve.
	// Added in schema version 4.
	Mesh *Mesh `json:"mesh,omitempty"`
	// EdgeVersion, when set by the producer, identifies the snapshot without its
	// Mesh: the view that edge replicas are sent, whose version it then is. It saves
	// hashing the whole configuration again per generation; it is never serialised,
	// since each view carries its own Version.
	EdgeVersion string `json:"-"`
}

// Protocol is the application protocol a listener speaks to clients.
type Protocol string

const (
	// ProtocolHTTP is cleartext HTTP/1.1 (and h2c prior knowledge where enabled).
	ProtocolHTTP Protocol = "HTTP"
	// ProtocolHTTPS terminates TLS and serves HTTP/1.1 and HTTP/2 (ALPN).
	ProtocolHTTPS Protocol = "HTTPS"
)

// Listener is one bound socket. Several Gateway listeners that share a port (with
// different hostnames) become VirtualHosts of one Listener.
type Listener struct {
	// Name identifies the socket, "<address>:<port>" with an empty address for all
	// interfaces (for example ":8080" or "10.0.0.5:443").
	Name string `json:"name"`
	// Address is the IP address to bind; empty means all interfaces.
	Address string `json:"address,omitempty"`
	// Port is the TCP port to bind; 0 lets the system choose a free port (for tests
	// and embedding), which the data plane then reports.
	Port int `json:"port"`
	// Protocol is HTTP or HTTPS; all VirtualHosts of one Listener share it.
	Protocol Protocol `json:"protocol"`
	// VirtualHosts are the Gateway listeners served on this socket, sorted by Name.
	// A request is handled by exactly one: the one whose Hostname matches the request's
	// host most specifically (exact, then the longest wildcard, then the one with no
	// hostname). Routes attached to one VirtualHost are never seen by another
	// (listener isolation).
	VirtualHosts []VirtualHost `json:"virtualHosts,omitempty"`
}

// VirtualHost is one Gateway listener as served on a socket.
type VirtualHost struct {
	// Name is "<namespace>/<gateway>/<listener>", or for a listener of a ListenerSet
	// "<namespace>/<gateway>/<set namespace>/<set>/<listener>".
	Name string `json:"name"`
	// Hostname is the Gateway listener's hostname: "" (any), "example.com" or
	// "*.example.com" (any subdomain, at any depth, of example.com).
	Hostname string `json:"hostname,omitempty"`
	// TLS holds the certificates to terminate TLS with when the Listener is HTTPS.
	TLS *TLS `json:"tls,omitempty"`
	// Routes are the HTTPRoutes attached to this Gateway listener, in any order; the
	// data plane orders their matches by the Gateway API precedence rules.
	Routes []Route `json:"routes,omitempty"`
}

// TLS is the server side of a TLS listener.
type TLS struct {
	// Certificates are served by SNI: a certificate whose DNS names match the client's
	// server name wins; the first certificate is the default.
	Certificates []Certificate `json:"certificates"`
	// ClientValidation, when set, makes the listener ask clients for a certificate
	// (mutual TLS). It applies to connections whose TLS server name (SNI) selects
	// this VirtualHost; a request whose Host selects a VirtualHost with other client
	// validation than its connection's is answered 421 Misdirected Request, so
	// that connection reuse cannot skip a check. Added in schema version 3.
	ClientValidation *ClientValidation `json:"clientValidation,omitempty"`
}

// ClientValidationMode is what a listener does with the certificate a client
// presents, or does not.
type ClientValidationMode string

const (
	// ClientValidationRequired refuses the TLS handshake unless the client presents a
	// certificate that chains to one of the CA certificates (AllowValidOnly).
	ClientValidationRequired ClientValidationMode = "AllowValidOnly"
	// ClientValidationOptional asks for a certificate but accepts any answer,
	// including none or one that does not verify (AllowInsecureFallback); the
	// backend is left to authorise the client.
	ClientValidationOptional ClientValidationMode = "AllowInsecureFallback"
)

// ClientValidation is how a listener checks client certificates.
type ClientValidation struct {
	// Mode is AllowValidOnly or AllowInsecureFallback.
	Mode ClientValidationMode `json:"mode"`
	// CACertificates are the trust anchors that client certificates must chain to.
	// At least one is required.
	CACertificates []CACertificate `json:"caCertificates"`
}

// CACertificate is a PEM bundle of one or more CA certificates.
type CACertificate struct {
	// Name is the source of the bundle, "<namespace>/<configmap>" or
	// "<namespace>/<secret>".
	Name string `json:"name"`
	// PEM holds the PEM-encoded CA certificates.
	PEM string `json:"pem"`
}

// Certificate is a PEM certificate chain and its private key.
type Certificate struct {
	// Name is the source of the certificate, "<namespace>/<secret>".
	Name string `json:"name"`
	// CertPEM is the PEM-encoded certificate chain, leaf first.
	CertPEM string `json:"certPEM"`
	// KeyPEM is the PEM-encoded private key. It is secret: never log it.
	KeyPEM string `json:"keyPEM"`
}

// Route is one HTTPRoute as attached to one VirtualHost.
type Route struct {
	// Name is "<namespace>/<name>" of the HTTPRoute.
	Name string `json:"name"`
	// Hostnames are the route's effective hostnames: the intersection of the
	// HTTPRoute's hostnames with the VirtualHost's hostname. Empty means every host the
	// VirtualHost accepts. Entries are exact ("a.example.com") or wildcards
	// ("*.example.com").
	Hostnames []string `json:"hostnames,omitempty"`
	// CreationTimestamp orders otherwise equal matches across routes (older first).
	// The zero time (objects from files) ranks equal, so Name decides.
	CreationTimestamp time.Time `json:"creationTimestamp,omitempty"`
	// Rules are the HTTPRoute's rules in list order.
	Rules []Rule `json:"rules"`
}

// Rule is one HTTPRoute rule.
type Rule struct {
	// Name is the rule's optional name from the HTTPRoute (sectionName for policies).
	Name string `json:"name,omitempty"`
	// Matches are OR'ed; an empty list matches every request (as "PathPrefix /").
	Matches []Match `json:"matches,omitempty"`
	// Filters run in order before the request is forwarded (or answered, for
	// redirects).
	Filters []Filter `json:"filters,omitempty"`
	// Backends receive the traffic, split by weight. An empty list, or weights that
	// are all zero, answers 500 unless a filter answers first.
	Backends []BackendRef `json:"backends,omitempty"`
	// Timeouts bound the request as the HTTPRoute's timeouts field says.
	Timeouts *Timeouts `json:"timeouts,omitempty"`
	// Retry is the HTTPRoute rule's retry policy, if any.
	Retry *Retry `json:"retry,omitempty"`
	// HeaderRoute, when set, sends every request that carries all of its headers to
	// one of Backends whatever the weights: a live Rollout's header-matched canary.
	// Added in schema version 3.
	HeaderRoute *HeaderRoute `json:"headerRoute,omitempty"`
}

// HeaderRoute pins requests with certain headers to one backend reference of a rule.
type HeaderRoute struct {
	// Headers must all be present with exactly these values; names are
	// case-insensitive.
	Headers []Header `json:"headers"`
	// Backend is the index in Rule.Backends of the reference that serves these
	// requests. That reference is served even when its weight is zero.
	Backend int `json:"backend"`
}

// PathMatchType is how a Match compares the request path.
type PathMatchType string

const (
	// PathExact matches the path exactly, case-sensitively.
	PathExact PathMatchType = "Exact"
	// PathPrefix matches whole path segments: "/foo" matches "/foo" and "/foo/bar"
	// but not "/foobar". A trailing slash in the prefix is ignored.
	PathPrefix PathMatchType = "PathPrefix"
	// PathRegularExpression matches the whole path against an RE2 expression.
	PathRegularExpression PathMatchType = "RegularExpression"
)

// StringMatchType is how a header or query parameter value is compared.
type StringMatchType string

const (
	// MatchExact compares the value exactly.
	MatchExact StringMatchType = "Exact"
	// MatchRegularExpression matches the whole value against an RE2 expression.
	MatchRegularExpression StringMatchType = "RegularExpression"
)

// Match is one HTTPRouteMatch: all of its fields must hold.
type Match struct {
	// Path matches the request path. Nil means "PathPrefix /".
	Path *PathMatch `json:"path,omitempty"`
	// Headers must all match; names are case-insensitive.
	Headers []ValueMatch `json:"headers,omitempty"`
	// QueryParams must all match; names are case-sensitive.
	QueryParams []ValueMatch `json:"queryParams,omitempty"`
	// Method, when set, must equal the request method.
	Method string `json:"method,omitempty"`
}

// PathMatch is a path predicate.
type PathMatch struct {
	// Type is Exact, PathPrefix or RegularExpression.
	Type PathMatchType `json:"type"`
	// Value is the path, prefix or RE2 expression.
	Value string `json:"value"`
}

// ValueMatch is a header or query parameter predicate.
type ValueMatch struct {
	// Type is Exact or RegularExpression.
	Type StringMatchType `json:"type"`
	// Name is the header or query parameter name.
	Name string `json:"name"`
	// Value is the value or RE2 expression.
	Value string `json:"value"`
}

// Timeouts are HTTPRoute rule timeouts.
type Timeouts struct {
	// Request bounds the whole request, from the gateway receiving it to the last
	// response byte, retries included. Zero means no limit.
	Request Duration `json:"request,omitempty"`
	// BackendRequest bounds one attempt to a backend. Zero means no limit.
	BackendRequest Duration `json:"backendRequest,omitempty"`
}

// Retry is a rule's retry policy: from an HTTPRoute rule's retry field or a
// TrafficPolicy.
type Retry struct {
	// Codes are the response status codes that are retried.
	Codes []int `json:"codes,omitempty"`
	// Attempts is the number of retries after the first try.
	Attempts int `json:"attempts,omitempty"`
	// Backoff is the minimum wait between tries.
	Backoff Duration `json:"backoff,omitempty"`
	// MaxBackoff caps the wait, which doubles from Backoff with each retry (with
	// jitter, never below Backoff). Zero keeps every wait at Backoff.
	MaxBackoff Duration `json:"maxBackoff,omitempty"`
	// On lists the failures retried besides Codes. Empty means connect failures,
	// resets and per-try timeouts, as the Gateway API asks of an HTTPRoute retry.
	On []RetryCondition `json:"on,omitempty"`
	// PerTryTimeout bounds each try; the rule's backendRequest timeout, when shorter,
	// bounds it instead. Zero means no bound of its own.
	PerTryTimeout Duration `json:"perTryTimeout,omitempty"`
	// IdempotentOnly, when set, retries requests with a method that is not idempotent
	// (POST, PATCH, CONNECT) only after a connect failure, which the backend never saw.
	IdempotentOnly bool `json:"idempotentOnly,omitempty"`
	// Budget, when set, bounds retries to a share of the requests to the backend, so
	// that retries cannot multiply the load on a failing backend.
	Budget *RetryBudget `json:"budget,omitempty"`
}

// RetryCondition is a class of failure a retry policy retries.
type RetryCondition string

const (
	// RetryConnectFailure retries when no connection to the endpoint could be made.
	RetryConnectFailure RetryCondition = "connect-failure"
	// RetryReset retries when the connection failed before a response arrived.
	RetryReset RetryCondition = "reset"
	// RetryTimeout retries a try that ran past its per-try timeout.
	RetryTimeout RetryCondition = "timeout"
	// RetryGatewayError retries 502, 503 and 504 responses and per-try timeouts.
	RetryGatewayError RetryCondition = "gateway-error"
	// Retry5xx retries every 5xx response and per-try timeouts.
	Retry5xx RetryCondition = "5xx"
	// RetryStatusCodesOnly, alone in On, retries no failure class: only the statuses
	// in Codes. (An empty On means the default classes instead.)
	RetryStatusCodesOnly RetryCondition = "status-codes-only"
)

// RetryBudget bounds retries over a sliding ten-second window, per backend and
// gateway replica: retries may be at most Percent of the requests, plus
// MinRetriesPerSecond.
type RetryBudget struct {
	// Percent is the share of requests, 0 to 100, that may be retries.
	Percent int `json:"percent"`
	// MinRetriesPerSecond are allowed whatever the share, so that a backend with
	// little traffic still gets retries.
	MinRetriesPerSecond int `json:"minRetriesPerSecond,omitempty"`
}

// BackendRef is one weighted destination of a rule.
type BackendRef struct {
	// Backend is the Name of an entry in Snapshot.Backends. Empty when the reference
	// could not be resolved; then Invalid is set.
	Backend string `json:"backend,omitempty"`
	// Weight is the relative share of traffic; zero receives none.
	Weight int32 `json:"weight"`
	// Invalid, when set, means the reference could not be resolved: its share of the
	// traffic is answered with Invalid.StatusCode instead of being forwarded.
	Invalid *InvalidBackend `json:"invalid,omitempty"`
	// Filters run only for requests sent to this backend, after the rule's filters.
	Filters []Filter `json:"filters,omitempty"`
}

// InvalidBackend records why a backend reference has no destination.
type InvalidBackend struct {
	// StatusCode is the response given in its place (500 per the Gateway API).
	StatusCode int `json:"statusCode"`
	// Reason is a short explanation, for logs and the admin API.
	Reason string `json:"reason"`
}

// AppProtocol is the protocol spoken to a backend.
type AppProtocol string

const (
	// AppProtocolHTTP1 is HTTP/1.1 over cleartext TCP.
	AppProtocolHTTP1 AppProtocol = "http"
	// AppProtocolH2C is HTTP/2 over cleartext TCP with prior knowledge
	// (Service appProtocol "kubernetes.io/h2c").
	AppProtocolH2C AppProtocol = "h2c"
	// AppProtocolWebSocket is HTTP/1.1 with WebSocket upgrades
	// (Service appProtocol "kubernetes.io/ws").
	AppProtocolWebSocket AppProtocol = "ws"
)

// Backend is a group of interchangeable endpoints: one port of one Service.
type Backend struct {
	// Name is "<namespace>/<service>:<port>". A TLS backend reached from a Gateway
	// that presents a client certificate is a backend of its own, named
	// "<namespace>/<service>:<port>#client=<namespace>/<secret>".
	Name string `json:"name"`
	// Protocol is how to speak to the endpoints.
	Protocol AppProtocol `json:"protocol"`
	// Endpoints are the addresses to balance over, sorted by Address.
	Endpoints []Endpoint `json:"endpoints,omitempty"`
	// TLS, when set, makes the gateway speak TLS to the endpoints and verify them as
	// it says; Protocol is then spoken inside TLS (h2c becomes HTTP/2 negotiated by
	// ALPN). Nil means cleartext. Added in schema version 3.
	TLS *UpstreamTLS `json:"tls,omitempty"`
	// CircuitBreaker caps what each gateway replica sends to the backend at once.
	CircuitBreaker *CircuitBreaker `json:"circuitBreaker,omitempty"`
	// OutlierDetection ejects endpoints that keep failing.
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
	// HealthCheck probes the endpoints actively.
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`
}

// OutlierDetection ejects an endpoint from balancing as soon as it fails too many
// requests in a row. Each gateway replica judges on its own traffic.
type OutlierDetection struct {
	// Consecutive5xx ejects after this many 5xx answers, connection failures or
	// timeouts in a row; zero disables the check.
	Consecutive5xx int `json:"consecutive5xx,omitempty"`
	// ConsecutiveGatewayErrors ejects after this many 502, 503 or 504 answers,
	// connection failures or timeouts in a row; zero disables the check.
	ConsecutiveGatewayErrors int `json:"consecutiveGatewayErrors,omitempty"`
	// Interval is how long an endpoint must stay in service for its next ejection
	// to be one step shorter again.
	Interval Duration `json:"interval,omitempty"`
	// BaseEjectionTime is the first ejection's length; the n-th ejection in a row
	// lasts n times as long, up to ten.
	BaseEjectionTime Duration `json:"baseEjectionTime,omitempty"`
	// MaxEjectionPercent caps the share of the backend's endpoints ejected at once.
	MaxEjectionPercent int `json:"maxEjectionPercent,omitempty"`
}

// HealthCheck probes each endpoint with an HTTP GET; a 2xx answer passes.
type HealthCheck struct {
	// Path is the path requested.
	Path string `json:"path"`
	// Interval is the time between probes of an endpoint.
	Interval Duration `json:"interval"`
	// Timeout bounds one probe.
	Timeout Duration `json:"timeout"`
	// HealthyThreshold is how many passes in a row return an endpoint to service.
	HealthyThreshold int `json:"healthyThreshold"`
	// UnhealthyThreshold is how many failures in a row take it out.
	UnhealthyThreshold int `json:"unhealthyThreshold"`
}

// CircuitBreaker caps a backend's load per gateway replica. A zero field sets no cap.
// Requests over a cap are answered 503 at once rather than queued without bound.
type CircuitBreaker struct {
	// MaxConnections caps the requests being served at once, each of which holds a
	// connection (HTTP/1.1 carries one request per connection at a time).
	MaxConnections int `json:"maxConnections,omitempty"`
	// MaxPendingRequests caps the requests waiting for one of MaxConnections.
	MaxPendingRequests int `json:"maxPendingRequests,omitempty"`
	// MaxRequests caps the requests in flight, waiting ones included.
	MaxRequests int `json:"maxRequests,omitempty"`
	// MaxRetries caps the retries in flight; a retry over it is not made.
	MaxRetries int `json:"maxRetries,omitempty"`
}

// Endpoint is one address of a Backend, with its EndpointSlice conditions.
type Endpoint struct {
	// Address is "ip:port" (IPv6 in brackets).
	Address string `json:"address"`
	// Ready is the EndpointSlice "ready" condition: eligible for new traffic.
	Ready bool `json:"ready"`
	// Serving is the "serving" condition: able to serve, possibly while terminating.
	// Serving-but-not-ready endpoints are used only when no endpoint is ready.
	Serving bool `json:"serving"`
	// Terminating is the "terminating" condition.
	Terminating bool `json:"terminating,omitempty"`
	// Zone and NodeName locate the endpoint, for locality-aware balancing.
	Zone     string `json:"zone,omitempty"`
	NodeName string `json:"nodeName,omitempty"`
}
