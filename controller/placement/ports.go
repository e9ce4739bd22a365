package placement

import (
	"fmt"
	"maps"
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/controller/translate"
)

// PortConfig configures Service mode.
type PortConfig struct {
	// ControllerName is the GatewayClass controllerName served; empty means
	// translate.ControllerName.
	ControllerName string
	// MinPort and MaxPort bound the container ports handed out on the edge replicas,
	// inclusive (for example 20000 and 29999). No other listener of the edge replicas
	// may use this range.
	MinPort, MaxPort int32
	// Selector selects the edge replica Pods, for example
	// app.kubernetes.io/name=switchyard, app.kubernetes.io/component=edge.
	Selector map[string]string
	// ServiceType is the type of the managed Services of classes whose parameters do
	// not set one; empty means LoadBalancer.
	ServiceType corev1.ServiceType
}

// PortAllocator places each (Gateway, listener port) on a container port of the edge
// replicas, on all interfaces, and plans one Service per Gateway, named
// ServiceName(gateway) in the Gateway's namespace, that maps each listener port to
// its container port. The Service's targetPorts are the allocation record: an
// allocation read back from a managed Service is kept as long as the Gateway has the
// listener port, the port is in range, and no older Gateway holds it; new listener
// ports get the lowest free ports. The Gateway's status.addresses come from its
// Service: the load balancer's ingress when it has one, else the cluster IPs.
//
// A Gateway's address comes from its Service. A Gateway exposed by a LoadBalancer
// Service may request one IP address in spec.addresses: it is set as the Service's
// spec.loadBalancerIP, and the Gateway is programmed once the load balancer reports
// that address (Programmed=False, AddressNotUsable when it reports another).
// Requesting an address of a Service of another type, or more than one address, is
// Programmed=False, AddressNotUsable; address types other than IPAddress are
// Accepted=False, UnsupportedAddress. An IPAddress entry without a value asks for any
// address and is met. A Gateway's own spec.infrastructure.parametersRef may override
// its class's serviceType. A Gateway that cannot be placed keeps its Service, and so
// its ports and load-balancer address, until it can be placed again or is deleted.
type PortAllocator struct {
	controllerName   string
	minPort, maxPort int32
	selector         map[string]string
	serviceType      corev1.ServiceType
}

// NewPortAllocator checks the configuration and returns an allocator.
func NewPortAllocator(cfg PortConfig) (*PortAllocator, error) {
	if cfg.MinPort < 1 || cfg.MaxPort > 65535 || cfg.MinPort > cfg.MaxPort {
		return nil, fmt.Errorf("container port range %d-%d is not within 1-65535", cfg.MinPort, cfg.MaxPort)
	}
	if len(cfg.Selector) == 0 {
		return nil, fmt.Errorf("the edge replica selector is empty; managed Services would select no Pods")
	}
	p := &PortAllocator{
		controllerName: cfg.ControllerName,
		minPort:        cfg.MinPort,
		maxPort:        cfg.MaxPort,
		selector:       maps.Clone(cfg.Selector),
		serviceType:    cfg.ServiceType,
	}
	if p.controllerName == "" {
		p.controllerName = translate.ControllerName
	}
	switch p.serviceType {
	case "":
		p.serviceType = corev1.ServiceTypeLoadBalancer
	case corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort, corev1.ServiceTypeClusterIP:
	default:
		return nil, fmt.Errorf("service type %q is not one of LoadBalancer, NodePort, ClusterIP", cfg.ServiceType)
	}
	return p, nil
}

// portClaim is one Gateway being placed in Service mode.
type portClaim struct {
	gw          *gwv1.Gateway
	key         types.NamespacedName
	serviceName string
	// wanted are the Gateway's listener ports, ascending.
	wanted []int32
	// ports maps listener ports to the container ports allocated so far.
	ports map[int32]int32
	// requested is the IP address the Gateway asks its load balancer for, or "".
	requested string
}

// Place gives every served Gateway its container ports and plans its Service.
func (p *PortAllocator) Place(s *State) *Result {
	v := newView(s, p.controllerName, p.serviceType)
	res := &Result{Placements: map[types.NamespacedName]translate.GatewayPlacement{}, InvalidClassParameters: v.invalid}
	keep := map[types.NamespacedName]bool{}
	claims := p.claims(v, res, keep)
	holder := p.reserved(v, keep)
	// Allocations read back from managed Services are kept first, oldest Gateway
	// first, so that a new listener port never takes a port another Gateway holds.
	for _, c := range claims {
		for lp, cp := range p.recorded(v, c.key) {
			_, owned := holder[cp]
			if !owned && c.wants(lp) && cp >= p.minPort && cp <= p.maxPort {
				holder[cp] = c.key
				c.ports[lp] = cp
			}
		}
	}
	next := p.minPort
	for _, c := range claims {
		for _, lp := range c.wanted {
			if _, ok := c.ports[lp]; ok {
				continue
			}
			for next <= p.maxPort && holder[next] != (types.NamespacedName{}) {
				next++
			}
			if next > p.maxPort {
				break
			}
			holder[next] = c.key
			c.ports[lp] = next
		}
	}
	var desired []*corev1.Service
	for _, c := range claims {
		if svc := p.finish(v, c, res, keep); svc != nil {
			desired = append(desired, svc)
		}
	}
	sortByName(desired)
	res.Services = desired
	res.Plan = v.plan(desired, keep)
	// EndpointSlices are only managed in address pool mode; those left from it go.
	v.planSlices(nil, &res.Plan)
	return res
}

