// Package admin serves the gateway's administration endpoints: health and readiness
// probes, Prometheus metrics and a small REST API that shows the applied configuration
// and the status of every object. It never carries proxied traffic.
//
// Health and metrics are open, so that probes and scrapers need no credentials. When a
// token is configured, every /api/v1 request must present it as a bearer token. Without
// a token the API may only listen on a loopback address, since it shows the whole
// configuration. Errors are RFC 9457 problem details. Where Rollouts are driven, the
// API lists them and takes an operator's actions on them. A gateway's API also shows
// its compiled routes, explains which rule a request would hit, shows its backends
// and rate limits and drains endpoints; the controller's shows its gateway replicas
// and the service graph they forward.
// The OpenAPI document in api/openapi describes every endpoint and is served at
// /api/v1/openapi.json.
package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchyard-dev/switchyard/api/openapi"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/server"
)

// DefaultAddr is where the admin API listens unless told otherwise: loopback only.
const DefaultAddr = "127.0.0.1:9901"

// maxRequestBody bounds request bodies; the admin API takes small JSON documents only.
const maxRequestBody = 1 << 20

// ConfigView is what GET /api/v1/config shows: the serving configuration and the last
// rejected one.
type ConfigView struct {
	// Version is the serving snapshot's version; empty before the first apply.
	Version string `json:"version"`
	// AppliedAt is when the serving snapshot was applied.
	AppliedAt time.Time `json:"appliedAt,omitzero"`
	// Snapshot is the serving configuration. The admin API redacts private keys.
	Snapshot *config.Snapshot `json:"snapshot,omitempty"`
	// LastError is why the most recent configuration was rejected, if it was.
	LastError string `json:"lastError,omitempty"`
	// LastErrorAt is when that happened.
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
	// RejectedVersion is the version of the rejected snapshot, when it got that far.
	RejectedVersion string `json:"rejectedVersion,omitempty"`
}

// State is what the admin API reports on. Its methods are called concurrently.
type State interface {
	// Ready reports whether the gateway serves its configuration.
	Ready() bool
	// Config returns the serving configuration.
	Config() ConfigView
	// Status returns the objects' statuses, JSON-serialisable, for GET /api/v1/status.
	Status() any
}

// Options configure a Server.
type Options struct {
	// Addr is the address to listen on; empty means DefaultAddr.
	Addr string
	// Token is the bearer token /api/v1 requests must present. Empty disables
	// authentication, which is allowed only on a loopback address.
	Token string
	// State is what the endpoints report.
	State State
	// Metrics serves /metrics; nil serves Prometheus' default registry.
	Metrics http.Handler
	// Logger receives request logs at debug level and server errors; nil means
	// slog.Default().
	Logger *slog.Logger
	// Rollouts serves /api/v1/rollouts. When nil, a State that implements Rollouts
	// serves them; without either the endpoints do not exist.
	Rollouts Rollouts
	// DataPlane serves the routes, match, backends, rate limit and drain
	// endpoints of a gateway; nil on the controller, where they do not exist.
	DataPlane DataPlane
	// Fleet serves the controller's /api/v1/gateways; nil on a gateway.
	Fleet Fleet
	// Graph serves the controller's /api/v1/graph; nil on a gateway.
	Graph Graph
	// Profiling serves the Go runtime's profiles (CPU, heap, goroutines, execution
	// trace) under /api/v1/debug/pprof/, behind the same token as the rest of the
	// API. Off by default: a CPU profile or trace slows the process while it runs.
	Profiling bool
}

// Server is an admin HTTP server.
type Server struct {
	engine   *gin.Engine
	http     *http.Server
	addr     string
	logger   *slog.Logger
	listener net.Listener
}

