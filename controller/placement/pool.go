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
// AddressNotUsable. A Gateway that requests no address keeps the address its
// status.addresses already reports, if it is in the pool and no older Gateway holds
// it, and otherwise gets the first free address of the pool (Programmed=False,
// AddressNotAssigned when the pool is exhausted). Address types other than IPAddress
// are not supported (Accepted=False, UnsupportedAddress), nor is more than one address
// per Gateway. Older Gateways (then by namespace and name) claim first.
type PoolAllocator struct {
	controllerName string
	ranges         []addressRange
	description    string

	// last holds the addresses the previous Place gave. A Gateway's status reports
	// its address only after the status write reaches the cache; until then last
	// keeps a Gateway created in the same second as an older-named one from losing
	// its address to it (creation times have second resolution), which would move
	// a Gateway that clients already use.
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

// Place gives every served Gateway its address. Managed Services left from Service
// mode are planned for deletion, except those of Gateways whose class parameters are
// invalid.
func (p *PoolAllocator) Place(s *State) *Result {
	v := newView(s, p.controllerName, "")
	res := &Result{Placements: map[types.NamespacedName]translate.GatewayPlacement{}, InvalidClassParameters: v.invalid}
	holder := map[netip.Addr]types.NamespacedName{}
	var waiting []*gwv1.Gateway
	// First, requested addresses and those already reported claim, oldest first.
	for _, gw := range v.served {
		key := keyOf(gw)
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
			if held, ok := p.reported(gw); ok {
				if _, taken := holder[held]; !taken {
					holder[held] = key
					res.Placements[key] = poolPlacement(held)
					continue
				}
			}
			waiting = append(waiting, gw)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// Then those not reporting an address yet keep the one last given, if free.
	unplaced := waiting[:0]
	for _, gw := range waiting {
		if a, ok := p.last[keyOf(gw)]; ok {
			if _, taken := holder[a]; !taken {
				holder[a] = keyOf(gw)
				res.Placements[keyOf(gw)] = poolPlacement(a)
				continue
			}
		}
		unplaced = append(unplaced, gw)
	}
	// Then the others get the first free addresses, oldest first.
	for _, gw := range unplaced {
		a, ok := p.firstFree(holder)
		if !ok {
			res.Placements[keyOf(gw)] = problem("", gwv1.GatewayReasonAddressNotAssigned,
				fmt.Sprintf("The address pool (%s) is exhausted; delete a Gateway or add addresses to the pool.", p.description))
			continue
		}
		holder[a] = keyOf(gw)
		res.Placements[keyOf(gw)] = poolPlacement(a)
	}
	p.last = make(map[types.NamespacedName]netip.Addr, len(holder))
	for a, gw := range holder {
		p.last[gw] = a
	}
	res.Plan = v.plan(nil, nil)
	return res
}

func poolPlacement(a netip.Addr) translate.GatewayPlacement {
	return translate.GatewayPlacement{
		BindAddress:     a.String(),
		StatusAddresses: []gwv1.GatewayStatusAddress{{Type: ptrTo(gwv1.IPAddressType), Value: a.String()}},
	}
}

// requested reads the Gateway's spec.addresses: the one IP address it asks for (zero
// when none), or a placement explaining why the request cannot be met.
func (p *PoolAllocator) requested(gw *gwv1.Gateway) (netip.Addr, translate.GatewayPlacement, bool) {
	var ips []string
	for _, a := range gw.Spec.Addresses {
		if a.Type != nil && *a.Type != gwv1.IPAddressType {
			return netip.Addr{}, problem(gwv1.GatewayReasonUnsupportedAddress, gwv1.GatewayReasonAddressNotUsable,
				fmt.Sprintf("Address type %q is not supported; only IPAddress is.", *a.Type)), true
		}
		ips = append(ips, a.Value)
	}
	if len(ips) == 0 {
		return netip.Addr{}, translate.GatewayPlacement{}, false
	}
	for _, value := range ips {
		if a, err := netip.ParseAddr(value); err != nil || a.Zone() != "" {
			return netip.Addr{}, problem(gwv1.GatewayReasonUnsupportedAddress, gwv1.GatewayReasonAddressNotUsable,
				fmt.Sprintf("Address %q is not an IP address.", value)), true
		}
	}
	if len(ips) > 1 {
		return netip.Addr{}, problem("", gwv1.GatewayReasonAddressNotUsable,
			fmt.Sprintf("Only one address per Gateway is supported; the Gateway requests %s.", strings.Join(ips, ", "))), true
	}
	a := netip.MustParseAddr(ips[0]).Unmap()
	if !p.inPool(a) {
		return netip.Addr{}, problem("", gwv1.GatewayReasonAddressNotUsable,
			fmt.Sprintf("Address %s is not in the address pool (%s); request an address of the pool, or none.", a, p.description)), true
	}
	return a, translate.GatewayPlacement{}, false
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
