package translate

import (
	"fmt"
	"net"
	"sort"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// GatewayPlacement says where the shared tier of edge replicas serves one Gateway.
// The controller's placement step (address pool mode or per-Gateway Service mode)
// computes it; translation only follows it.
//
// In address pool mode BindAddress is the Gateway's address from the pool and
// ContainerPorts is nil: every listener is bound on that address and its own port. In
// Service mode BindAddress is empty and ContainerPorts gives each listener port the
// container port the edge replicas listen on, on all interfaces; a Service maps the
// listener port back to it. Each Gateway gets its own sockets either way, so Gateways
// that share a listener port and hostnames stay isolated.
type GatewayPlacement struct {
	// BindAddress is the IP address the edge replicas bind for every listener of the
	// Gateway; empty means all interfaces.
	BindAddress string `json:"bindAddress,omitempty"`
	// ContainerPorts maps a listener port to the port the edge replicas bind for it.
	// When nil, listeners bind their own port. When not nil, a listener whose port has
	// no entry (for example because the port range is exhausted) is not programmed.
	ContainerPorts map[int32]int32 `json:"containerPorts,omitempty"`
	// StatusAddresses are the addresses reported in the Gateway's status.addresses:
	// where clients reach the Gateway (the pool address, or the Service's
	// load-balancer or cluster IP).
	StatusAddresses []gwv1.GatewayStatusAddress `json:"statusAddresses,omitempty"`
	// Problem, when set, says why the Gateway cannot be placed. Nothing of the Gateway
	// is served then, and the Gateway's conditions carry the problem.
	Problem *PlacementProblem `json:"problem,omitempty"`
}

// PlacementProblem explains why a Gateway could not be placed.
type PlacementProblem struct {
	// NotAcceptedReason, when set, makes the Gateway Accepted=False with this reason:
	// the Gateway asks for something that is not supported (for example
	// UnsupportedAddress). When empty, acceptance is judged from the listeners alone.
	NotAcceptedReason gwv1.GatewayConditionReason `json:"notAcceptedReason,omitempty"`
	// ProgrammedReason is the reason of the Gateway's Programmed=False condition, for
	// example AddressNotUsable (a requested address cannot be used),
	// AddressNotAssigned (no address could be given) or NoResources. Empty means
	// AddressNotAssigned.
	ProgrammedReason gwv1.GatewayConditionReason `json:"programmedReason,omitempty"`
	// Message tells the user what is wrong and how to fix it.
	Message string `json:"message,omitempty"`
}

// gatewayProblem is why nothing of a Gateway can be served.
type gatewayProblem struct {
	// acceptedReason, when set, makes the Gateway Accepted=False with this reason.
	acceptedReason   string
	programmedReason string
	message          string
}

// placeGateway decides where the Gateway's sockets go: by its placement when the
// controller gives placements, else by the first IP address of its spec.
func (ix *index) placeGateway(gs *gatewayState) {
	className := string(gs.gw.Spec.GatewayClassName)
	if msg, bad := ix.opts.InvalidClassParameters[className]; bad {
		gs.problem = &gatewayProblem{
			acceptedReason:   string(gwv1.GatewayReasonInvalidParameters),
			programmedReason: string(gwv1.GatewayReasonInvalid),
			message:          fmt.Sprintf("GatewayClass %s has invalid parameters: %s", className, msg),
		}
		return
	}
	if msg, bad := gatewayParametersRefProblem(gs.gw); bad {
		gs.problem = &gatewayProblem{
			acceptedReason:   string(gwv1.GatewayReasonInvalidParameters),
			programmedReason: string(gwv1.GatewayReasonInvalid),
			message:          msg,
		}
		return
	}
	if ix.opts.Placements == nil {
		var problem string
		gs.address, problem = bindAddress(gs.gw.Spec.Addresses)
		if problem != "" {
			gs.problem = &gatewayProblem{
				acceptedReason:   string(gwv1.GatewayReasonUnsupportedAddress),
				programmedReason: string(gwv1.GatewayReasonAddressNotUsable),
				message:          problem,
			}
		}
		return
	}
	gs.placed = true
	p, ok := ix.opts.Placements[gs.key]
	if !ok {
		gs.problem = &gatewayProblem{
			programmedReason: string(gwv1.GatewayReasonAddressNotAssigned),
			message:          "The Gateway has not been placed on the edge replicas yet.",
		}
		return
	}
	gs.statusAddresses = copyAddresses(p.StatusAddresses)
	if p.Problem != nil {
		gs.problem = problemOf(p.Problem)
		return
	}
	if p.BindAddress != "" {
		ip := net.ParseIP(p.BindAddress)
		if ip == nil {
			gs.problem = &gatewayProblem{
				programmedReason: string(gwv1.GatewayReasonAddressNotUsable),
				message:          fmt.Sprintf("The assigned bind address %q is not an IP address.", p.BindAddress),
			}
			return
		}
		gs.address = ip.String()
	}
	if p.ContainerPorts != nil {
		gs.containerPorts = p.ContainerPorts
	}
}

// gatewayParametersRefProblem checks the kind of a Gateway's
// spec.infrastructure.parametersRef: only a core ConfigMap of the Gateway's namespace
// can hold its parameters. Whether that ConfigMap exists and what it holds is left to
// the placement step, which reads ConfigMaps (the standalone gateway reads none).
func gatewayParametersRefProblem(gw *gwv1.Gateway) (string, bool) {
	if gw.Spec.Infrastructure == nil || gw.Spec.Infrastructure.ParametersRef == nil {
		return "", false
	}
	ref := gw.Spec.Infrastructure.ParametersRef
	if ref.Group == "" && ref.Kind == "ConfigMap" {
		return "", false
	}
	kind := string(ref.Kind)
	if ref.Group != "" {
		kind += "." + string(ref.Group)
	}
	return fmt.Sprintf("spec.infrastructure.parametersRef must refer to a core ConfigMap, not %s %q.", kind, ref.Name), true
}

func problemOf(p *PlacementProblem) *gatewayProblem {
	gp := &gatewayProblem{
		acceptedReason:   string(p.NotAcceptedReason),
		programmedReason: string(p.ProgrammedReason),
		message:          p.Message,
	}
	if gp.programmedReason == "" {
		gp.programmedReason = string(gwv1.GatewayReasonAddressNotAssigned)
	}
	if gp.message == "" {
		gp.message = "The Gateway could not be placed on the edge replicas."
	}
	return gp
}

// placeListeners gives each listener the port its socket binds. Without container
// ports that is the listener's own port. With them, a listener whose port has no
// usable container port, or shares one with another listener port, is not placed.
func (gs *gatewayState) placeListeners() {
	if gs.containerPorts == nil {
		return
	}
	users := map[int32][]int32{}
	for port, cp := range gs.containerPorts {
		users[cp] = append(users[cp], port)
	}
	for _, l := range gs.allListeners() {
		cp, ok := gs.containerPorts[int32(l.port)]
		switch {
		case !ok:
			l.unplaced = fmt.Sprintf("No port of the edge replicas is allocated for listener port %d yet.", l.port)
		case cp < 1 || cp > 65535:
			l.unplaced = fmt.Sprintf("The container port %d allocated for listener port %d is out of range.", cp, l.port)
		case len(users[cp]) > 1:
			ports := users[cp]
			sort.Slice(ports, func(i, j int) bool { return ports[i] < ports[j] })
			l.unplaced = fmt.Sprintf("The container port %d is allocated to several listener ports %v.", cp, ports)
		default:
			l.bindPort = int(cp)
		}
	}
}

// copyAddresses deep-copies status addresses, so that the output shares no memory
// with the caller's options.
func copyAddresses(in []gwv1.GatewayStatusAddress) []gwv1.GatewayStatusAddress {
	var out []gwv1.GatewayStatusAddress
	for _, a := range in {
		c := gwv1.GatewayStatusAddress{Value: a.Value}
		if a.Type != nil {
			c.Type = ptrTo(*a.Type)
		}
		out = append(out, c)
	}
	return out
}
