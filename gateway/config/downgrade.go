package config

import (
	"errors"
	"fmt"
)

// downgradeSteps converts a snapshot from one schema version to the version before
// it. The key is the version converted from; each step receives a shallow copy of the
// snapshot that it may change at the top level, and Downgrade sets SchemaVersion after
// it. A schema bump adds one step here, for the new version, so that a controller can
// keep serving replicas that are one version behind.
var downgradeSteps = map[int]func(s *Snapshot) error{
	// Schema 2 added RoutesVersion. Schema 1 replicas do not know the field, and a
	// stale value would only mislead a data plane that someday reads it.
	2: func(s *Snapshot) error {
		s.RoutesVersion = ""
		return nil
	},
	// Schema 3 added Backend.TLS. A schema 2 replica would ignore the field and send
	// in cleartext what must go over TLS, so TLS backends are taken out instead: the
	// references to them answer 503 and mirrors to them do nothing, until the replica
	// is upgraded. Everything else is served as before. Schema 3 also added
	// TLS.ClientValidation, which a schema 2 replica would ignore and serve without
	// asking for client certificates, so that step fails closed (see
	// dropClientValidation); and filters (RateLimit), which are dropped (see
	// dropSchema3Filters).
	3: func(s *Snapshot) error {
		for _, step := range []func(*Snapshot) error{dropTLSBackends, dropClientValidation, dropSchema3Filters} {
			if err := step(s); err != nil {
				return err
			}
		}
		return nil
	},
	// Schema 4 added Mesh. A schema 3 node replica serves backends only, which the
	// snapshot still has without it.
	4: func(s *Snapshot) error {
		s.Mesh = nil
		return nil
	},
}

// dropClientValidation removes what schema 2 cannot express: virtual hosts that
// require a client certificate are left out (an older replica cannot enforce it, so
// it must not serve them), and optional validation is dropped, since accepting every
// client is what an optional check does anyway. Listeners left without virtual hosts
// are left out too. The input's slices are not changed; changed parts are copied.
func dropClientValidation(s *Snapshot) error {
	changed := false
	for i := range s.Listeners {
		for j := range s.Listeners[i].VirtualHosts {
			if t := s.Listeners[i].VirtualHosts[j].TLS; t != nil && t.ClientValidation != nil {
				changed = true
			}
		}
	}
	if !changed {
		return nil
	}
	listeners := make([]Listener, 0, len(s.Listeners))
	for _, l := range s.Listeners {
		hadHosts := len(l.VirtualHosts) > 0
		hosts := make([]VirtualHost, 0, len(l.VirtualHosts))
		for _, vh := range l.VirtualHosts {
			if vh.TLS != nil && vh.TLS.ClientValidation != nil {
				if vh.TLS.ClientValidation.Mode != ClientValidationOptional {
					continue
				}
				t := *vh.TLS
				t.ClientValidation = nil
				vh.TLS = &t
			}
			hosts = append(hosts, vh)
		}
		if hadHosts && len(hosts) == 0 {
			continue
		}
		l.VirtualHosts = hosts
		listeners = append(listeners, l)
	}
	s.Listeners = listeners
	return nil
}

// Downgrade returns snap in the shape of schema version to, for replicas that run an
// older Switchyard than the controller. It converts one version at a time, newest
// first, and never changes snap: the result is a new Snapshot that may share slices
// with snap, so both must be treated as read-only. Version is kept, since the
// downgraded snapshot carries the same configuration for the replica that gets it.
// A snap already at version to is returned as it is.
func Downgrade(snap *Snapshot, to int) (*Snapshot, error) {
	if snap == nil {
		return nil, errors.New("downgrade: no snapshot")
	}
	from := snap.SchemaVersion
	switch {
	case to == from:
		return snap, nil
	case to > from:
		return nil, fmt.Errorf("downgrade: cannot convert schema %d up to %d", from, to)
	case to < 1:
		return nil, fmt.Errorf("downgrade: schema %d does not exist (the first is 1)", to)
	case from > SchemaVersion:
		return nil, fmt.Errorf("downgrade: schema %d is newer than this build's schema %d", from, SchemaVersion)
	}
	out := *snap
	for v := from; v > to; v-- {
		step, ok := downgradeSteps[v]
		if !ok {
			return nil, fmt.Errorf("downgrade: no conversion from schema %d to %d", v, v-1)
		}
		if err := step(&out); err != nil {
			return nil, fmt.Errorf("downgrade: schema %d to %d: %w", v, v-1, err)
		}
		out.SchemaVersion = v - 1
	}
	return &out, nil
}
