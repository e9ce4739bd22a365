package config

// tlsUnsupportedStatus answers requests for a TLS backend on a replica too old to
// speak TLS to backends: the service is unavailable there, not broken.
const tlsUnsupportedStatus = 503

// dropTLSBackends removes the backends that need TLS from a snapshot for schema 2
// replicas and turns every reference to them into an invalid one. It copies what it
// changes and shares the rest, so the original snapshot is left as it was.
func dropTLSBackends(s *Snapshot) error {
	dropped := map[string]bool{}
	for _, b := range s.Backends {
		if b.TLS != nil {
			dropped[b.Name] = true
		}
	}
	if len(dropped) == 0 {
		return nil
	}
	kept := make([]Backend, 0, len(s.Backends)-len(dropped))
	for _, b := range s.Backends {
		if !dropped[b.Name] {
			kept = append(kept, b)
		}
	}
	s.Backends = kept
	listeners := make([]Listener, len(s.Listeners))
	for i, l := range s.Listeners {
		l.VirtualHosts = append([]VirtualHost(nil), l.VirtualHosts...)
		for j := range l.VirtualHosts {
			vh := &l.VirtualHosts[j]
			vh.Routes = append([]Route(nil), vh.Routes...)
			for k := range vh.Routes {
				vh.Routes[k].Rules = withoutBackends(vh.Routes[k].Rules, dropped)
			}
		}
		listeners[i] = l
	}
	s.Listeners = listeners
	return nil
}

// withoutBackends returns rules whose references to dropped backends are invalid and
// whose mirrors to them have no destination; rules that need no change are shared.
func withoutBackends(rules []Rule, dropped map[string]bool) []Rule {
	out := make([]Rule, len(rules))
	for i, r := range rules {
		r.Filters = withoutMirrors(r.Filters, dropped)
		if r.Backends != nil {
			refs := make([]BackendRef, len(r.Backends))
			for j, ref := range r.Backends {
				if dropped[ref.Backend] {
					ref.Invalid = &InvalidBackend{StatusCode: tlsUnsupportedStatus,
						Reason: "backend " + ref.Backend + " needs TLS, which this replica's version cannot speak to backends; upgrade the replica"}
					ref.Backend = ""
				}
				ref.Filters = withoutMirrors(ref.Filters, dropped)
				refs[j] = ref
			}
			r.Backends = refs
		}
		out[i] = r
	}
	return out
}

// withoutMirrors returns filters whose mirrors to dropped backends have no
// destination, sharing the list when none does.
func withoutMirrors(filters []Filter, dropped map[string]bool) []Filter {
	var out []Filter
	for i, f := range filters {
		if f.RequestMirror == nil || !dropped[f.RequestMirror.Backend] {
			continue
		}
		if out == nil {
			out = append([]Filter(nil), filters...)
		}
		m := *f.RequestMirror
		m.Backend = ""
		out[i].RequestMirror = &m
	}
	if out == nil {
		return filters
	}
	return out
}
