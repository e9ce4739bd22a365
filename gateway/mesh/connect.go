package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/backend"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
)

// Defaults of TunnelOptions.
const (
	// DefaultConnectTimeout bounds one attempt at connecting to an endpoint or an
	// egress destination: a live endpoint in the cluster answers in milliseconds, so
	// a few seconds only ever cut off a dead or unreachable one.
	DefaultConnectTimeout = 5 * time.Second
	// DefaultConnectAttempts is how many endpoints a CONNECT to a Service tries
	// before it fails: the first, and two others when the first refuses or times out,
	// as a route's default retry of connect failures does.
	DefaultConnectAttempts = 3
)

// TunnelOptions tune CONNECT tunnels.
type TunnelOptions struct {
	// IdleTimeout ends a tunnel idle both ways for this long; zero means
	// DefaultTunnelIdleTimeout, negative means no limit.
	IdleTimeout time.Duration
	// ConnectTimeout bounds each connection attempt; zero means
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// ConnectAttempts is how many endpoints of a Service are tried; zero means
	// DefaultConnectAttempts.
	ConnectAttempts int
	// Logger receives tunnel failures; nil discards them.
	Logger *slog.Logger
}

func (o TunnelOptions) withDefaults() TunnelOptions {
	switch {
	case o.IdleTimeout == 0:
		o.IdleTimeout = DefaultTunnelIdleTimeout
	case o.IdleTimeout < 0:
		o.IdleTimeout = 0
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.ConnectAttempts <= 0 {
		o.ConnectAttempts = DefaultConnectAttempts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Tunnels opens CONNECT tunnels to the endpoints of Service ports. Endpoints are
// chosen by the backend pool, so ejected, unhealthy, drained and unready endpoints
// are passed over, and every connection attempt is reported to the pool's outlier
// detection.
type Tunnels struct {
	opts   TunnelOptions
	dialer net.Dialer
}

// NewTunnels returns Tunnels with opts.
func NewTunnels(opts TunnelOptions) *Tunnels {
	opts = opts.withDefaults()
	return &Tunnels{opts: opts, dialer: net.Dialer{Timeout: opts.ConnectTimeout, KeepAlive: 30 * time.Second}}
}

// TunnelResult says how opening a CONNECT tunnel went, for edge statistics.
type TunnelResult struct {
	// Opened is set when the tunnel was established.
	Opened bool
	// ConnectTime is how long connecting upstream took, failed attempts included.
	ConnectTime time.Duration
}

// TunnelReport receives the result of opening a tunnel as soon as it is known,
// before the tunnel carries anything: a tunnel may live for hours, and statistics
// should see it when it opens. It may be nil.
type TunnelReport func(TunnelResult)

func (f TunnelReport) send(res TunnelResult) {
	if f != nil {
		f(res)
	}
}

// ServeService answers CONNECT r with a tunnel to an endpoint of pool (nil when the
// port has no backend), and returns once the tunnel has closed. raw is the
// connection's own ResponseWriter (the tunnel takes the connection over); w is the
// one failures are answered through. The endpoint's in-flight count holds the
// tunnel for its whole life, and the pool's circuit breaker admits it as a request.
func (t *Tunnels) ServeService(raw, w http.ResponseWriter, r *http.Request, pool *backend.Pool, report TunnelReport) {
	start := time.Now()
	info := reqctx.From(r.Context())
	if pool == nil {
		refuse(w, info, reqctx.FlagNoEndpoints, http.StatusServiceUnavailable, "the service port has no endpoints")
		report.send(TunnelResult{ConnectTime: time.Since(start)})
		return
	}
	if info != nil {
		info.Backend = pool.Name()
	}
	release, err := pool.Breaker().Acquire(r.Context())
	if err != nil {
		refuse(w, info, reqctx.FlagCircuitOpen, http.StatusServiceUnavailable, "the service is at capacity")
		report.send(TunnelResult{ConnectTime: time.Since(start)})
		return
	}
	defer release()
	upstream, ep, err := t.dial(r.Context(), pool, info)
	result := TunnelResult{ConnectTime: time.Since(start)}
	if info != nil {
		info.UpstreamTime = result.ConnectTime
	}
	switch {
	case errors.Is(err, backend.ErrNoEndpoints):
		refuse(w, info, reqctx.FlagNoEndpoints, http.StatusServiceUnavailable, "the service has no serving endpoints")
		report.send(result)
		return
	case err != nil:
		t.opts.Logger.Warn("CONNECT to a service failed", "backend", pool.Name(), "error", err)
		refuse(w, info, reqctx.FlagUpstreamConnectFailed, http.StatusBadGateway, "no endpoint of the service accepted the connection")
		report.send(result)
		return
	}
	ep.InFlight.Add(1)
	defer ep.InFlight.Add(-1)
	runTunnel(raw, r, upstream, t.opts.IdleTimeout, t.opts.Logger, result, report)
}

// dial connects to an endpoint of pool, trying another one after a connection
// failure, up to the attempts configured and no more than the pool has endpoints.
// Each attempt is reported to outlier detection and counted on its endpoint.
func (t *Tunnels) dial(ctx context.Context, pool *backend.Pool, info *reqctx.Info) (net.Conn, *backend.Endpoint, error) {
	var prev *backend.Endpoint
	var lastErr error
	attempts := min(t.opts.ConnectAttempts, max(len(pool.Endpoints()), 1))
	for range attempts {
		ep, err := pool.PickExcept(prev)
		if err != nil {
			return nil, nil, err
		}
		if info != nil {
			info.Attempts++
			info.Endpoint = ep.Address
		}
		ep.Requests.Add(1)
		conn, err := t.dialer.DialContext(ctx, "tcp", ep.Address)
		if err == nil {
			pool.Report(ep, backend.OutcomeSuccess)
			return conn, ep, nil
		}
		ep.Failures.Add(1)
		pool.Report(ep, backend.OutcomeGatewayError)
		lastErr = fmt.Errorf("endpoint %s: %w", ep.Address, err)
		if ctx.Err() != nil {
			break
		}
		prev = ep
		if info != nil {
			info.Flags |= reqctx.FlagRetried
		}
	}
	return nil, nil, lastErr
}

// runTunnel establishes the tunnel with the client over upstream, reports result
// (opened or not), and copies until the tunnel closes.
func runTunnel(raw http.ResponseWriter, r *http.Request, upstream net.Conn, idle time.Duration, logger *slog.Logger,
	result TunnelResult, report TunnelReport) {
	client, early, err := establish(raw, r)
	if err != nil {
		_ = upstream.Close()
		logger.Debug("CONNECT tunnel could not be established", "error", err)
		report.send(result)
		return
	}
	result.Opened = true
	report.send(result)
	if err := writeEarly(upstream, early, idle); err != nil {
		_ = upstream.Close()
		_ = client.Close()
		return
	}
	splice(client, upstream, idle)
}

// refuse answers a request the node replica does not serve, naming why in the
// X-Switchyard-Error header and flagging it in info (which may be nil).
func refuse(w http.ResponseWriter, info *reqctx.Info, flag reqctx.Flags, status int, msg string) {
	if info != nil {
		info.Flags |= flag
	}
	w.Header().Set("X-Switchyard-Error", flag.String())
	http.Error(w, msg, status)
}
