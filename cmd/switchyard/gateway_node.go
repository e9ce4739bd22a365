package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/switchyard-dev/switchyard/gateway/dataplane"
	"github.com/switchyard-dev/switchyard/gateway/mesh"
	"github.com/switchyard-dev/switchyard/gateway/podwatch"
)

// defaultMeshPort is the node socket's port, which the east-west webhook points
// HTTP_PROXY at.
const defaultMeshPort = 15001

// nodeFlags are the flags of a node replica (--role node).
type nodeFlags struct {
	listen        string
	egress        string
	egressAllow   string
	nodeAddresses string
	serviceCIDRs  string
	kubeconfig    string
	tunnelIdle    time.Duration
}

func (n *nodeFlags) register(fs *flag.FlagSet) {
	listen := ":" + strconv.Itoa(defaultMeshPort)
	if ip := envOr("HOST_IP", ""); ip != "" {
		listen = net.JoinHostPort(ip, strconv.Itoa(defaultMeshPort))
	}
	fs.StringVar(&n.listen, "listen", listen, "role node: address of the node socket that Pods send east-west requests to (default $HOST_IP:15001, else :15001)")
	fs.StringVar(&n.egress, "egress", "allow", "role node: allow or deny requests out of the mesh that --egress-allow does not list (when it lists any, only those are allowed either way)")
	fs.StringVar(&n.egressAllow, "egress-allow", "", "role node: comma-separated destinations allowed out of the mesh: host names, *.wildcard domains, addresses and CIDRs")
	fs.StringVar(&n.nodeAddresses, "node-addresses", "", "role node: comma-separated addresses or CIDRs egress must never reach, besides the node's interface addresses, loopback and link-local")
	fs.StringVar(&n.serviceCIDRs, "service-cidrs", "", "role node: comma-separated Service IP ranges of the cluster; their addresses are refused as egress destinations")
	fs.StringVar(&n.kubeconfig, "kubeconfig", "", "role node: kubeconfig to watch the node's Pods with; empty means $KUBECONFIG, else the in-cluster ServiceAccount")
	fs.DurationVar(&n.tunnelIdle, "tunnel-idle-timeout", mesh.DefaultTunnelIdleTimeout, "role node: CONNECT tunnels idle both ways for this long are closed")
}

// options checks the flags and returns the node options, without Callers.
func (n *nodeFlags) options() (*dataplane.NodeOptions, error) {
	host, portText, err := net.SplitHostPort(n.listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %q: %w", n.listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 || (host != "" && net.ParseIP(host) == nil) {
		return nil, fmt.Errorf("--listen %q: want IP:PORT or :PORT", n.listen)
	}
	opts := &dataplane.NodeOptions{Address: host, Port: port, Tunnel: mesh.TunnelOptions{IdleTimeout: n.tunnelIdle}}
	switch n.egress {
	case "allow":
	case "deny":
		opts.Egress.DenyByDefault = true
	default:
		return nil, fmt.Errorf("--egress %q: want allow or deny", n.egress)
	}
	if opts.Egress.Allow, err = mesh.ParseAllowList(splitList(n.egressAllow)); err != nil {
		return nil, fmt.Errorf("--egress-allow: %w", err)
	}
	if opts.Egress.NodeAddresses, err = parseAddressList("--node-addresses", n.nodeAddresses); err != nil {
		return nil, err
	}
	if opts.Egress.ServiceCIDRs, err = parseAddressList("--service-cidrs", n.serviceCIDRs); err != nil {
		return nil, err
	}
	return opts, nil
}

// parseAddressList reads comma-separated addresses and CIDRs; an address is a range
// of one.
func parseAddressList(flagName, v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range splitList(v) {
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("%s %q: %w", flagName, s, err)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%s %q: not an address or CIDR", flagName, s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// nodeRuntime is what a node replica runs besides the engine: the watch of its
// node's Pods.
type nodeRuntime struct {
	pods *podwatch.Watcher
}

// Ready reports whether the Pods of the node are known; until then every east-west
// request would be refused.
func (r *nodeRuntime) Ready() bool { return r == nil || r.pods.Synced() }

// waitForPods waits until the Pods of the node are known, or ctx ends (false). It
// returns at once for an edge replica (nil).
func (r *nodeRuntime) waitForPods(ctx context.Context) bool {
	return r == nil || r.pods.Synced() || r.pods.WaitForSync(ctx)
}

// startNode prepares a node replica: the watch of the node's Pods, which identifies
// callers, and the node's own addresses, which egress never reaches. The watch runs
// until ctx ends.
func (n *nodeFlags) startNode(ctx context.Context, node string, logger *slog.Logger) (*dataplane.NodeOptions, *nodeRuntime, error) {
	opts, err := n.options()
	if err != nil {
		return nil, nil, err
	}
	own, err := mesh.InterfaceAddresses()
	if err != nil {
		return nil, nil, fmt.Errorf("listing the node's addresses: %w", err)
	}
	opts.Egress.NodeAddresses = append(opts.Egress.NodeAddresses, own...)
	cfg, err := restConfig(n.kubeconfig)
	if err != nil {
		return nil, nil, err
	}
	cfg.UserAgent = "switchyard-gateway/" + version
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	pods, err := podwatch.New(podwatch.Options{Client: client, Node: node, Resync: 10 * time.Minute, Logger: logger})
	if err != nil {
		return nil, nil, err
	}
	go pods.Run(ctx)
	opts.Callers = pods
	return opts, &nodeRuntime{pods: pods}, nil
}

var errNodeFlagsOnEdge = errors.New("--listen, --egress, --egress-allow, --node-addresses, --service-cidrs and --kubeconfig apply to --role node only")
