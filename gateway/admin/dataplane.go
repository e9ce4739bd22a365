package admin

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// DataPlane is what the data plane endpoints (routes, match, backends, rate limits,
// drain) report on and act through. NewEngineDataPlane serves it from a gateway's
// engine; the controller has none. Its methods are called concurrently.
type DataPlane interface {
	// Routes returns the compiled routes in match order.
	Routes() RoutesView
	// Match explains which rule a request would hit; errors wrapping ErrInvalid
	// are the query's fault.
	Match(q MatchQuery) (MatchView, error)
	// Backends returns every backend with its endpoints' state.
	Backends() BackendsView
	// RateLimits returns the rate limits in force and where they apply.
	RateLimits() RateLimitsView
	// Drain drains or undrains endpoints; errors wrap ErrNotFound or ErrInvalid.
	Drain(req DrainRequest) (DrainView, error)
}

// RoutesView is what GET /api/v1/routes shows.
type RoutesView struct {
	// Version is the serving snapshot's version; empty before the first.
	Version string `json:"version"`
	// Listeners are the sockets in configuration order.
	Listeners []ListenerRoutes `json:"listeners"`
}

// ListenerRoutes is one listener's route table.
type ListenerRoutes struct {
	// Name is the listener's name, "<address>:<port>".
	Name string `json:"name"`
	// Port and Protocol are the listener's.
	Port     int             `json:"port"`
	Protocol config.Protocol `json:"protocol"`
	// BoundAddr is where the socket is bound; empty while it is not.
	BoundAddr string `json:"boundAddr,omitempty"`
	// VirtualHosts are the Gateway listeners served on the socket.
	VirtualHosts []VirtualHostRoutes `json:"virtualHosts"`
}

// VirtualHostRoutes is one virtual host's routes, in the order a request tries them.
type VirtualHostRoutes struct {
	// Name is "<namespace>/<gateway>/<listener>".
	Name string `json:"name"`
	// Hostname is the Gateway listener's hostname; empty for any.
	Hostname string `json:"hostname,omitempty"`
	// Tiers group the matches by route hostname: exact hostnames, then wildcards
	// from the longest, then routes without hostnames. A request tries the tiers
	// that accept its host in this order, and within a tier the matches in order.
	Tiers []RouteTier `json:"tiers"`
}

// RouteTier is one hostname tier's matches in precedence order.
type RouteTier struct {
	// Kind is Exact, Wildcard or Any.
	Kind string `json:"kind"`
	// Hostname is the route hostname of the tier; empty for Any.
	Hostname string `json:"hostname,omitempty"`
	// Matches are in the order they are tried.
	Matches []RouteMatch `json:"matches"`
}

// RouteMatch is one match of one rule, with where it comes from.
type RouteMatch struct {
	// Route is the HTTPRoute, "<namespace>/<name>".
	Route string `json:"route"`
	// Rule is the rule's index in the HTTPRoute, and RuleName its name, if any.
	Rule     int    `json:"rule"`
	RuleName string `json:"ruleName,omitempty"`
	// Match is the match's index in the rule; absent for a rule without matches,
	// which matches every request.
	Match *int `json:"match,omitempty"`
	// Conditions are the match's conditions; absent means PathPrefix "/".
	Conditions *config.Match `json:"conditions,omitempty"`
	// Backends are the rule's weighted destinations.
	Backends []RouteBackend `json:"backends,omitempty"`
	// Filters are the types of the rule's filters, in order.
	Filters []string `json:"filters,omitempty"`
}

// RouteBackend is one weighted destination of a rule.
type RouteBackend struct {
	// Backend is the backend's name; empty for a reference that did not resolve.
	Backend string `json:"backend,omitempty"`
	// Weight is its relative share.
	Weight int32 `json:"weight"`
	// Invalid says why the reference did not resolve; its share is answered 500.
	Invalid string `json:"invalid,omitempty"`
}

// BackendsView is what GET /api/v1/backends shows.
type BackendsView struct {
	// Backends are sorted by name.
	Backends []BackendView `json:"backends"`
}

