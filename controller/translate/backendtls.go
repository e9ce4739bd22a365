package translate

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// policyTarget is what a BackendTLSPolicy targetRef selects: a Service, or one port
// of it by name (section). Policies only target Services of their own namespace.
type policyTarget struct {
	namespace, service, section string
}

// policyResult is a BackendTLSPolicy as translation judged it. The conditions are
// the same towards every Gateway that uses the policy.
type policyResult struct {
	key types.NamespacedName
	// tls is what the policy asks of connections to its targets; nil when the policy
	// cannot be used, and then connections to its targets must fail.
	tls *config.UpstreamTLS
	// problem explains, when tls is nil, why the policy cannot be used.
	problem string
	// acceptedReason is "" when the policy is accepted (Conflicted aside, which
	// depends on the target and is recorded in backendTLS.conflicted).
	acceptedReason, acceptedDetail string
	// resolvedReason is "" when every reference resolves.
	resolvedReason, resolvedDetail string
}

// backendTLS holds the BackendTLSPolicies of one translation and what came of them.
type backendTLS struct {
	ix         *index
	configMaps map[types.NamespacedName]*corev1.ConfigMap
	policies   map[types.NamespacedName]*gwv1.BackendTLSPolicy
	// byTarget lists, per target, the policies that select it, in precedence order:
	// the oldest first, then by name. Only the first applies.
	byTarget map[policyTarget][]types.NamespacedName
	// conflicted holds the policies that lost a target to an older policy.
	conflicted map[types.NamespacedName]string
	results    map[types.NamespacedName]*policyResult
	// ancestors records, per policy, the Gateways whose accepted routes send traffic
	// to one of its targets.
	ancestors map[types.NamespacedName]map[types.NamespacedName]bool
	// clientCerts caches the backend client certificate of each Gateway.
	clientCerts map[types.NamespacedName]clientCertResult
	// rewritten caches route rules rewritten for a Gateway's client certificate.
	rewritten map[rewriteKey][]config.Rule
}

func newBackendTLS(ix *index, in *Input) *backendTLS {
	b := &backendTLS{
		ix:          ix,
		configMaps:  byNamespacedName(uniqueSorted(in.ConfigMaps)),
		policies:    map[types.NamespacedName]*gwv1.BackendTLSPolicy{},
		byTarget:    map[policyTarget][]types.NamespacedName{},
		conflicted:  map[types.NamespacedName]string{},
		results:     map[types.NamespacedName]*policyResult{},
		ancestors:   map[types.NamespacedName]map[types.NamespacedName]bool{},
		clientCerts: map[types.NamespacedName]clientCertResult{},
		rewritten:   map[rewriteKey][]config.Rule{},
	}
	for _, p := range uniqueSorted(in.BackendTLSPolicies) {
		key := types.NamespacedName{Namespace: p.Namespace, Name: p.Name}
		b.policies[key] = p
		for _, ref := range p.Spec.TargetRefs {
			if string(ref.Group) != coreGroup || string(ref.Kind) != kindService {
				continue // only Services are supported targets; other kinds select nothing
			}
			t := policyTarget{namespace: p.Namespace, service: string(ref.Name), section: str(ref.SectionName, "")}
			if !slices.Contains(b.byTarget[t], key) {
				b.byTarget[t] = append(b.byTarget[t], key)
			}
		}
	}
	for t, keys := range b.byTarget {
		slices.SortFunc(keys, b.comparePrecedence)
		for _, loser := range keys[1:] {
			if _, done := b.conflicted[loser]; !done {
				b.conflicted[loser] = fmt.Sprintf("BackendTLSPolicy %s takes precedence for Service %s%s: it is older, or as old and first by name.",
					keys[0].Name, t.service, describeSection(t.section))
			}
		}
	}
	return b
}

// comparePrecedence orders policies as the Gateway API prescribes for conflicts:
// older creationTimestamp first, then namespace/name.
func (b *backendTLS) comparePrecedence(x, y types.NamespacedName) int {
	px, py := b.policies[x], b.policies[y]
	if tx, ty := px.CreationTimestamp.Time, py.CreationTimestamp.Time; !tx.Equal(ty) {
		if tx.Before(ty) {
			return -1
		}
		return 1
	}
	return strings.Compare(x.String(), y.String())
}

func describeSection(section string) string {
	if section == "" {
		return ""
	}
	return " port " + section
}

// policyFor finds the BackendTLSPolicy that applies to a Service port, and every
// policy that targets the port (applied or not). A policy naming the port by its
// name overrides one that targets the whole Service.
func (b *backendTLS) policyFor(svc types.NamespacedName, portName string) (*policyResult, []types.NamespacedName) {
	if len(b.policies) == 0 {
		return nil, nil
	}
	whole := b.byTarget[policyTarget{namespace: svc.Namespace, service: svc.Name}]
	var section []types.NamespacedName
	if portName != "" {
		section = b.byTarget[policyTarget{namespace: svc.Namespace, service: svc.Name, section: portName}]
	}
	related := append(slices.Clone(section), whole...)
	switch {
	case len(section) > 0:
		return b.result(section[0]), related
	case len(whole) > 0:
		return b.result(whole[0]), related
	}
	return nil, nil
}

// result evaluates a policy once per translation.
func (b *backendTLS) result(key types.NamespacedName) *policyResult {
	if r, ok := b.results[key]; ok {
		return r
	}
	r := b.evaluate(b.policies[key])
	b.results[key] = r
	return r
}