// New builds the admin API server. It refuses to serve without a token on an address
// reachable from other hosts.
func New(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.State == nil {
		return nil, errors.New("admin: a State is required")
	}
	if opts.Token == "" {
		loopback, err := isLoopback(opts.Addr)
		if err != nil {
			return nil, err
		}
		if !loopback {
			return nil, fmt.Errorf("admin: refusing to serve the admin API on %s without a token: "+
				"listen on a loopback address (such as %s) or configure an admin token", opts.Addr, DefaultAddr)
		}
	}
	s := newServer(opts.Addr, opts.Logger)
	if opts.Token != "" {
		// The check is a global middleware, registered before any route so that every
		// route gets it, including those added later through Engine. It also runs for
		// unrouted paths under /api/, so that an unauthenticated client learns nothing
		// about which endpoints exist.
		s.engine.Use(requireToken("/api/", opts.Token))
	} else {
		// Without a token, the loopback address is the only guard, and a web page
		// whose DNS name is rebound to 127.0.0.1 could read the API through the
		// user's browser; such a request carries the page's name in Host.
		s.engine.Use(requireLoopbackHost("/api/"))
	}
	s.addHealthRoutes(opts.State, opts.Metrics)
	api := s.engine.Group("/api/v1")
	api.GET("/config", func(c *gin.Context) {
		view := opts.State.Config()
		view.Snapshot = redactKeys(view.Snapshot)
		renderJSON(c, http.StatusOK, view)
	})
	api.GET("/status", func(c *gin.Context) { renderJSON(c, http.StatusOK, opts.State.Status()) })
	if opts.Rollouts == nil {
		opts.Rollouts, _ = opts.State.(Rollouts)
	}
	if opts.Rollouts != nil {
		addRolloutRoutes(api, opts.Rollouts, opts.Token != "")
	}
	if opts.DataPlane != nil {
		addDataPlaneRoutes(api, opts.DataPlane, opts.Token != "")
	}
	if opts.Fleet != nil {
		addFleetRoutes(api, opts.Fleet)
	}
	if opts.Graph != nil {
		addGraphRoutes(api, opts.Graph)
	}
	if opts.Profiling {
		addProfilingRoutes(api)
	}
	api.GET("/openapi.json", func(c *gin.Context) {
		c.Data(http.StatusOK, "application/json; charset=utf-8", openapi.Document)
	})
	return s, nil
}

// NewMetricsServer builds a server for /healthz, /readyz and /metrics only, without
// authentication, for a separate metrics address.
func NewMetricsServer(addr string, state State, metrics http.Handler, logger *slog.Logger) (*Server, error) {
	if addr == "" {
		return nil, errors.New("admin: the metrics server needs an address")
	}
	if state == nil {
		return nil, errors.New("admin: a State is required")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("admin: invalid metrics address %q: %w", addr, err)
	}
	s := newServer(addr, logger)
	s.addHealthRoutes(state, metrics)
	return s, nil
}

// newServer sets up the engine and HTTP server shared by both kinds of Server.
func newServer(addr string, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.Default()
	}
	gin.SetMode(gin.ReleaseMode)
	engine := gin.New()
	engine.HandleMethodNotAllowed = true
	// A path with a trailing slash (or other spelling) is an unknown path, answered
	// with a problem like any other, not a redirect.
	engine.RedirectTrailingSlash = false
	engine.RedirectFixedPath = false
	engine.Use(recoverer(logger), requestLogger(logger), limitBody(maxRequestBody))
	engine.NoRoute(func(c *gin.Context) {
		abortWithProblem(c, http.StatusNotFound, fmt.Sprintf("no endpoint at %s", c.Request.URL.Path))
	})
	engine.NoMethod(func(c *gin.Context) {
		abortWithProblem(c, http.StatusMethodNotAllowed,
			fmt.Sprintf("%s is not allowed on %s", c.Request.Method, c.Request.URL.Path))
	})
	s := &Server{engine: engine, addr: addr, logger: logger}
	s.http = &http.Server{
		Handler:           engine,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	return s
}

// addHealthRoutes adds the unauthenticated probe and metrics endpoints.
func (s *Server) addHealthRoutes(state State, metrics http.Handler) {
	if metrics == nil {
		metrics = promhttp.Handler()
	}
	s.engine.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	s.engine.GET("/readyz", func(c *gin.Context) {
		if !state.Ready() {
			abortWithProblem(c, http.StatusServiceUnavailable, "no configuration is being served yet")
			return
		}
		c.String(http.StatusOK, "ok")
	})
	s.engine.GET("/metrics", gin.WrapH(metrics))
}

// Engine returns the router, so that more endpoints can be added before Start.
func (s *Server) Engine() *gin.Engine { return s.engine }

// Start binds the address and serves in the background. Errors binding are returned.
// The address is bound with SO_REUSEPORT, as the data plane's listeners are, so that a
// replacement process can bind it while this one still runs.
func (s *Server) Start() error {
	ln, err := server.Listen(context.Background(), s.addr)
	if err != nil {
		return fmt.Errorf("admin: listening on %s: %w", s.addr, err)
	}
	s.listener = ln
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("admin server stopped", "addr", ln.Addr().String(), "error", err)
		}
	}()
	return nil
}

