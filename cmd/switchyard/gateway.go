package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/admin"
	"github.com/switchyard-dev/switchyard/gateway/agent"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/dataplane"
	"github.com/switchyard-dev/switchyard/gateway/proxy"
	"github.com/switchyard-dev/switchyard/gateway/server"
)

type gatewayFlags struct {
	controller     string
	node           string
	role           string
	tokenFile      string
	caFile         string
	statePath      string
	adminAddr      string
	adminTokenFile string
	metricsAddr    string
	trustedProxies string
	shutdownDelay  time.Duration
	drainTimeout   time.Duration
	logLevel       string
	logFormat      string
}

func parseGatewayFlags(args []string) (*gatewayFlags, error) {
	f := &gatewayFlags{}
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.StringVar(&f.controller, "controller", "", "URL of the controller's snapshot server, https://HOST:PORT (required)")
	fs.StringVar(&f.node, "node", envOr("NODE_NAME", ""), "name of this replica's node (required; defaults to $NODE_NAME)")
	fs.StringVar(&f.role, "role", "edge", "edge (north-south, serves Gateways) or node (east-west, one per node)")
	fs.StringVar(&f.tokenFile, "token-file", "/var/run/secrets/tokens/switchyard-gateway", "file holding the bearer token presented to the controller; re-read on every connection")
	fs.StringVar(&f.caFile, "ca-file", "", "PEM CA bundle that signed the controller's certificate; empty means the system roots")
	fs.StringVar(&f.statePath, "state-path", "", "file where the last good snapshot is kept (mode 0600), used when the controller is unreachable at start")
	fs.StringVar(&f.adminAddr, "admin-addr", "127.0.0.1:9901", "admin API address; a non-loopback address needs --admin-token-file")
	fs.StringVar(&f.adminTokenFile, "admin-token-file", "", "file holding the bearer token that guards /api/v1/*")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", "extra address serving only /healthz, /readyz and /metrics, without authentication")
	fs.StringVar(&f.trustedProxies, "trusted-proxies", "", "comma-separated CIDRs whose X-Forwarded-* headers are trusted")
	fs.DurationVar(&f.shutdownDelay, "shutdown-delay", 0, "on SIGTERM, how long to stay up while reporting unready before closing listeners")
	fs.DurationVar(&f.drainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, how long in-flight requests may take to finish")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "text or json")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case f.controller == "":
		return nil, errors.New("--controller is required")
	case f.node == "":
		return nil, errors.New("--node is required (or set NODE_NAME)")
	case f.role != "edge" && f.role != "node":
		return nil, fmt.Errorf("--role %q: want edge or node", f.role)
	}
	return f, nil
}

// gatewayState is what the admin API reports for a fleet replica: the data plane's
// configuration, ready once a snapshot (from the controller or the saved file) serves.
type gatewayState struct {
	engine *dataplane.Engine
	agent  *agent.Agent
}

func (s *gatewayState) Ready() bool { return s.agent.Ready() && s.engine.Ready() }

func (s *gatewayState) Config() admin.ConfigView {
	snap, at := s.engine.Snapshot()
	v := admin.ConfigView{Snapshot: snap, AppliedAt: at}
	if snap != nil {
		v.Version = snap.Version
	}
	return v
}

func (s *gatewayState) Status() any { return s.agent.Status() }

func runGateway(args []string) error {
	f, err := parseGatewayFlags(args)
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
	engine := dataplane.New(dataplane.Options{Limits: server.DefaultLimits(), Proxy: proxy.Options{TrustedProxies: trusted}, Logger: logger})
	ag, err := agent.New(agent.Options{
		ControllerURL: f.controller, Node: f.node, Role: f.role,
		TokenFile: f.tokenFile, CAFile: f.caFile, StatePath: f.statePath,
		Apply:  func(s *config.Snapshot) error { return engine.Apply(s) },
		Logger: logger,
	})
	if err != nil {
		return err
	}
	state := &gatewayState{engine: engine, agent: ag}
	servers, err := startAdminServers(adminConfig{addr: f.adminAddr, token: token, metricsAddr: f.metricsAddr, state: state}, logger)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		if err := ag.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("controller connection stopped", "error", err)
		}
	}()
	return drainOnSignal(drainOptions{shutdownDelay: f.shutdownDelay, drainTimeout: f.drainTimeout},
		nil, engine, servers, cancel, logger)
}
