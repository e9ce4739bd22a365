package placement

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/controller/translate"
)

// PoolConfig configures address pool mode.
type PoolConfig struct {
	// ControllerName is the GatewayClass controllerName served; empty means
	// translate.ControllerName.
	ControllerName string
	// Addresses is the pool: IP addresses and CIDR prefixes (for example
	// "10.244.255.0/24"), handed out in the order given. Of an IPv4 prefix of /30 or
	// wider the network and broadcast addresses are skipped, and of an IPv6 prefix of
	// /126 or wider the first (subnet-router anycast) address.
	Addresses []string
}

// PoolAllocator places each Gateway on one address of a pool; the edge replicas bind
// that address on the listeners' own ports.
//
// A Gateway that requests an IP address in spec.addresses gets it if it is in the
// pool and no older Gateway holds it; else it is Programmed=False with reason
// AddressNotUsable. A Gateway that requests no address, or an IPAddress entry with
// an empty value (meaning "any address"), keeps the address its status.addresses
// already reports, if it is in the pool and no older Gateway holds it, and otherwise
// gets the lowest free address of the pool (Programmed=False, AddressNotAssigned when
// the pool is exhausted). Address types other than IPAddress are not supported
// (Accepted=False, UnsupportedAddress), nor is more than one address per Gateway
// (Programmed=False, AddressNotUsable). Older Gateways (then by namespace and name)
// claim first.
//
// Each Gateway that is not refused also gets a headless Service without a selector,
// named ServiceName(gateway), and, once it has an address, an EndpointSlice of that
// name holding it, so that the Gateway has a name in the cluster's DNS and its
// spec.infrastructure labels and annotations have an object to go on.
type PoolAllocator struct {
	controllerName string
	ranges         []addressRange
	description    string

	// mu guards last, the addresses the previous Place gave. They are preferred over
	// the addresses in Gateways' status, which lag behind while status writes are on
	// their way: without them a translation that reads a stale status could move a
	// Gateway to another address and back. After a restart, status is all there is,
	// and by then it has caught up.
	mu   sync.Mutex
	last map[types.NamespacedName]netip.Addr
}

// addressRange is a run of usable addresses, first to last inclusive.
type addressRange struct {
	first, last netip.Addr
}

func (r addressRange) contains(a netip.Addr) bool {
	return a.BitLen() == r.first.BitLen() && r.first.Compare(a) <= 0 && a.Compare(r.last) <= 0
}

// NewPoolAllocator checks the configuration and returns an allocator.
func NewPoolAllocator(cfg PoolConfig) (*PoolAllocator, error) {
	if len(cfg.Addresses) == 0 {
		return nil, fmt.Errorf("the address pool is empty")
	}
	p := &PoolAllocator{controllerName: cfg.ControllerName, description: strings.Join(cfg.Addresses, ", ")}
	if p.controllerName == "" {
		p.controllerName = translate.ControllerName
	}
	for _, entry := range cfg.Addresses {
		r, err := parseRange(strings.TrimSpace(entry))
		if err != nil {
			return nil, err
		}
		p.ranges = append(p.ranges, r)
	}
	return p, nil
}

func parseRange(entry string) (addressRange, error) {
	if !strings.Contains(entry, "/") {
		a, err := netip.ParseAddr(entry)
		if err != nil || a.Zone() != "" {
			return addressRange{}, fmt.Errorf("address pool entry %q is not an IP address or CIDR prefix", entry)
		}
		a = a.Unmap()
		return addressRange{first: a, last: a}, nil
	}
	prefix, err := netip.ParsePrefix(entry)
	if err != nil {
		return addressRange{}, fmt.Errorf("address pool entry %q is not an IP address or CIDR prefix", entry)
	}
	prefix = prefix.Masked()
	first := prefix.Addr()
	last := lastAddr(prefix)
	bits := prefix.Bits()
	switch {
	case first.Is4() && bits <= 30:
		first, last = first.Next(), last.Prev()
	case first.Is6() && bits <= 126:
		first = first.Next()
	}
	return addressRange{first: first, last: last}, nil
}

// lastAddr is the highest address of a prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func (p *PoolAllocator) inPool(a netip.Addr) bool {
	for _, r := range p.ranges {
		if r.contains(a) {
			return true
		}
	}
	return false
}

// Place gives every served Gateway its address, and plans the headless Services and
// EndpointSlices that name them. Managed Services of Gateways whose class parameters
// are invalid are left alone.
func (p *PoolAllocator) Place(s *State) *Result {
	v := newView(s, p.controllerName, "")
	res := &Result{Placements: map[types.NamespacedName]translate.GatewayPlacement{}, InvalidClassParameters: v.invalid}
	holder := map[netip.Addr]types.NamespacedName{}
	var waiting []*gwv1.Gateway
	// First, requested addresses and those already reported claim, oldest first.
	for _, gw := range v.served {
		key := keyOf(gw)
		if bad, ok := v.invalidParameters(gw); ok {
			res.Placements[key] = bad
			continue
		}
		requested, placement, failed := p.requested(gw)
		switch {
		case failed:
			res.Placements[key] = placement
		case requested.IsValid():
			if owner, taken := holder[requested]; taken {
				res.Placements[key] = problem("", gwv1.GatewayReasonAddressNotUsable,
					fmt.Sprintf("Address %s is already used by Gateway %s, which is older; request another address or none.", requested, owner))
				continue
			}
			holder[requested] = key
			res.Placements[key] = poolPlacement(requested)
		default:
			if held, ok := p.held(gw); ok && !taken(holder, held) {
				holder[held] = key
				res.Placements[key] = poolPlacement(held)
				continue
			}
			waiting = append(waiting, gw)
		}
	}
	// Then the others get the lowest free addresses, oldest first.
	for _, gw := range waiting {
		a, ok := p.firstFree(holder)
		if !ok {
			res.Placements[keyOf(gw)] = problem("", gwv1.GatewayReasonAddressNotAssigned,
				fmt.Sprintf("The address pool (%s) is exhausted; delete a Gateway or add addresses to the pool.", p.description))
			continue
		}
		holder[a] = keyOf(gw)
		res.Placements[keyOf(gw)] = poolPlacement(a)
	}
	p.remember(res.Placements)
	bindings := map[types.NamespacedName]bindingPlacement{}
	for key, pl := range res.Placements {
		b := bindingPlacement{refused: pl.Problem != nil && pl.Problem.NotAcceptedReason != ""}
		if pl.Problem == nil {
			b.address, _ = netip.ParseAddr(pl.BindAddress)
		}
		bindings[key] = b
	}
	res.Services, res.EndpointSlices = v.poolObjects(bindings)
	res.Plan = v.plan(res.Services, nil)
	v.planSlices(res.EndpointSlices, &res.Plan)
	return res
}

