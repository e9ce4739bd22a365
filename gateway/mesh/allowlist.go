package mesh

import (
	"fmt"
	"net/netip"
	"strings"
)

// AllowList is the egress allow-list: host names, wildcard domains and address
// ranges that egress may reach. A destination is allowed when the name the caller
// used is listed (exactly, or under a wildcard), or when the address it resolves to
// (or is) lies in a listed range. The fixed deny-list (see Egress) applies in every
// case.
type AllowList struct {
	// names holds the exact host names, lower-case.
	names map[string]bool
	// domains holds the wildcard entries as their suffix with the leading dot:
	// "*.example.com" is ".example.com", and allows any name under example.com at
	// any depth, but not example.com itself.
	domains map[string]bool
	// prefixes holds the address ranges; a single address is a full-length range.
	prefixes []netip.Prefix
}

// ParseAllowList reads allow-list entries: "api.example.com", "*.example.com",
// "203.0.113.0/24", "2001:db8::/32" or a single address. Blank entries are skipped.
func ParseAllowList(entries []string) (AllowList, error) {
	a := AllowList{names: map[string]bool{}, domains: map[string]bool{}}
	for _, raw := range entries {
		e := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(raw), "."))
		switch {
		case e == "":
			continue
		case strings.Contains(e, "/"):
			p, err := netip.ParsePrefix(e)
			if err != nil {
				return AllowList{}, fmt.Errorf("egress allow-list entry %q: %w", raw, err)
			}
			a.prefixes = append(a.prefixes, p.Masked())
		case strings.HasPrefix(e, "*."):
			if !validHostName(e[2:]) {
				return AllowList{}, fmt.Errorf("egress allow-list entry %q is not a wildcard domain", raw)
			}
			a.domains[e[1:]] = true
		default:
			if addr, err := netip.ParseAddr(e); err == nil {
				a.prefixes = append(a.prefixes, netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()))
				continue
			}
			if !validHostName(e) {
				return AllowList{}, fmt.Errorf("egress allow-list entry %q is not a host name, wildcard, address or CIDR", raw)
			}
			a.names[e] = true
		}
	}
	return a, nil
}

// Empty reports whether the list has no entry.
func (a *AllowList) Empty() bool {
	return len(a.names) == 0 && len(a.domains) == 0 && len(a.prefixes) == 0
}

// allowsName reports whether host, a lower-case name, is listed by name or wildcard.
// It does not allocate.
func (a *AllowList) allowsName(host string) bool {
	if a.names[host] {
		return true
	}
	if len(a.domains) == 0 {
		return false
	}
	// Each dot starts a shorter suffix; the first dot is skipped so that the
	// wildcard's own domain is not matched.
	for i := 1; i < len(host); i++ {
		if host[i] == '.' && a.domains[host[i:]] {
			return true
		}
	}
	return false
}

// allowsAddr reports whether addr lies in a listed range.
func (a *AllowList) allowsAddr(addr netip.Addr) bool {
	for _, p := range a.prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