// Addr returns the bound address once started, else the configured one.
func (s *Server) Addr() string {
	if s.listener != nil {
		return s.listener.Addr().String()
	}
	return s.addr
}

// Shutdown hands the address over to a replacement process that shares it, if there
// is one, stops accepting connections and waits for active requests until ctx is
// done.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.listener != nil {
		if err := server.HandOver(ctx, s.listener); err != nil {
			s.logger.Warn("hand-over of the admin address failed; closing it anyway", "addr", s.listener.Addr().String(), "error", err)
		}
	}
	return s.http.Shutdown(ctx)
}

// LoadToken reads a bearer token from a file. Surrounding whitespace (a trailing
// newline, typically) is removed; an empty token is an error.
func LoadToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin: reading the token file: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("admin: the token file %s is empty", path)
	}
	return token, nil
}

// isLoopback reports whether addr ("host:port") can only be reached from this host.
// An empty host, 0.0.0.0 and :: mean every interface, so they are not loopback; a
// host name other than localhost could resolve to anything, so it is not either.
func isLoopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("admin: invalid address %q: %w", addr, err)
	}
	if strings.EqualFold(host, "localhost") {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// requireToken rejects requests under prefix without the bearer token.
// requireLoopbackHost refuses requests under prefix whose Host header is not a
// loopback address or localhost.
func requireLoopbackHost(prefix string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !strings.HasPrefix(c.Request.URL.Path, prefix) {
			return
		}
		switch {
		case !loopbackHost(c.Request.Host):
			abortWithProblem(c, http.StatusForbidden,
				"without an admin token, the admin API answers only requests addressed to a loopback host such as 127.0.0.1")
		case fromAnotherSite(c.Request):
			abortWithProblem(c, http.StatusForbidden,
				"without an admin token, the admin API refuses requests a browser sends for another site's page")
		}
	}
}

// fromAnotherSite reports whether a browser sent r on behalf of a page that is not
// the admin API's own: such a page may send simple GETs and form POSTs to a loopback
// address with the right Host, which the Host check alone lets through. Browsers say
// so in Sec-Fetch-Site, and older ones in Origin; clients that are not browsers send
// neither.
func fromAnotherSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	return err != nil || u.Host == "" || !loopbackHost(u.Host) || u.Host != r.Host
}

func requireToken(prefix, token string) gin.HandlerFunc {
	want := []byte("Bearer " + token)
	return func(c *gin.Context) {
		if !strings.HasPrefix(c.Request.URL.Path, prefix) {
			return
		}
		got := []byte(c.GetHeader("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			c.Header("WWW-Authenticate", `Bearer realm="switchyard-admin"`)
			abortWithProblem(c, http.StatusUnauthorized, "a valid bearer token is required")
		}
	}
}

// limitBody caps the bytes a handler may read from a request body.
func limitBody(limit int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.Body != nil {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
		}
	}
}

// requestLogger logs each request at debug level; gin's own logger is not used, since
// it writes to stdout unstructured.
func requestLogger(logger *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		logger.LogAttrs(c.Request.Context(), slog.LevelDebug, "admin request",
			slog.String("method", c.Request.Method), slog.String("path", c.Request.URL.Path),
			slog.Int("status", c.Writer.Status()), slog.Duration("duration", time.Since(start)),
			slog.String("remote", c.ClientIP()))
	}
}

// recoverer turns a panicking handler into a 500 problem and logs it.
func recoverer(logger *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				logger.Error("admin handler panicked", "path", c.Request.URL.Path, "panic", v)
				abortWithProblem(c, http.StatusInternalServerError, "internal error")
			}
		}()
		c.Next()
	}
}

// renderJSON answers with v as JSON.
func renderJSON(c *gin.Context, status int, v any) {
	c.Status(status)
	c.Header("Content-Type", "application/json; charset=utf-8")
	if err := writeJSON(c.Writer, v); err != nil {
		c.Error(err) //nolint:errcheck // The response is already under way; the error is logged.
	}
}

// writeJSON encodes v with the standard library, so that the field tags (including
// omitzero) mean what they say whatever JSON codec gin was built with.
func writeJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