// BackendView is one backend as this replica sees it.
type BackendView struct {
	// Name is "<namespace>/<service>:<port>", with "#client=..." for a variant that
	// presents a client certificate.
	Name string `json:"name"`
	// Service and Port are the Service it belongs to, when the name says.
	Service string `json:"service,omitempty"`
	Port    int    `json:"port,omitempty"`
	// Protocol is how the endpoints are spoken to; TLS says whether inside TLS.
	Protocol string `json:"protocol"`
	TLS      bool   `json:"tls"`
	// CircuitBreaker, OutlierDetection and HealthCheck are the settings in force.
	CircuitBreaker   *config.CircuitBreaker   `json:"circuitBreaker,omitempty"`
	OutlierDetection *config.OutlierDetection `json:"outlierDetection,omitempty"`
	HealthCheck      *config.HealthCheck      `json:"healthCheck,omitempty"`
	// Breaker holds the circuit breaker's counters.
	Breaker BreakerView `json:"breaker"`
	// Outcomes are the requests this replica sent to the backend since it started.
	Outcomes OutcomeView `json:"outcomes"`
	// Endpoints are in configuration order.
	Endpoints []EndpointView `json:"endpoints"`
}

// BreakerView holds a circuit breaker's counters.
type BreakerView struct {
	// Requests and Retries count those admitted and in flight (counted only while
	// a cap is set).
	Requests int64 `json:"requests"`
	Retries  int64 `json:"retries"`
	// ActiveConnections and Pending count the connection slots in use and the
	// requests waiting for one.
	ActiveConnections int `json:"activeConnections"`
	Pending           int `json:"pending"`
	// Overflows counts requests and retries turned away since start.
	Overflows uint64 `json:"overflows"`
}

// OutcomeView summarises cumulative request outcomes.
type OutcomeView struct {
	// Requests and Errors (5xx, connection failures, timeouts) since start.
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// P50Millis and P99Millis are latency quantiles since start, in milliseconds,
	// rounded up to a histogram bucket's bound; absent without requests.
	P50Millis *float64 `json:"p50Millis,omitempty"`
	P99Millis *float64 `json:"p99Millis,omitempty"`
}

// EndpointView is one endpoint's state on this replica.
type EndpointView struct {
	// Address is "ip:port"; Zone and NodeName locate it.
	Address  string `json:"address"`
	Zone     string `json:"zone,omitempty"`
	NodeName string `json:"nodeName,omitempty"`
	// State sums the rest up: Drained, Unhealthy, Ejected, Ready, Serving (not
	// ready but serving, used when no endpoint is ready) or NotServing.
	State string `json:"state"`
	// Ready, Serving and Terminating are its EndpointSlice conditions.
	Ready       bool `json:"ready"`
	Serving     bool `json:"serving"`
	Terminating bool `json:"terminating"`
	// Drained is an operator's drain; Healthy is the active health checks' verdict.
	Drained bool `json:"drained"`
	Healthy bool `json:"healthy"`
	// EjectedUntil is when an outlier ejection in force ends.
	EjectedUntil time.Time `json:"ejectedUntil,omitzero"`
	// Ejections is the length multiplier of its latest ejection.
	Ejections int32 `json:"ejections"`
	// Consecutive5xx and ConsecutiveGatewayErrors are its failure streaks.
	Consecutive5xx           int32 `json:"consecutive5xx"`
	ConsecutiveGatewayErrors int32 `json:"consecutiveGatewayErrors"`
	// InFlight, Requests and Failures count requests to it: now, ever, and those
	// that failed before a response.
	InFlight int64  `json:"inFlight"`
	Requests uint64 `json:"requests"`
	Failures uint64 `json:"failures"`
}

// DrainActions are the actions of POST
// /api/v1/backends/{namespace}/{name}/endpoints/{address}/{action}.
var DrainActions = []string{"drain", "undrain"}

// DrainRequest selects the endpoints to drain or undrain.
type DrainRequest struct {
	// Namespace and Name are the Service's.
	Namespace string
	Name      string
	// Port is a Service port; 0 means every port of the Service.
	Port int
	// Address is "ip:port" or a bare IP (every endpoint at that IP).
	Address string
	// Drain is true to drain, false to undrain.
	Drain bool
}