// reserved holds the container ports of the Services that are kept as they are
// (those of Gateways that cannot be placed now, or whose class parameters are
// invalid): their Services still send traffic to those ports, so no other Gateway
// may bind them.
func (p *PortAllocator) reserved(v *view, keep map[types.NamespacedName]bool) map[int32]types.NamespacedName {
	holder := map[int32]types.NamespacedName{}
	for key := range v.managed {
		gw := v.gateways[key]
		if gw == nil {
			continue
		}
		if _, invalid := v.invalid[string(gw.Spec.GatewayClassName)]; !keep[key] && !invalid {
			continue
		}
		for _, cp := range p.recorded(v, key) {
			if _, taken := holder[cp]; !taken {
				holder[cp] = key
			}
		}
	}
	return holder
}

// claims lists the Gateways that can be placed, oldest first. The others get a
// placement that explains why, and keep their Services.
func (p *PortAllocator) claims(v *view, res *Result, keep map[types.NamespacedName]bool) []*portClaim {
	var out []*portClaim
	names := map[types.NamespacedName]types.NamespacedName{}
	for _, gw := range v.served {
		key := keyOf(gw)
		if bad, ok := v.invalidParameters(gw); ok {
			res.Placements[key] = bad
			keep[key] = true
			continue
		}
		requested, bad, failed := requestedAddress(gw, v.params[key].ServiceType)
		if failed {
			res.Placements[key] = bad
			keep[key] = true
			continue
		}
		name := types.NamespacedName{Namespace: gw.Namespace, Name: ServiceName(gw.Name)}
		if other, taken := names[name]; taken {
			res.Placements[key] = problem("", gwv1.GatewayReasonAddressNotAssigned,
				fmt.Sprintf("Service %s is needed by Gateway %s, which is older; rename this Gateway.", name, other))
			keep[key] = true
			continue
		}
		if live := v.services[name]; live != nil {
			if owner, ok := managedOwner(live); !ok || owner != gw.Name {
				res.Placements[key] = problem("", gwv1.GatewayReasonAddressNotAssigned,
					fmt.Sprintf("Service %s already exists and is not managed for this Gateway; delete or rename it.", name))
				keep[key] = true
				continue
			}
		}
		names[name] = key
		wanted := withPorts(listenerPorts(gw), v.setPorts[key])
		out = append(out, &portClaim{gw: gw, key: key, serviceName: name.Name, wanted: wanted, ports: map[int32]int32{}, requested: requested})
	}
	return out
}

// requestedAddress reads the Gateway's spec.addresses in Service mode: the IP address
// it asks its load balancer for ("" for none, or for any address), or a placement
// explaining why the request cannot be met.
func requestedAddress(gw *gwv1.Gateway, svcType corev1.ServiceType) (string, translate.GatewayPlacement, bool) {
	for _, a := range gw.Spec.Addresses {
		if a.Type != nil && *a.Type != gwv1.IPAddressType {
			return "", problem(gwv1.GatewayReasonUnsupportedAddress, gwv1.GatewayReasonAddressNotUsable,
				fmt.Sprintf("Address type %q is not supported; only IPAddress is.", *a.Type)), true
		}
	}
	var value string
	for _, a := range gw.Spec.Addresses {
		if a.Value == "" {
			continue
		}
		ip, err := netip.ParseAddr(a.Value)
		if err != nil || ip.Zone() != "" {
			return "", problem(gwv1.GatewayReasonUnsupportedAddress, gwv1.GatewayReasonAddressNotUsable,
				fmt.Sprintf("Address %q is not an IP address.", a.Value)), true
		}
		value = ip.Unmap().String()
	}
	switch {
	case value == "":
		return "", translate.GatewayPlacement{}, false
	case len(gw.Spec.Addresses) > 1:
		return "", problem("", gwv1.GatewayReasonAddressNotUsable,
			fmt.Sprintf("Only one address per Gateway is supported; the Gateway requests %d.", len(gw.Spec.Addresses))), true
	case svcType != corev1.ServiceTypeLoadBalancer:
		return "", problem("", gwv1.GatewayReasonAddressNotUsable,
			fmt.Sprintf("Address %s cannot be requested: the Gateway is exposed by a %s Service, which gets its address from the cluster; only a LoadBalancer Service can be asked for one.", value, svcType)), true
	}
	return value, translate.GatewayPlacement{}, false
}

