package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/switchyard-dev/switchyard/controller/standalone"
	"github.com/switchyard-dev/switchyard/gateway/admin"
	"github.com/switchyard-dev/switchyard/gateway/dataplane"
	_ "github.com/switchyard-dev/switchyard/plugins/all"
)

type standaloneFlags struct {
	commonFlags
	dataPlaneFlags
	config        string
	watchInterval time.Duration
	stateDir      string
}

func parseStandaloneFlags(args []string) (*standaloneFlags, error) {
	f := &standaloneFlags{}
	fs := flag.NewFlagSet("standalone", flag.ContinueOnError)
	fs.StringVar(&f.config, "config", "", "manifest file or folder of YAML files (required)")
	fs.DurationVar(&f.watchInterval, "watch-interval", 250*time.Millisecond, "how often to check the manifests for edits")
	fs.StringVar(&f.stateDir, "state-dir", "", "directory keeping each Rollout's state across restarts; without it a restart starts every rollout again")
	f.commonFlags.register(fs, admin.DefaultAddr)
	f.dataPlaneFlags.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if f.config == "" {
		return nil, errors.New("--config is required")
	}
	return f, nil
}

func runStandalone(args []string) error {
	f, err := parseStandaloneFlags(args)
	if err != nil {
		return err
	}
	logger, token, err := f.setUp()
	if err != nil {
		return err
	}
	reg := newMetricsRegistry()
	engine, stopObserving, err := f.engine(logger, nil, reg, nil)
	if err != nil {
		return err
	}
	defer stopObserving()
	runner, err := standalone.New(f.config, engine, standalone.Options{Logger: logger, StateDir: f.stateDir, Outcome: engine.BackendOutcome})
	if err != nil {
		return err
	}
	reg.MustRegister(configRejections(runner))
	cfg := f.adminConfig(token, runner)
	cfg.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	cfg.dataPlane = admin.NewEngineDataPlane(engine)
	servers, err := startAdminServers(cfg, logger)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := runner.Start(ctx, f.watchInterval); err != nil {
		logger.Error("the initial configuration is not valid; serving nothing until it is fixed", "error", err)
	}
	reload := func() { _ = runner.Reload() }
	return drainOnSignal(f.drain(), reload, engine, servers, cancel, logger)
}

// configRejections exports when the standalone runner last refused an edit of the
// manifests. Edits that fail translation never reach the data plane, whose
// switchyard_config_reloads_total counts only the snapshots it was given.
func configRejections(runner *standalone.Runner) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "switchyard_config_last_rejection_timestamp_seconds",
		Help: "When the last invalid edit of the manifests was refused, in Unix seconds; 0 when none was.",
	}, func() float64 {
		at := runner.Config().LastErrorAt
		if at.IsZero() {
			return 0
		}
		return float64(at.UnixNano()) / 1e9
	})
}

// adminConfig is what startAdminServers needs.
type adminConfig struct {
	addr, token, metricsAddr string
	state                    admin.State
	// metrics serves /metrics; nil means Prometheus' default registry.
	metrics http.Handler
	// dataPlane serves a gateway's data plane endpoints; nil on the controller.
	dataPlane admin.DataPlane
	// fleet serves the controller's gateway replicas; nil on a gateway.
	fleet admin.Fleet
	// graph serves the controller's service graph; nil on a gateway.
	graph admin.Graph
	// profiling serves the runtime's profiles on the admin API.
	profiling bool
	// extend adds endpoints before the server starts; nil adds none.
	extend func(*gin.Engine)
}

// startAdminServers starts the admin API, and the separate metrics server when
// metricsAddr is set.
func startAdminServers(c adminConfig, logger *slog.Logger) ([]*admin.Server, error) {
	adminSrv, err := admin.New(admin.Options{Addr: c.addr, Token: c.token, State: c.state, Metrics: c.metrics, Logger: logger,
		DataPlane: c.dataPlane, Fleet: c.fleet, Graph: c.graph, Profiling: c.profiling})
	if err != nil {
		return nil, err
	}
	if c.extend != nil {
		c.extend(adminSrv.Engine())
	}
	if err := adminSrv.Start(); err != nil {
		return nil, err
	}
	servers := []*admin.Server{adminSrv}
	if c.metricsAddr != "" {
		ms, err := admin.NewMetricsServer(c.metricsAddr, c.state, c.metrics, logger)
		if err != nil {
			return nil, err
		}
		if err := ms.Start(); err != nil {
			return nil, err
		}
		servers = append(servers, ms)
	}
	logger.Info("admin API listening", "addr", adminSrv.Addr())
	return servers, nil
}

// drainOptions say how a data plane stops on SIGTERM.
type drainOptions struct {
	shutdownDelay time.Duration
	drainTimeout  time.Duration
}

// drainOnSignal calls reload on SIGHUP (when not nil), and on SIGTERM or SIGINT
// reports unready for the shutdown delay, drains in-flight requests, stops the
// configuration source and returns. The source stops last: while load balancers still
// send traffic during the drain, endpoint changes must keep arriving.
func drainOnSignal(o drainOptions, reload func(), engine *dataplane.Engine,
	servers []*admin.Server, stopSource func(), logger *slog.Logger) error {
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)
	for sig := range signals {
		if sig == syscall.SIGHUP {
			if reload != nil {
				logger.Info("SIGHUP: reloading")
				reload()
			}
			continue
		}
		break
	}
	logger.Info("shutting down: draining in-flight requests", "shutdownDelay", o.shutdownDelay, "drainTimeout", o.drainTimeout)
	engine.SetDraining(true)
	time.Sleep(o.shutdownDelay)
	drainCtx, drainCancel := context.WithTimeout(context.Background(), o.drainTimeout)
	defer drainCancel()
	err := engine.Shutdown(drainCtx)
	stopSource()
	for _, s := range servers {
		_ = s.Shutdown(drainCtx)
	}
	if err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	logger.Info("stopped")
	return nil
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

func parseCIDRs(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxies: %w", err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