// DrainView is the answer to a drain or undrain.
type DrainView struct {
	// Service is "<namespace>/<name>"; Port is the Service port, 0 for all.
	Service string `json:"service"`
	Port    int    `json:"port,omitempty"`
	// Action is drain or undrain.
	Action string `json:"action"`
	// Endpoints are the endpoints now in the state asked for.
	Endpoints []DrainedEndpointView `json:"endpoints"`
}

// DrainedEndpointView is one endpoint a drain or undrain applied to.
type DrainedEndpointView struct {
	// Backend is the backend's name and Address the endpoint's.
	Backend string `json:"backend"`
	Address string `json:"address"`
	// Drained is its state now.
	Drained bool `json:"drained"`
	// Available counts the backend's endpoints that take new requests now; 0 means
	// the backend answers 503.
	Available int `json:"available"`
}

// maxDrainBody bounds the body of a drain request, which is ignored.
const maxDrainBody = 4 << 10

// addDataPlaneRoutes adds the data plane endpoints.
func addDataPlaneRoutes(api *gin.RouterGroup, dp DataPlane, tokenRequired bool) {
	api.GET("/routes", func(c *gin.Context) { renderJSON(c, http.StatusOK, dp.Routes()) })
	api.GET("/routes/match", func(c *gin.Context) {
		view, err := explainQuery(dp, c.Request.URL.RawQuery)
		if err != nil {
			abortWithProblem(c, statusOf(err), err.Error())
			return
		}
		renderJSON(c, http.StatusOK, view)
	})
	api.GET("/backends", func(c *gin.Context) { renderJSON(c, http.StatusOK, dp.Backends()) })
	api.GET("/ratelimits", func(c *gin.Context) { renderJSON(c, http.StatusOK, dp.RateLimits()) })
	api.POST("/backends/:namespace/:name/endpoints/:address/:action", guardAction(tokenRequired), func(c *gin.Context) {
		req, err := drainRequest(c)
		if err != nil {
			abortWithProblem(c, http.StatusBadRequest, err.Error())
			return
		}
		if _, err := io.Copy(io.Discard, http.MaxBytesReader(c.Writer, c.Request.Body, maxDrainBody)); err != nil {
			abortWithProblem(c, http.StatusRequestEntityTooLarge, "a drain takes no body")
			return
		}
		view, err := dp.Drain(req)
		if err != nil {
			abortWithProblem(c, statusOf(err), err.Error())
			return
		}
		renderJSON(c, http.StatusOK, view)
	})
}

// explainQuery answers GET /api/v1/routes/match for a raw query string. The query
// is parsed strictly: a malformed pair is an error, not a parameter left out.
func explainQuery(dp DataPlane, rawQuery string) (MatchView, error) {
	values, err := url.ParseQuery(rawQuery)
	if err != nil {
		return MatchView{}, fmt.Errorf("%w: the query string: %v", ErrInvalid, err)
	}
	q, err := parseMatchQuery(values)
	if err != nil {
		return MatchView{}, err
	}
	return dp.Match(q)
}

// drainRequest reads a drain request's path and query.
func drainRequest(c *gin.Context) (DrainRequest, error) {
	req := DrainRequest{Namespace: c.Param("namespace"), Name: c.Param("name"), Address: c.Param("address")}
	switch action := c.Param("action"); action {
	case "drain", "undrain":
		req.Drain = action == "drain"
	default:
		return req, fmt.Errorf("unknown action %q; the actions are %s", action, strings.Join(DrainActions, ", "))
	}
	values, err := url.ParseQuery(c.Request.URL.RawQuery)
	if err != nil {
		return req, fmt.Errorf("the query string: %v", err)
	}
	for key := range values {
		if key != "port" {
			return req, fmt.Errorf("unknown query parameter %q; a drain takes only port", key)
		}
	}
	if p := values.Get("port"); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return req, fmt.Errorf("port=%q is not a port number", p)
		}
		req.Port = port
	}
	return req, nil
}

// errorf wraps a sentinel error with a message, for DataPlane implementations.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
