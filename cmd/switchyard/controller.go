package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/switchyard-dev/switchyard/controller/coalesce"
	"github.com/switchyard-dev/switchyard/controller/distribute"
	"github.com/switchyard-dev/switchyard/controller/graph"
	"github.com/switchyard-dev/switchyard/controller/kube"
	"github.com/switchyard-dev/switchyard/controller/leader"
	"github.com/switchyard-dev/switchyard/controller/manager"
	"github.com/switchyard-dev/switchyard/controller/placement"
	"github.com/switchyard-dev/switchyard/controller/status"
	"github.com/switchyard-dev/switchyard/controller/translate"
	"github.com/switchyard-dev/switchyard/gateway/admin"
)

type controllerFlags struct {
	kubeconfig     string
	controllerName string
	snapshotAddr   string
	tlsCert        string
	tlsKey         string
	tokenFile      string
	serviceAccts   string
	audiences      string
	addressPool    string
	placementMode  string
	edgeSelector   string
	portRange      string
	serviceType    string
	identity       string
	leaderElect    bool
	leaseNamespace string
	leaseName      string
	holdOff        time.Duration
	maxDelay       time.Duration
	webhook        webhookFlags
	eastWest       bool
	clusterDomain  string
	commonFlags
}

func parseControllerFlags(args []string) (*controllerFlags, error) {
	f := &controllerFlags{}
	host, _ := os.Hostname()
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file; empty means $KUBECONFIG, else the in-cluster ServiceAccount")
	fs.StringVar(&f.controllerName, "controller-name", translate.ControllerName, "GatewayClass controllerName to serve")
	fs.StringVar(&f.snapshotAddr, "snapshot-addr", ":18000", "address the gateway replicas connect to for snapshots (TLS)")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "PEM certificate of the snapshot server (required)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM private key of the snapshot server (required)")
	fs.StringVar(&f.tokenFile, "gateway-token-file", "", "file holding a shared bearer token that gateway replicas may present")
	fs.StringVar(&f.audiences, "gateway-token-audiences", "", "comma-separated audiences ServiceAccount tokens must carry (for example a projected token's audience \"switchyard\"); empty means the API server's")
	fs.StringVar(&f.serviceAccts, "gateway-service-accounts", "", "comma-separated ServiceAccounts (namespace/name) whose tokens, checked with a TokenReview, gateway replicas may present")
	fs.StringVar(&f.placementMode, "placement", "", "how Gateways are placed on the edge tier: service (one Service per Gateway, container ports allocated) or pool (addresses from --address-pool); empty means pool when --address-pool is set, else service")
	fs.StringVar(&f.addressPool, "address-pool", "", "pool mode: comma-separated IPs and CIDRs to give Gateways addresses from")
	fs.StringVar(&f.edgeSelector, "edge-selector", "app.kubernetes.io/name=switchyard,app.kubernetes.io/component=edge", "service mode: label selector of the edge replica Pods")
	fs.StringVar(&f.portRange, "port-range", "20000-29999", "service mode: container ports to allocate to Gateway listeners")
	fs.StringVar(&f.serviceType, "service-type", "LoadBalancer", "service mode: Service type when the GatewayClass parameters name none")
	fs.StringVar(&f.identity, "identity", host+"-"+randomSuffix(), "this replica's name in the leader Lease (unique per process)")
	fs.BoolVar(&f.leaderElect, "leader-elect", true, "elect a leader on a Lease; only the leader writes status and Services")
	fs.StringVar(&f.leaseNamespace, "leader-election-namespace", envOr("POD_NAMESPACE", "switchyard-system"), "namespace of the leader Lease")
	fs.StringVar(&f.leaseName, "leader-election-name", "switchyard-controller", "name of the leader Lease")
	fs.DurationVar(&f.holdOff, "hold-off", coalesce.DefaultHoldOff, "translate once no change arrived for this long")
	fs.DurationVar(&f.maxDelay, "max-delay", coalesce.DefaultMaxDelay, "but never later than this after the first pending change")
	f.webhook.register(fs)
	fs.BoolVar(&f.eastWest, "east-west", true, "translate the east-west mesh (Services and HTTPRoutes whose parentRef is a Service) for node replicas, and report on those parentRefs")
	fs.StringVar(&f.clusterDomain, "cluster-domain", "cluster.local", "the cluster's DNS suffix, by which node replicas recognise Service names")
	f.commonFlags.register(fs, "127.0.0.1:9902")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := f.webhook.validate(); err != nil {
		return nil, err
	}
	if f.tlsCert == "" || f.tlsKey == "" {
		return nil, errors.New("--tls-cert and --tls-key are required: snapshots carry TLS private keys and travel only encrypted")
	}
	if f.tokenFile == "" && f.serviceAccts == "" {
		return nil, errors.New("set --gateway-token-file or --gateway-service-accounts: gateway replicas must authenticate")
	}
	if errs := validation.IsDNS1123Subdomain(strings.TrimSuffix(strings.ToLower(f.clusterDomain), ".")); len(errs) > 0 {
		return nil, fmt.Errorf("--cluster-domain %q: %s", f.clusterDomain, strings.Join(errs, "; "))
	}
	return f, nil
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	// Informers list everything at start; the defaults (5 QPS) would make a large
	// cluster's first sync and a burst of status writes crawl.
	cfg.QPS, cfg.Burst = 200, 400
	cfg.UserAgent = "switchyard-controller/" + version
	return cfg, nil
}