// listenerPorts are the distinct valid listener ports of a Gateway, ascending.
func listenerPorts(gw *gwv1.Gateway) []int32 {
	seen := map[int32]bool{}
	var out []int32
	for _, l := range gw.Spec.Listeners {
		port := int32(l.Port)
		if port >= 1 && port <= 65535 && !seen[port] {
			seen[port] = true
			out = append(out, port)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (c *portClaim) wants(port int32) bool {
	i := sort.Search(len(c.wanted), func(i int) bool { return c.wanted[i] >= port })
	return i < len(c.wanted) && c.wanted[i] == port
}

// recorded merges the allocations of the Gateway's managed Services. When two of
// them disagree about a listener port, the one sorting first by name wins.
func (p *PortAllocator) recorded(v *view, gw types.NamespacedName) map[int32]int32 {
	out := map[int32]int32{}
	for _, svc := range v.managed[gw] {
		for lp, cp := range allocatedPorts(svc) {
			if _, ok := out[lp]; !ok {
				out[lp] = cp
			}
		}
	}
	return out
}

// finish records the Gateway's placement and returns the Service it needs, or nil.
func (p *PortAllocator) finish(v *view, c *portClaim, res *Result, keep map[types.NamespacedName]bool) *corev1.Service {
	if len(c.ports) == 0 {
		res.Placements[c.key] = problem("", gwv1.GatewayReasonNoResources,
			fmt.Sprintf("The container port range %d-%d of the edge replicas is exhausted; delete Gateways or listeners, or widen the range.", p.minPort, p.maxPort))
		keep[c.key] = true
		return nil
	}
	svcType := v.params[c.key].ServiceType
	svc := desiredService(c.gw, c.serviceName, svcType, p.selector, c.ports)
	svc.Spec.LoadBalancerIP = c.requested
	live := v.services[keyOf(svc)]
	if live == nil {
		res.Placements[c.key] = problem("", gwv1.GatewayReasonAddressNotAssigned,
			fmt.Sprintf("Waiting for Service %s/%s to be created.", svc.Namespace, svc.Name))
		return svc
	}
	addrs := serviceAddresses(live)
	if c.requested != "" {
		var ok bool
		if addrs, ok = requestedIngress(live, c.requested); !ok {
			res.Placements[c.key] = requestedNotReady(live, c.requested)
			return svc
		}
	}
	if len(addrs) == 0 {
		res.Placements[c.key] = problem("", gwv1.GatewayReasonAddressNotAssigned,
			fmt.Sprintf("Waiting for Service %s/%s to get an address.", svc.Namespace, svc.Name))
		return svc
	}
	res.Placements[c.key] = translate.GatewayPlacement{ContainerPorts: maps.Clone(c.ports), StatusAddresses: addrs}
	return svc
}

// requestedIngress returns the requested address as the Gateway's only status
// address when the Service's load balancer reports it.
func requestedIngress(live *corev1.Service, requested string) ([]gwv1.GatewayStatusAddress, bool) {
	for _, in := range live.Status.LoadBalancer.Ingress {
		if ip, err := netip.ParseAddr(in.IP); err == nil && ip.Unmap().String() == requested {
			return []gwv1.GatewayStatusAddress{{Type: ptrTo(gwv1.IPAddressType), Value: requested}}, true
		}
	}
	return nil, false
}

// requestedNotReady explains why a requested address is not in use yet: the load
// balancer reports another address, or none yet.
func requestedNotReady(live *corev1.Service, requested string) translate.GatewayPlacement {
	if got := serviceAddresses(live); len(live.Status.LoadBalancer.Ingress) > 0 && len(got) > 0 {
		return problem("", gwv1.GatewayReasonAddressNotUsable,
			fmt.Sprintf("The load balancer of Service %s/%s has address %s, not the requested %s; it may not support requesting an address.",
				live.Namespace, live.Name, got[0].Value, requested))
	}
	return problem("", gwv1.GatewayReasonAddressNotAssigned,
		fmt.Sprintf("Waiting for the load balancer of Service %s/%s to take the requested address %s.", live.Namespace, live.Name, requested))
}

// withPorts adds the ports of extra that are not in ports, keeping the result sorted.
func withPorts(ports, extra []int32) []int32 {
	for _, p := range extra {
		i := sort.Search(len(ports), func(i int) bool { return ports[i] >= p })
		if i < len(ports) && ports[i] == p {
			continue
		}
		ports = append(ports[:i], append([]int32{p}, ports[i:]...)...)
	}
	return ports
}