func poolPlacement(a netip.Addr) translate.GatewayPlacement {
	return translate.GatewayPlacement{
		BindAddress:     a.String(),
		StatusAddresses: []gwv1.GatewayStatusAddress{{Type: ptrTo(gwv1.IPAddressType), Value: a.String()}},
	}
}

// requested reads the Gateway's spec.addresses: the one IP address it asks for (zero
// when it asks for none, or for any address with an IPAddress entry without a
// value), or a placement explaining why the request cannot be met.
func (p *PoolAllocator) requested(gw *gwv1.Gateway) (netip.Addr, translate.GatewayPlacement, bool) {
	for _, a := range gw.Spec.Addresses {
		if a.Type != nil && *a.Type != gwv1.IPAddressType {
			return netip.Addr{}, problem(gwv1.GatewayReasonUnsupportedAddress, gwv1.GatewayReasonAddressNotUsable,
				fmt.Sprintf("Address type %q is not supported; only IPAddress is.", *a.Type)), true
		}
	}
	var values []string
	var concrete netip.Addr
	for _, sa := range gw.Spec.Addresses {
		if sa.Value == "" {
			values = append(values, "any address")
			continue
		}
		a, err := netip.ParseAddr(sa.Value)
		if err != nil || a.Zone() != "" {
			return netip.Addr{}, problem(gwv1.GatewayReasonUnsupportedAddress, gwv1.GatewayReasonAddressNotUsable,
				fmt.Sprintf("Address %q is not an IP address.", sa.Value)), true
		}
		a = a.Unmap()
		if !p.inPool(a) {
			return netip.Addr{}, problem("", gwv1.GatewayReasonAddressNotUsable,
				fmt.Sprintf("Address %s is not in the address pool (%s); request an address of the pool, or none.", a, p.description)), true
		}
		values = append(values, a.String())
		concrete = a
	}
	if len(values) > 1 {
		return netip.Addr{}, problem("", gwv1.GatewayReasonAddressNotUsable,
			fmt.Sprintf("Only one address per Gateway is supported; the Gateway requests %s.", strings.Join(values, ", "))), true
	}
	return concrete, translate.GatewayPlacement{}, false
}

// Forget drops the addresses the previous placements gave, so that the next one
// starts from the Gateways' status. A controller calls it when it becomes the
// leader: what it placed as a follower may rest on a status older than the one the
// previous leader wrote.
func (p *PoolAllocator) Forget() {
	p.mu.Lock()
	p.last = nil
	p.mu.Unlock()
}

// held returns the address the Gateway holds: the one the previous Place gave it,
// else the one its status reports.
func (p *PoolAllocator) held(gw *gwv1.Gateway) (netip.Addr, bool) {
	p.mu.Lock()
	a, ok := p.last[keyOf(gw)]
	p.mu.Unlock()
	if ok && p.inPool(a) {
		return a, true
	}
	return p.reported(gw)
}

// remember records the addresses given, forgetting Gateways no longer placed.
func (p *PoolAllocator) remember(placements map[types.NamespacedName]translate.GatewayPlacement) {
	last := make(map[types.NamespacedName]netip.Addr, len(placements))
	for key, pl := range placements {
		if pl.Problem != nil {
			continue
		}
		if a, err := netip.ParseAddr(pl.BindAddress); err == nil {
			last[key] = a
		}
	}
	p.mu.Lock()
	p.last = last
	p.mu.Unlock()
}

func taken(holder map[netip.Addr]types.NamespacedName, a netip.Addr) bool {
	_, ok := holder[a]
	return ok
}

// reported returns the first IP address of the Gateway's status that is in the pool.
func (p *PoolAllocator) reported(gw *gwv1.Gateway) (netip.Addr, bool) {
	for _, sa := range gw.Status.Addresses {
		if sa.Type != nil && *sa.Type != gwv1.IPAddressType {
			continue
		}
		a, err := netip.ParseAddr(sa.Value)
		if err == nil && a.Zone() == "" && p.inPool(a.Unmap()) {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// firstFree returns the first pool address nobody holds. It steps over held
// addresses only, so its cost is bounded by the number of Gateways, however large
// the pool.
func (p *PoolAllocator) firstFree(holder map[netip.Addr]types.NamespacedName) (netip.Addr, bool) {
	for _, r := range p.ranges {
		for a := r.first; a.IsValid() && a.Compare(r.last) <= 0; a = a.Next() {
			if _, taken := holder[a]; !taken {
				return a, true
			}
		}
	}
	return netip.Addr{}, false
}
