package config

// schema3Filters are the filter types added in schema 3. A schema 2 replica rejects
// a snapshot with a filter type it does not know, which would leave it serving a
// stale configuration; without them it serves the routes, only without those limits,
// until it is upgraded.
var schema3Filters = map[FilterType]bool{FilterRateLimit: true}

// dropSchema3Filters removes the filters schema 2 does not know from every rule and
// backend reference. It copies what it changes and shares the rest.
func dropSchema3Filters(s *Snapshot) error {
	if !usesFilters(s, schema3Filters) {
		return nil
	}
	listeners := make([]Listener, len(s.Listeners))
	for i, l := range s.Listeners {
		l.VirtualHosts = append([]VirtualHost(nil), l.VirtualHosts...)
		for j := range l.VirtualHosts {
			vh := &l.VirtualHosts[j]
			vh.Routes = append([]Route(nil), vh.Routes...)
			for k := range vh.Routes {
				rules := append([]Rule(nil), vh.Routes[k].Rules...)
				for r := range rules {
					rules[r].Filters = withoutTypes(rules[r].Filters, schema3Filters)
					if rules[r].Backends != nil {
						refs := append([]BackendRef(nil), rules[r].Backends...)
						for b := range refs {
							refs[b].Filters = withoutTypes(refs[b].Filters, schema3Filters)
						}
						rules[r].Backends = refs
					}
				}
				vh.Routes[k].Rules = rules
			}
		}
		listeners[i] = l
	}
	s.Listeners = listeners
	return nil
}

func usesFilters(s *Snapshot, types map[FilterType]bool) bool {
	has := func(fs []Filter) bool {
		for _, f := range fs {
			if types[f.Type] {
				return true
			}
		}
		return false
	}
	for _, l := range s.Listeners {
		for _, vh := range l.VirtualHosts {
			for _, r := range vh.Routes {
				for _, rule := range r.Rules {
					if has(rule.Filters) {
						return true
					}
					for _, ref := range rule.Backends {
						if has(ref.Filters) {
							return true
						}
					}
				}
			}
		}
	}
	return false
}

// withoutTypes returns the filters not of the given types, sharing the list when
// none is removed.
func withoutTypes(filters []Filter, types map[FilterType]bool) []Filter {
	for i, f := range filters {
		if types[f.Type] {
			out := append([]Filter(nil), filters[:i]...)
			for _, g := range filters[i+1:] {
				if !types[g.Type] {
					out = append(out, g)
				}
			}
			return out
		}
	}
	return filters
}
