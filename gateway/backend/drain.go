package backend

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Errors SetDrained returns when nothing matches its selector.
var (
	// ErrUnknownService means no backend of the configuration belongs to the
	// Service (on the port, when one is given).
	ErrUnknownService = errors.New("no backend of this Service is configured")
	// ErrUnknownEndpoint means the Service's backends have no endpoint at the
	// address.
	ErrUnknownEndpoint = errors.New("no endpoint of this Service has the address")
	// ErrInvalidAddress means the selector's address is neither "ip:port" nor an IP.
	ErrInvalidAddress = errors.New("invalid endpoint address")
)

// EndpointSelector picks the endpoints an operator drains: those at Address in every
// backend of one Service, or of one of its ports.
type EndpointSelector struct {
	// Service is "<namespace>/<name>".
	Service string
	// Port is the Service port; 0 selects every port (every backend of the Service,
	// including its per-client-certificate variants).
	Port int
	// Address is an endpoint address, "ip:port" ("[ip6]:port"), or a bare IP that
	// selects every endpoint at that IP.
	Address string
}

// DrainedEndpoint is one endpoint SetDrained changed or found in the state asked for.
type DrainedEndpoint struct {
	// Backend is the backend's name in the configuration.
	Backend string
	// Address is the endpoint's address.
	Address string
	// Drained is the endpoint's state afterwards.
	Drained bool
	// Available counts the backend's endpoints that take new requests afterwards
	// (ready, or serving when none is ready, and not drained), so that an operator
	// sees at once when a drain left a backend with none.
	Available int
}

// SetDrained drains the selected endpoints (they take no new requests; requests in
// flight finish) or undrains them. A drain lasts across configuration versions for
// as long as the endpoint's address stays in its backend; an endpoint that leaves
// and comes back later is not drained. Draining is this replica's alone and is not
// saved across restarts. The result is sorted by backend and address.
func (m *Manager) SetDrained(sel EndpointSelector, drained bool) ([]DrainedEndpoint, error) {
	matchAddress, err := addressMatcher(sel.Address)
	if err != nil {
		return nil, err
	}
	m.updateMu.Lock()
	defer m.updateMu.Unlock()
	var out []DrainedEndpoint
	pools := 0
	for name, p := range *m.pools.Load() {
		service, port, ok := ServiceOf(name)
		if !ok || service != sel.Service || (sel.Port != 0 && port != sel.Port) {
			continue
		}
		pools++
		out = append(out, p.setDrained(matchAddress, drained)...)
	}
	if pools == 0 {
		return nil, fmt.Errorf("%w: %s%s", ErrUnknownService, sel.Service, portSuffix(sel.Port))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s%s has no endpoint at %s", ErrUnknownEndpoint, sel.Service, portSuffix(sel.Port), sel.Address)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Backend != out[j].Backend {
			return out[i].Backend < out[j].Backend
		}
		return out[i].Address < out[j].Address
	})
	return out, nil
}

func portSuffix(port int) string {
	if port == 0 {
		return ""
	}
	return " port " + strconv.Itoa(port)
}

// setDrained sets the drain flag of the matching endpoints and publishes a state
// whose balancing lists follow it. Called under the Manager's update lock.
func (p *Pool) setDrained(match func(address string) bool, drained bool) []DrainedEndpoint {
	old := p.state.Load()
	var changed []*Endpoint
	for _, es := range old.all {
		if match(es.Endpoint.Address) {
			es.Endpoint.drained.Store(drained)
			changed = append(changed, es.Endpoint)
		}
	}
	if len(changed) == 0 {
		return nil
	}
	next := &poolState{protocol: old.protocol, tls: old.tls, all: old.all}
	next.sortByCondition()
	p.state.Store(next)
	available := len(next.ready)
	if available == 0 {
		available = len(next.serving)
	}
	out := make([]DrainedEndpoint, len(changed))
	for i, e := range changed {
		out[i] = DrainedEndpoint{Backend: p.name, Address: e.Address, Drained: drained, Available: available}
	}
	return out
}

// addressMatcher returns a predicate for endpoint addresses: equal to an
// "ip:port" address, or at a bare IP. IPs are compared parsed, so that every
// spelling of an IPv6 address selects it.
func addressMatcher(address string) (func(string) bool, error) {
	want, port, err := parseEndpointAddress(address)
	if err != nil {
		return nil, err
	}
	return func(a string) bool {
		h, p, err := net.SplitHostPort(a)
		if err != nil || (port != "" && p != port) {
			return false
		}
		got, err := netip.ParseAddr(h)
		return err == nil && got == want
	}, nil
}

// parseEndpointAddress reads "ip:port", "[ip6]:port", an IP or "[ip6]"; port is ""
// for a bare IP.
func parseEndpointAddress(address string) (netip.Addr, string, error) {
	host, port := address, ""
	if h, p, err := net.SplitHostPort(address); err == nil {
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 || strconv.Itoa(n) != p {
			return netip.Addr{}, "", fmt.Errorf("%w %q: the port must be a number from 1 to 65535", ErrInvalidAddress, address)
		}
		host, port = h, p
	} else if inner, ok := strings.CutPrefix(address, "["); ok {
		if host, ok = strings.CutSuffix(inner, "]"); !ok {
			return netip.Addr{}, "", fmt.Errorf("%w %q: unbalanced brackets", ErrInvalidAddress, address)
		}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, "", fmt.Errorf("%w %q: want ip:port or an IP address", ErrInvalidAddress, address)
	}
	return ip, port, nil
}

// ServiceOf splits a backend name as the translator writes it,
// "<namespace>/<service>:<port>" with an optional "#client=..." suffix, into the
// Service ("<namespace>/<service>") and the port. ok is false for other names.
func ServiceOf(backend string) (service string, port int, ok bool) {
	name, _, _ := strings.Cut(backend, "#")
	i := strings.LastIndexByte(name, ':')
	if i < 0 {
		return "", 0, false
	}
	port, err := strconv.Atoi(name[i+1:])
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, false
	}
	service = name[:i]
	if ns, svc, found := strings.Cut(service, "/"); !found || ns == "" || svc == "" || strings.Contains(svc, "/") {
		return "", 0, false
	}
	return service, port, true
}
