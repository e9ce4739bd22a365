package main

import (
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/gateway/admin"
	"github.com/switchyard-dev/switchyard/gateway/backend"
	"github.com/switchyard-dev/switchyard/gateway/dataplane"
	"github.com/switchyard-dev/switchyard/gateway/proxy"
	"github.com/switchyard-dev/switchyard/gateway/ratelimit"
	"github.com/switchyard-dev/switchyard/gateway/server"
)

// commonFlags are the flags of every long-running command: logging and the admin API.
type commonFlags struct {
	adminAddr      string
	adminTokenFile string
	metricsAddr    string
	logLevel       string
	logFormat      string
	profiling      bool
}

func (c *commonFlags) register(fs *flag.FlagSet, defaultAdminAddr string) {
	fs.StringVar(&c.adminAddr, "admin-addr", defaultAdminAddr, "admin API address; a non-loopback address needs --admin-token-file")
	fs.StringVar(&c.adminTokenFile, "admin-token-file", "", "file holding the bearer token that guards /api/v1/*")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "extra address serving only /healthz, /readyz and /metrics, without authentication")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	fs.BoolVar(&c.profiling, "profiling", false, "serve the Go runtime's profiles (CPU, heap, goroutines, trace) under /api/v1/debug/pprof/ on the admin API")
}

// setUp builds the logger and reads the admin token, if one is configured.
func (c *commonFlags) setUp() (*slog.Logger, string, error) {
	logger, err := newLogger(c.logLevel, c.logFormat)
	if err != nil {
		return nil, "", err
	}
	if c.adminTokenFile == "" {
		return logger, "", nil
	}
	token, err := admin.LoadToken(c.adminTokenFile)
	return logger, token, err
}

// adminConfig returns the admin servers' configuration for state.
func (c *commonFlags) adminConfig(token string, state admin.State) adminConfig {
	return adminConfig{addr: c.adminAddr, token: token, metricsAddr: c.metricsAddr, state: state, profiling: c.profiling}
}

// dataPlaneFlags are the flags of commands that carry traffic.
type dataPlaneFlags struct {
	observeFlags
	trustedProxies    string
	shutdownDelay     time.Duration
	drainTimeout      time.Duration
	redisURL          string
	redisMode         string
	redisPasswordFile string
	http1             string
	http2             string
	forwarding        string
	gcPercent         int
}

func (d *dataPlaneFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.trustedProxies, "trusted-proxies", "", "comma-separated CIDRs whose X-Forwarded-* headers are trusted")
	fs.DurationVar(&d.shutdownDelay, "shutdown-delay", 0, "on SIGTERM, how long to stay up while reporting unready before closing listeners")
	fs.DurationVar(&d.drainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, how long in-flight requests may take to finish")
	fs.StringVar(&d.redisURL, "redis-url", "", "Redis for global rate limits, as a go-redis URL (redis:// or rediss:// for TLS); without it each replica enforces its share")
	fs.StringVar(&d.redisMode, "redis-mode", ratelimit.RedisStandalone, "standalone, cluster or sentinel")
	fs.StringVar(&d.redisPasswordFile, "redis-password-file", "", "file holding the Redis password")
	fs.StringVar(&d.http1, "http1", "", "HTTP/1.1 implementation for clients and backends: fast (built for the data path) or std (net/http); "+
		"default: $"+server.HTTP1ModeEnv+", else fast")
	fs.StringVar(&d.http2, "http2", "", "HTTP/2 server for clients when --http1 is fast: fast (built for the data path) or std (net/http); "+
		"default: $"+server.HTTP2ModeEnv+", else "+string(server.DefaultHTTP2Mode))
	fs.StringVar(&d.forwarding, "forwarding", "", "how HTTP/1.1 requests of rules sent to cleartext backends without filters of their own, with no filters but rate limits and "+
		"header modifiers, are forwarded: raw (from their wire form, where the request and the answer allow; see the README) or handler (always by the rule's handler); default: $"+dataplane.ForwardingModeEnv+", else raw")
	fs.IntVar(&d.gcPercent, "gc-percent", 0, "garbage collection target, as GOGC: heap growth in percent over the live heap before a collection; "+
		"negative turns collection off (set GOMEMLIMIT then); 0: $GOGC when set, else "+strconv.Itoa(defaultGCPercent))
	d.observeFlags.register(fs)
}

// engine builds the data plane, whose metrics go to reg. replicas returns how many
// replicas share global rate limits (nil: this process alone, as in standalone
// mode). node makes it a node replica's (nil for edge replicas and standalone). The
// returned stop writes out the access log and the spans; call it once the engine has
// drained.
func (d *dataPlaneFlags) engine(logger *slog.Logger, replicas func() int, reg prometheus.Registerer, node *dataplane.NodeOptions) (*dataplane.Engine, func(), error) {
	trusted, err := parseCIDRs(d.trustedProxies)
	if err != nil {
		return nil, nil, err
	}
	http1, err := server.ParseHTTP1Mode(d.http1)
	if err != nil {
		return nil, nil, fmt.Errorf("--http1: %w", err)
	}
	http2, err := server.ParseHTTP2Mode(d.http2)
	if err != nil {
		return nil, nil, fmt.Errorf("--http2: %w", err)
	}
	if http1 == server.HTTP1Std && d.http2 != "" && http2 != server.HTTP2Std {
		logger.Warn("--http2 has no effect with --http1 std: net/http serves HTTP/2 too", "http2", string(http2))
	}
	forwarding, err := dataplane.ParseForwardingMode(d.forwarding)
	if err != nil {
		return nil, nil, fmt.Errorf("--forwarding: %w", err)
	}
	d.tuneRuntime(logger)
	opts := dataplane.Options{
		Forwarding: forwarding,
		Limits:     server.DefaultLimits(),
		Backend:    backend.Options{HTTP1: string(http1)},
		Proxy:      proxy.Options{TrustedProxies: trusted},
		Logger:     logger,
		Replicas:   replicas,
		Node:       node,
	}
	opts.Limits.HTTP1 = http1
	opts.Limits.HTTP2 = http2
	if d.redisURL != "" {
		if opts.Redis, err = ratelimit.NewRedisClient(d.redisURL, d.redisMode, d.redisPasswordFile); err != nil {
			return nil, nil, err
		}
	}
	obs, stop, err := d.observer(reg, logger)
	if err != nil {
		return nil, nil, err
	}
	opts.Observer = obs
	return dataplane.New(opts), stop, nil
}

func (d *dataPlaneFlags) drain() drainOptions {
	return drainOptions{shutdownDelay: d.shutdownDelay, drainTimeout: d.drainTimeout}
}
