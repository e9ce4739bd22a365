package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/switchyard-dev/switchyard/controller/standalone"
	"github.com/switchyard-dev/switchyard/gateway/admin"
	"github.com/switchyard-dev/switchyard/gateway/dataplane"
	"github.com/switchyard-dev/switchyard/gateway/proxy"
	"github.com/switchyard-dev/switchyard/gateway/server"
	_ "github.com/switchyard-dev/switchyard/plugins/all"
)

type standaloneFlags struct {
	config         string
	adminAddr      string
	adminTokenFile string
	metricsAddr    string
	trustedProxies string
	watchInterval  time.Duration
	shutdownDelay  time.Duration
	drainTimeout   time.Duration
	logLevel       string
	logFormat      string
}

func parseStandaloneFlags(args []string) (*standaloneFlags, error) {
	f := &standaloneFlags{}
	fs := flag.NewFlagSet("standalone", flag.ContinueOnError)
	fs.StringVar(&f.config, "config", "", "manifest file or folder of YAML files (required)")
	fs.StringVar(&f.adminAddr, "admin-addr", "127.0.0.1:9901", "admin API address; a non-loopback address needs --admin-token-file")
	fs.StringVar(&f.adminTokenFile, "admin-token-file", "", "file holding the bearer token that guards /api/v1/*")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", "extra address serving only /healthz, /readyz and /metrics, without authentication")
	fs.StringVar(&f.trustedProxies, "trusted-proxies", "", "comma-separated CIDRs whose X-Forwarded-* headers are trusted")
	fs.DurationVar(&f.watchInterval, "watch-interval", 250*time.Millisecond, "how often to check the manifests for edits")
	fs.DurationVar(&f.shutdownDelay, "shutdown-delay", 0, "on SIGTERM, how long to stay up while reporting unready before closing listeners")
	fs.DurationVar(&f.drainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, how long in-flight requests may take to finish")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "text or json")
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
	logger, err := newLogger(f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	trusted, err := parseCIDRs(f.trustedProxies)
	if err != nil {
		return err
	}
	token := ""
	if f.adminTokenFile != "" {
		if token, err = admin.LoadToken(f.adminTokenFile); err != nil {
			return err
		}
	}
	engine := dataplane.New(dataplane.Options{
		Limits: server.DefaultLimits(),
		Proxy:  proxy.Options{TrustedProxies: trusted},
		Logger: logger,
	})
	runner := standalone.New(f.config, engine, logger)
	adminSrv, err := admin.New(admin.Options{Addr: f.adminAddr, Token: token, State: runner, Logger: logger})
	if err != nil {
		return err
	}
	if err := adminSrv.Start(); err != nil {
		return err
	}
	servers := []*admin.Server{adminSrv}
	if f.metricsAddr != "" {
		ms, err := admin.NewMetricsServer(f.metricsAddr, runner, nil, logger)
		if err != nil {
			return err
		}
		if err := ms.Start(); err != nil {
			return err
		}
		servers = append(servers, ms)
	}
	logger.Info("admin API listening", "addr", adminSrv.Addr())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := runner.Start(ctx, f.watchInterval); err != nil {
		logger.Error("the initial configuration is not valid; serving nothing until it is fixed", "error", err)
	}
	return serveUntilSignalled(f, runner, engine, servers, cancel, logger)
}

// serveUntilSignalled reloads on SIGHUP and file edits, and on SIGTERM or SIGINT drains
// and exits.
func serveUntilSignalled(f *standaloneFlags, runner *standalone.Runner, engine *dataplane.Engine,
	servers []*admin.Server, stopWatching context.CancelFunc, logger *slog.Logger) error {
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)
	for sig := range signals {
		if sig == syscall.SIGHUP {
			logger.Info("SIGHUP: reloading")
			_ = runner.Reload()
			continue
		}
		break
	}
	logger.Info("shutting down: draining in-flight requests", "shutdownDelay", f.shutdownDelay, "drainTimeout", f.drainTimeout)
	stopWatching()
	engine.SetDraining(true)
	time.Sleep(f.shutdownDelay)
	drainCtx, drainCancel := context.WithTimeout(context.Background(), f.drainTimeout)
	defer drainCancel()
	err := engine.Shutdown(drainCtx)
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
