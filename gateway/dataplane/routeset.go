package dataplane

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/server"
)

// routeSet is the compiled form of a snapshot's listeners: route tables with their
// handlers, certificate stores, and the socket specs that serve them. It is immutable,
// and shared by every generation whose snapshot has the same listeners.
type routeSet struct {
	// routesVersion is the RoutesVersion of the snapshot the set was compiled from;
	// see reusable.
	routesVersion string
	listeners     map[string]*compiledListener
	specs         []server.Spec
	// backendNames are the backends the routes send or mirror traffic to, sorted.
	backendNames []string
}

// checkReferences reports the backends the route set refers to that backends lacks.
func (rs *routeSet) checkReferences(backends []config.Backend) error {
	defined := make(map[string]bool, len(backends))
	for i := range backends {
		defined[backends[i].Name] = true
	}
	var missing []string
	for _, name := range rs.backendNames {
		if !defined[name] {
			missing = append(missing, strconv.Quote(name))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("backends %s are referenced by routes but not defined", strings.Join(missing, ", "))
	}
	return nil
}

// referencedBackends lists, sorted and once each, the backends that the listeners'
// rules and filters send or mirror traffic to: the references that Validate checks.
func referencedBackends(listeners []config.Listener) []string {
	seen := map[string]bool{}
	for i := range listeners {
		for j := range listeners[i].VirtualHosts {
			markRoutes(seen, listeners[i].VirtualHosts[j].Routes)
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// markRoutes adds to seen the backends that routes' rules and filters send or mirror
// traffic to.
func markRoutes(seen map[string]bool, routes []config.Route) {
	markFilters := func(fs []config.Filter) {
		for i := range fs {
			if m := fs[i].RequestMirror; m != nil && m.Backend != "" {
				seen[m.Backend] = true
			}
		}
	}
	for _, route := range routes {
		for _, rule := range route.Rules {
			markFilters(rule.Filters)
			for _, ref := range rule.Backends {
				if ref.Invalid == nil {
					seen[ref.Backend] = true
				}
				markFilters(ref.Filters)
			}
		}
	}
}

// reusable reports whether snap's listeners are those the route set was compiled
// from, so that applying snap needs no compilation.
//
// Only a snapshot that carries a RoutesVersion (schema 2) can be recognised: its
// producer promises that an unchanged RoutesVersion means unchanged listeners. A
// snapshot without one (schema 1 from an older controller during an upgrade, or one
// built by hand) is always compiled. Comparing its listeners instead, by content or by
// a hash of their encoding, costs about half a compilation at 5,000 routes, on every
// apply including those that change routes, and every producer of this version sets
// RoutesVersion.
func (rs *routeSet) reusable(snap *config.Snapshot) bool {
	return snap.RoutesVersion != "" && snap.RoutesVersion == rs.routesVersion
}