// evaluate checks a policy's validation settings and resolves its CA certificates.
func (b *backendTLS) evaluate(p *gwv1.BackendTLSPolicy) *policyResult {
	r := &policyResult{key: types.NamespacedName{Namespace: p.Namespace, Name: p.Name}}
	v := p.Spec.Validation
	tls := &config.UpstreamTLS{ServerName: strings.ToLower(string(v.Hostname))}
	invalid := func(format string, args ...any) *policyResult {
		r.acceptedReason, r.acceptedDetail = string(gwv1.PolicyReasonInvalid), fmt.Sprintf(format, args...)
		r.problem = "BackendTLSPolicy " + r.key.String() + " is invalid: " + r.acceptedDetail
		return r
	}
	if tls.ServerName == "" {
		return invalid("validation.hostname is empty.")
	}
	for i, san := range v.SubjectAltNames {
		switch {
		case san.Type == gwv1.HostnameSubjectAltNameType && san.Hostname != "":
			tls.SubjectAltNames = append(tls.SubjectAltNames, config.SubjectAltName{Type: config.SubjectAltNameDNS, Value: strings.ToLower(string(san.Hostname))})
		case san.Type == gwv1.URISubjectAltNameType && san.URI != "":
			tls.SubjectAltNames = append(tls.SubjectAltNames, config.SubjectAltName{Type: config.SubjectAltNameURI, Value: string(san.URI)})
		default:
			return invalid("validation.subjectAltNames[%d] of type %q has no value of that type.", i, san.Type)
		}
	}
	switch {
	case len(v.CACertificateRefs) > 0:
		bundle := b.resolveCABundle(r, v.CACertificateRefs)
		if bundle == "" {
			r.acceptedReason = string(gwv1.BackendTLSPolicyReasonNoValidCACertificate)
			r.acceptedDetail = "No CA certificate reference is usable: " + r.resolvedDetail
			r.problem = "BackendTLSPolicy " + r.key.String() + " has no usable CA certificate"
			return r
		}
		tls.CACertificatesPEM = bundle
	case v.WellKnownCACertificates != nil && *v.WellKnownCACertificates == gwv1.WellKnownCACertificatesSystem:
		tls.SystemRoots = true
	case v.WellKnownCACertificates != nil:
		return invalid("validation.wellKnownCACertificates %q is not supported; use System or caCertificateRefs.", *v.WellKnownCACertificates)
	default:
		return invalid("validation needs caCertificateRefs or wellKnownCACertificates.")
	}
	r.tls = tls
	return r
}

// resolveCABundle concatenates the CA certificates of the usable references and
// records the first unusable one on r. It returns "" when none is usable.
func (b *backendTLS) resolveCABundle(r *policyResult, refs []gwv1.LocalObjectReference) string {
	var bundle strings.Builder
	for i, ref := range refs {
		pem, reason, detail := b.caBundle(r.key.Namespace, ref)
		if reason != "" {
			if r.resolvedReason == "" {
				r.resolvedReason, r.resolvedDetail = reason, fmt.Sprintf("validation.caCertificateRefs[%d]: %s", i, detail)
			}
			continue
		}
		bundle.WriteString(pem)
		if !strings.HasSuffix(pem, "\n") {
			bundle.WriteString("\n")
		}
	}
	return bundle.String()
}

// caBundle reads the CA certificates one reference names, or gives the ResolvedRefs
// reason and a sentence saying why it cannot.
func (b *backendTLS) caBundle(namespace string, ref gwv1.LocalObjectReference) (string, string, string) {
	name := namespace + "/" + string(ref.Name)
	if string(ref.Group) != coreGroup || string(ref.Kind) != kindConfigMap {
		return "", string(gwv1.BackendTLSPolicyReasonInvalidKind),
			fmt.Sprintf("%s of kind %q in group %q is not supported; use a core ConfigMap.", name, ref.Kind, ref.Group)
	}
	cm := b.configMaps[types.NamespacedName{Namespace: namespace, Name: string(ref.Name)}]
	if cm == nil {
		return "", string(gwv1.BackendTLSPolicyReasonInvalidCACertificateRef), fmt.Sprintf("ConfigMap %s does not exist.", name)
	}
	pem, ok := cm.Data[caCertKey]
	if !ok {
		if raw, found := cm.BinaryData[caCertKey]; found {
			pem, ok = string(raw), true
		}
	}
	if !ok {
		return "", string(gwv1.BackendTLSPolicyReasonInvalidCACertificateRef), fmt.Sprintf("ConfigMap %s has no key %q.", name, caCertKey)
	}
	if _, err := config.ParseCertificates(pem); err != nil {
		return "", string(gwv1.BackendTLSPolicyReasonInvalidCACertificateRef),
			fmt.Sprintf("ConfigMap %s key %q does not hold PEM certificates: %v.", name, caCertKey, err)
	}
	return pem, "", ""
}

// noteUse records that a Gateway sends traffic to the targets of the policies.
func (b *backendTLS) noteUse(gateway types.NamespacedName, policies []types.NamespacedName) {
	for _, p := range policies {
		if b.ancestors[p] == nil {
			b.ancestors[p] = map[types.NamespacedName]bool{}
		}
		b.ancestors[p][gateway] = true
	}
}