func runController(args []string) error {
	f, err := parseControllerFlags(args)
	if err != nil {
		return err
	}
	logger, token, err := f.setUp()
	if err != nil {
		return err
	}
	cfg, err := restConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	kubeClient, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	gwClient, err := gwclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dynClient, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	c, err := newControllerParts(f, clients{kube: kubeClient, gateway: gwClient, dynamic: dynClient}, logger)
	if err != nil {
		return err
	}
	return c.run(ctx, token)
}

// controllerParts is a wired controller: informers, placement, translation, status,
// snapshot server, leader election and admin API.
type controllerParts struct {
	f        *controllerFlags
	logger   *slog.Logger
	kube     kubernetes.Interface
	source   *kube.Source
	mgr      *manager.Manager
	snaps    *distribute.Server
	trigger  *coalesce.Coalescer
	elector  *leader.Elector
	rollouts *rolloutTerms
	fleet    fleetView
	graph    *graph.Graph
	registry *prometheus.Registry
	tls      *tls.Config
	webhook  *controllerWebhook

	// synced is set once every informer has listed: before that a translation would
	// see a partial cluster, publish a snapshot missing routes and, when leading,
	// delete the Services of Gateways not yet listed.
	synced atomic.Bool
	// leadership is the context of the current term as leader (cancelled when the
	// Lease is lost); writes to the API server run under it, so that a deposed leader
	// stops writing at once. Without leader election it is the process's context.
	leadership atomic.Pointer[context.Context]
	retry      retryBackoff
}

// retryBackoff spaces out the re-translations that retry failed writes: one second
// after the first failure, doubling to a minute while failures go on.
type retryBackoff struct {
	mu       sync.Mutex
	failures int
}

// after records the outcome of a round of writes and returns how long to wait before
// retrying, or 0 when the round succeeded.
func (r *retryBackoff) after(failed bool) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !failed {
		r.failures = 0
		return 0
	}
	r.failures++
	return min(time.Second<<min(r.failures-1, 6), time.Minute)
}

// retryWritesLater schedules a translation to retry failed writes, with backoff.
func (c *controllerParts) retryWritesLater(failed bool) {
	if wait := c.retry.after(failed); wait > 0 {
		time.AfterFunc(wait, c.trigger.Trigger)
	}
}

// writeContext is the context API writes run under: the current leadership term.
func (c *controllerParts) writeContext() context.Context {
	if p := c.leadership.Load(); p != nil {
		return *p
	}
	return context.Background()
}

// changed is the informers' notification: translate soon, once the caches are full.
func (c *controllerParts) changed() {
	if c.synced.Load() {
		c.trigger.Trigger()
	}
}

// clients are the API clients the controller uses: the dynamic client serves
// Switchyard's own kinds (TrafficPolicy, Rollout), which have no typed client.
type clients struct {
	kube    kubernetes.Interface
	gateway gwclient.Interface
	dynamic dynamic.Interface
}

