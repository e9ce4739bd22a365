package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchyard-dev/switchyard/gateway/admin"
	"github.com/switchyard-dev/switchyard/gateway/agent"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/dataplane"
	"github.com/switchyard-dev/switchyard/gateway/outcome"
)

type gatewayFlags struct {
	commonFlags
	dataPlaneFlags
	nodeFlags
	controller string
	node       string
	role       string
	tokenFile  string
	caFile     string
	statePath  string
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
	f.commonFlags.register(fs, admin.DefaultAddr)
	f.dataPlaneFlags.register(fs)
	f.nodeFlags.register(fs)
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
	case f.role == "edge" && nodeFlagsSet(fs):
		return nil, errNodeFlagsOnEdge
	case f.role == "node":
		if _, err := f.nodeFlags.options(); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// nodeFlagsSet reports whether a flag only node replicas use was given.
func nodeFlagsSet(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "listen", "egress", "egress-allow", "node-addresses", "service-cidrs", "kubeconfig", "tunnel-idle-timeout":
			set = true
		}
	})
	return set
}

// gatewayState is what the admin API reports for a fleet replica: the data plane's
// configuration, ready once a snapshot (from the controller or the saved file) serves.
type gatewayState struct {
	engine *dataplane.Engine
	agent  *agent.Agent
	// node is the node replica's Pod watch; nil on edge replicas.
	node *nodeRuntime
}

func (s *gatewayState) Ready() bool { return s.agent.Ready() && s.engine.Ready() && s.node.Ready() }

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
	logger, token, err := f.setUp()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var nodeOpts *dataplane.NodeOptions
	var node *nodeRuntime
	if f.role == "node" {
		if nodeOpts, node, err = f.nodeFlags.startNode(ctx, f.node, logger); err != nil {
			return err
		}
	}
	// The engine learns the fleet's size from the agent, which is made after it.
	var agentRef atomic.Pointer[agent.Agent]
	reg := newMetricsRegistry()
	engine, stopObserving, err := f.engine(logger, func() int {
		if a := agentRef.Load(); a != nil {
			return a.Replicas()
		}
		return 1
	}, reg, nodeOpts)
	if err != nil {
		return err
	}
	defer stopObserving()
	ag, err := agent.New(agent.Options{
		ControllerURL: f.controller, Node: f.node, Role: f.role,
		TokenFile: f.tokenFile, CAFile: f.caFile, StatePath: f.statePath,
		Apply: func(s *config.Snapshot) error {
			// A node replica binds its listener only once it knows its node's Pods:
			// in the port's SO_REUSEPORT group beside a replica being replaced, the
			// kernel would otherwise give it connections whose callers it cannot
			// identify yet, and it would refuse them.
			if !node.waitForPods(ctx) {
				return ctx.Err()
			}
			return engine.Apply(s)
		},
		Logger: logger,
		// The controller adds up the replicas' request outcomes per backend.
		Outcomes: engine.BackendOutcomes,
		// Node replicas also report the service graph's edges.
		Edges: graphEdges(engine, f.role),
	})
	if err != nil {
		return err
	}
	agentRef.Store(ag)
	state := &gatewayState{engine: engine, agent: ag, node: node}
	cfg := f.adminConfig(token, state)
	cfg.metrics = gatewayMetrics(reg, engine, ag)
	cfg.dataPlane = admin.NewEngineDataPlane(engine)
	servers, err := startAdminServers(cfg, logger)
	if err != nil {
		return err
	}
	agentDone := make(chan struct{})
	go func() {
		defer close(agentDone)
		if err := ag.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("controller connection stopped", "error", err)
		}
	}()
	// Stopping the agent waits for it, so that its last snapshot is saved.
	stopAgent := func() { cancel(); <-agentDone }
	return drainOnSignal(f.drain(), nil, engine, servers, stopAgent, logger)
}

// gatewayMetrics serves the replica's metrics: those on reg (runtime, process and the
// data plane's), route table compilations (flat while only endpoints change) and
// whether the snapshot stream is open.
func gatewayMetrics(reg *prometheus.Registry, engine *dataplane.Engine, ag *agent.Agent) http.Handler {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "switchyard_gateway_route_table_compilations_total",
			Help: "Route tables compiled; snapshots that change only backends and endpoints reuse the compiled table.",
		}, func() float64 { return float64(engine.RouteCompilations()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchyard_gateway_controller_connected",
			Help: "1 while the snapshot stream to the controller is open.",
		}, func() float64 {
			if ag.Status().Connected {
				return 1
			}
			return 0
		}),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// graphEdges returns the source of a node replica's service graph edges for the
// agent, keyed as the controller aggregates them; nil for edge replicas, which see
// no east-west callers.
func graphEdges(engine *dataplane.Engine, role string) func() map[outcome.EdgeKey]outcome.Totals {
	if role != "node" {
		return nil
	}
	return func() map[outcome.EdgeKey]outcome.Totals {
		report := engine.MeshEdges()
		edges := make(map[outcome.EdgeKey]outcome.Totals, len(report.Edges))
		for _, e := range report.Edges {
			key := outcome.EdgeKey{Caller: e.Caller(), Callee: e.Callee()}
			edges[key] = edges[key].Add(e.Totals)
		}
		return edges
	}
}
