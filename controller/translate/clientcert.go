package translate

import (
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// clientCertResult is a Gateway's spec.tls.backend.clientCertificateRef, resolved.
type clientCertResult struct {
	// configured is set when the Gateway names a client certificate at all.
	configured bool
	// cert is the certificate, nil when it could not be resolved.
	cert *config.Certificate
	// reason and detail say why it could not be resolved.
	reason gwv1.GatewayConditionReason
	detail string
}

// clientCert resolves, once per translation, the client certificate a Gateway
// presents to TLS backends.
func (b *backendTLS) clientCert(gs *gatewayState) clientCertResult {
	if r, ok := b.clientCerts[gs.key]; ok {
		return r
	}
	var r clientCertResult
	if t := gs.gw.Spec.TLS; t != nil && t.Backend != nil && t.Backend.ClientCertificateRef != nil {
		r.configured = true
		cert, reason, detail := b.ix.resolveCertificate(kindGateway, gs.key.Namespace, *t.Backend.ClientCertificateRef)
		switch reason {
		case "":
			r.cert = &cert
		case gwv1.ListenerReasonRefNotPermitted:
			r.reason, r.detail = gwv1.GatewayReasonRefNotPermitted, "spec.tls.backend.clientCertificateRef: "+detail
		default:
			r.reason, r.detail = gwv1.GatewayReasonInvalidClientCertificateRef, "spec.tls.backend.clientCertificateRef: "+detail
		}
	}
	b.clientCerts[gs.key] = r
	return r
}

// withResolvedRefs adds the Gateway's ResolvedRefs condition to its status when the
// Gateway refers to objects outside its listeners (a backend client certificate):
// False with the reason when that reference is unusable, else False when a listener
// has unresolved references, else True.
func (b *backendTLS) withResolvedRefs(gs *gatewayState, st gwv1.GatewayStatus, now time.Time) gwv1.GatewayStatus {
	cc := b.clientCert(gs)
	if !cc.configured {
		return st
	}
	conds := newConditionSet(gs.gw.Generation, now)
	resolved := string(gwv1.GatewayConditionResolvedRefs)
	conds.set(resolved, true, string(gwv1.GatewayReasonResolvedRefs), "All references are resolved.")
	for _, l := range gs.listeners {
		if l.refsProblem != "" {
			conds.set(resolved, false, string(gwv1.GatewayReasonListenersNotResolved), "Listener "+l.name+" has unresolved references.")
			break
		}
	}
	if cc.reason != "" {
		conds.set(resolved, false, string(cc.reason), cc.detail)
	}
	st.Conditions = append(slices.DeleteFunc(st.Conditions, func(c metav1.Condition) bool { return c.Type == resolved }), conds.list()...)
	slices.SortFunc(st.Conditions, func(x, y metav1.Condition) int {
		switch {
		case x.Type < y.Type:
			return -1
		case x.Type > y.Type:
			return 1
		}
		return 0
	})
	return st
}

// rewriteKey identifies a route's rules as rewritten for one client certificate.
type rewriteKey struct {
	compiled *compiledRoute
	cert     string
}

// rulesFor returns a route's rules as a Gateway serves them: when the Gateway
// presents a client certificate, references to TLS backends are pointed at variants
// of those backends that present it. Rules without TLS backends are shared as they
// are.
func (b *backendTLS) rulesFor(gs *gatewayState, compiled *compiledRoute) []config.Rule {
	if len(compiled.tlsPolicies) == 0 {
		return compiled.rules
	}
	cc := b.clientCert(gs)
	if cc.cert == nil {
		return compiled.rules
	}
	key := rewriteKey{compiled: compiled, cert: cc.cert.Name}
	if rules, ok := b.rewritten[key]; ok {
		return rules
	}
	rules := make([]config.Rule, len(compiled.rules))
	for i, r := range compiled.rules {
		r.Filters = b.mirrorsWithClientCert(r.Filters, cc.cert)
		if r.Backends != nil {
			refs := make([]config.BackendRef, len(r.Backends))
			for j, ref := range r.Backends {
				if ref.Backend != "" {
					ref.Backend = b.withClientCert(ref.Backend, cc.cert)
				}
				ref.Filters = b.mirrorsWithClientCert(ref.Filters, cc.cert)
				refs[j] = ref
			}
			r.Backends = refs
		}
		rules[i] = r
	}
	b.rewritten[key] = rules
	return rules
}

// mirrorsWithClientCert points mirrors at client certificate variants, copying the
// filter list only when a mirror changes.
func (b *backendTLS) mirrorsWithClientCert(filters []config.Filter, cert *config.Certificate) []config.Filter {
	var out []config.Filter
	for i, f := range filters {
		if f.RequestMirror == nil || f.RequestMirror.Backend == "" {
			continue
		}
		name := b.withClientCert(f.RequestMirror.Backend, cert)
		if name == f.RequestMirror.Backend {
			continue
		}
		if out == nil {
			out = slices.Clone(filters)
		}
		m := *f.RequestMirror
		m.Backend = name
		out[i].RequestMirror = &m
	}
	if out == nil {
		return filters
	}
	return out
}

// withClientCert returns the name of the variant of a TLS backend that presents the
// client certificate, creating it, or the name itself for a cleartext backend.
func (b *backendTLS) withClientCert(name string, cert *config.Certificate) string {
	base, ok := b.ix.backends[name]
	if !ok || base.TLS == nil {
		return name
	}
	variant := name + "#client=" + cert.Name
	if _, done := b.ix.backends[variant]; !done {
		tls := *base.TLS
		c := *cert
		tls.ClientCertificate = &c
		base.Name, base.TLS = variant, &tls
		b.ix.backends[variant] = base
		if origin, ok := b.ix.backendOrigins[name]; ok {
			b.ix.backendOrigins[variant] = origin
		}
	}
	return variant
}

// policyKeys lists policies without repeats, in a stable order.
func policyKeys(keys []types.NamespacedName) []types.NamespacedName {
	slices.SortFunc(keys, func(x, y types.NamespacedName) int {
		if x.Namespace != y.Namespace {
			if x.Namespace < y.Namespace {
				return -1
			}
			return 1
		}
		switch {
		case x.Name < y.Name:
			return -1
		case x.Name > y.Name:
			return 1
		}
		return 0
	})
	return slices.Compact(keys)
}