func newControllerParts(f *controllerFlags, cs clients, logger *slog.Logger) (*controllerParts, error) {
	kubeClient, gwClient := cs.kube, cs.gateway
	c := &controllerParts{f: f, logger: logger, kube: kubeClient, registry: prometheus.NewRegistry()}
	c.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	tlsConfig, err := distribute.LoadServerTLSWithLogger(f.tlsCert, f.tlsKey, logger)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	c.tls = tlsConfig
	if c.webhook, err = newControllerWebhook(f.webhook, logger, c.registry); err != nil {
		return nil, err
	}
	auth, err := gatewayAuthenticator(f, kubeClient)
	if err != nil {
		return nil, err
	}
	c.snaps, err = distribute.NewServer(distribute.Options{Authenticator: auth, Logger: logger})
	if err != nil {
		return nil, err
	}
	c.fleet = fleetView{snaps: c.snaps, log: &publishLog{}}
	if c.graph, err = graph.New(graph.Options{Source: c.snaps.EdgeOutcomes}); err != nil {
		return nil, err
	}
	allocator, err := newAllocator(f)
	if err != nil {
		return nil, err
	}
	missing, err := kube.MissingKinds(gwClient.Discovery())
	if err != nil {
		return nil, err
	}
	for kind := range missing {
		logger.Warn("the cluster does not serve an optional kind; install its CRD and restart the controller to use it",
			"kind", kind, "resource", kube.OptionalKinds[kind].String())
	}
	c.source, err = kube.NewSource(kubeClient, gwClient, kube.SourceOptions{
		OnChange: func(kube.Change) { c.changed() },
		Logger:   logger,
		Missing:  missing,
		Dynamic:  cs.dynamic,
	})
	if err != nil {
		return nil, err
	}
	c.elector, err = leader.New(leader.Options{
		Client: kubeClient, Namespace: f.leaseNamespace, Name: f.leaseName, Identity: f.identity,
		// A new leader re-translates at once, so status and Services catch up with
		// whatever changed while nobody led.
		OnStartedLeading: func(term context.Context) {
			if f, ok := allocator.(interface{ Forget() }); ok {
				f.Forget()
			}
			c.leadership.Store(&term)
			c.rollouts.start(term)
			c.changed()
		},
		Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	writer := status.NewWriter(gwClient, logger, status.WithControllerName(f.controllerName), status.WithDynamicClient(cs.dynamic))
	services := placement.NewServiceSync(kubeClient)
	c.mgr = manager.New(manager.Options{
		Input:          c.source.Input,
		ControllerName: f.controllerName,
		Mesh:           f.eastWest,
		ClusterDomain:  f.clusterDomain,
		Place: func(ctx context.Context, in *translate.Input, leading bool) {
			res := allocator.Place(&placement.State{GatewayClasses: in.GatewayClasses, Gateways: in.Gateways,
				Services: in.Services, EndpointSlices: in.EndpointSlices, ConfigMaps: c.source.ConfigMaps(),
				ListenerSets: in.ListenerSets, Namespaces: in.Namespaces})
			res.SetOptions(&in.Options)
			// Services (and EndpointSlices) change before the snapshot that uses their
			// ports goes out, so a freed container port is never bound by two Gateways
			// at once.
			if leading && !res.Plan.Empty() {
				writeCtx, cancel := context.WithTimeout(c.writeContext(), 30*time.Second)
				err := services.Apply(writeCtx, res.Plan)
				cancel()
				if err != nil {
					logger.Error("syncing Gateway Services; retrying", "error", err)
				}
				c.retryWritesLater(err != nil)
			}
		},
		// A failed write is retried by translating again after a pause; the writer
		// skips everything already written.
		WriteStatus: func(_ context.Context, out *translate.Output) {
			n := writer.Apply(c.writeContext(), out, c.source)
			c.retryWritesLater(n.Errors > 0)
		},
		Publish:    c.fleet.publish,
		Leading:    c.leading,
		Logger:     logger,
		Registerer: c.registry,
	})
	c.trigger = coalesce.New(f.holdOff, f.maxDelay, func() { c.mgr.Sync(context.Background()) })
	c.rollouts = newRolloutTerms(c, cs.dynamic)
	return c, nil
}

func (c *controllerParts) leading() bool {
	return !c.f.leaderElect || c.elector.IsLeader()
}

func gatewayAuthenticator(f *controllerFlags, kubeClient kubernetes.Interface) (distribute.Authenticator, error) {
	var auths []distribute.Authenticator
	if f.tokenFile != "" {
		token, err := admin.LoadToken(f.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--gateway-token-file: %w", err)
		}
		auths = append(auths, distribute.SharedToken(token))
	}
	if f.serviceAccts != "" {
		var users []string
		for _, sa := range strings.Split(f.serviceAccts, ",") {
			ns, name, ok := strings.Cut(strings.TrimSpace(sa), "/")
			if !ok || ns == "" || name == "" {
				return nil, fmt.Errorf("--gateway-service-accounts: %q is not namespace/name", sa)
			}
			users = append(users, "system:serviceaccount:"+ns+":"+name)
		}
		auths = append(auths, distribute.TokenReview(kubeClient.AuthenticationV1().TokenReviews(), users, splitList(f.audiences)))
	}
	if len(auths) == 1 {
		return auths[0], nil
	}
	return anyAuthenticator(auths), nil
}

func newAllocator(f *controllerFlags) (placement.Allocator, error) {
	mode := f.placementMode
	if mode == "" {
		mode = "service"
		if f.addressPool != "" {
			mode = "pool"
		}
	}
	switch mode {
	case "pool":
		if f.addressPool == "" {
			return nil, errors.New("--placement=pool needs --address-pool")
		}
		return placement.NewPoolAllocator(placement.PoolConfig{ControllerName: f.controllerName, Addresses: splitList(f.addressPool)})
	case "service":
		lo, hi, err := parsePortRange(f.portRange)
		if err != nil {
			return nil, err
		}
		selector, err := parseSelector(f.edgeSelector)
		if err != nil {
			return nil, err
		}
		return placement.NewPortAllocator(placement.PortConfig{ControllerName: f.controllerName, MinPort: lo, MaxPort: hi,
			Selector: selector, ServiceType: corev1ServiceType(f.serviceType)})
	}
	return nil, fmt.Errorf("--placement %q: want service or pool", mode)
}

// run starts everything and blocks until ctx is done, then stops in order: stop
// leading (handing the Lease over), stop serving snapshots, stop the informers.
func (c *controllerParts) run(ctx context.Context, adminToken string) error {
	adminServers, err := c.startAdmin(adminToken)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.f.snapshotAddr)
	if err != nil {
		return fmt.Errorf("--snapshot-addr: %w", err)
	}
	snapErr := make(chan error, 1)
	go func() { snapErr <- c.snaps.Serve(ctx, ln, c.tls) }()
	go c.graph.Run(ctx)
	c.logger.Info("snapshot server listening", "addr", ln.Addr().String())
	if err := c.webhook.start(ctx); err != nil {
		return err
	}
	if err := c.source.Start(ctx); err != nil {
		return fmt.Errorf("starting informers: %w", err)
	}
	c.logger.Info("caches synced; translating")
	if !c.f.leaderElect {
		c.leadership.Store(&ctx)
	}
	c.synced.Store(true)
	if !c.f.leaderElect {
		c.rollouts.start(ctx)
	}
	c.trigger.Trigger()
	go c.mgr.RunStatusWriter(ctx)
	electorDone := make(chan struct{})
	go func() {
		defer close(electorDone)
		if c.f.leaderElect {
			_ = c.elector.Run(ctx)
		}
	}()
	select {
	case <-ctx.Done():
	case err := <-snapErr:
		if err != nil {
			c.logger.Error("snapshot server stopped", "error", err)
		}
	}
	c.logger.Info("shutting down")
	// The elector releases the Lease when ctx ends, so that another controller leads
	// at once; wait for that before exiting.
	select {
	case <-electorDone:
	case <-time.After(10 * time.Second):
		c.logger.Warn("the leader Lease was not released within 10 s")
	}
	c.trigger.Stop()
	c.source.Shutdown()
	shutdownCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	for _, s := range adminServers {
		_ = s.Shutdown(shutdownCtx)
	}
	return nil
}

func (c *controllerParts) startAdmin(token string) ([]*admin.Server, error) {
	cfg := c.f.adminConfig(token, controllerState{c.mgr, c.rollouts})
	cfg.metrics = promhttp.HandlerFor(c.registry, promhttp.HandlerOpts{})
	cfg.fleet = c.fleet
	cfg.graph = c.graph
	return startAdminServers(cfg, c.logger)
}

// anyAuthenticator accepts a token that any of its authenticators accepts. When all
// reject it, an "unavailable" error wins over a rejection, so that a replica retries
// rather than gives up while the API server is unreachable.
type anyAuthenticator []distribute.Authenticator

func (a anyAuthenticator) Authenticate(ctx context.Context, token string) (distribute.Identity, error) {
	var firstErr error
	for _, auth := range a {
		id, err := auth.Authenticate(ctx, token)
		if err == nil {
			return id, nil
		}
		if firstErr == nil || errors.Is(err, distribute.ErrAuthUnavailable) {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = errors.New("no authenticator is configured")
	}
	return distribute.Identity{}, firstErr
}

// randomSuffix tells apart processes on one host (host-network Pods share a hostname).
func randomSuffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
