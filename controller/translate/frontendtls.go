package translate

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

const (
	kindConfigMap = "ConfigMap"
	// caCertKey is the key of a ConfigMap (or Secret) that holds a CA bundle.
	caCertKey = "ca.crt"
)

// frontendValidation returns the client certificate validation that applies to an
// HTTPS listener on port of the Gateway: the per-port entry for the port if there is
// one, else the default. Nil means clients are not asked for certificates.
func frontendValidation(gw *gwv1.Gateway, port int) *gwv1.FrontendTLSValidation {
	if gw.Spec.TLS == nil || gw.Spec.TLS.Frontend == nil {
		return nil
	}
	f := gw.Spec.TLS.Frontend
	for i := range f.PerPort {
		if int(f.PerPort[i].Port) == port {
			return f.PerPort[i].TLS.Validation
		}
	}
	return f.Default.Validation
}

// evaluateFrontendValidation resolves the CA certificates an HTTPS listener checks
// client certificates against. Every unusable reference makes ResolvedRefs False;
// when none is usable the listener is not accepted (NoValidCACertificate), since
// serving it without the check would let in clients that it must refuse.
func (ix *index) evaluateFrontendValidation(l *listenerState) {
	v := frontendValidation(l.gateway.gw, l.port)
	if v == nil {
		return
	}
	mode := config.ClientValidationRequired
	switch v.Mode {
	case "", gwv1.AllowValidOnly:
	case gwv1.AllowInsecureFallback:
		mode = config.ClientValidationOptional
	default:
		l.reject(gwv1.ListenerReasonUnsupportedValue,
			fmt.Sprintf("Client certificate validation mode %q is not supported; use %s or %s.", v.Mode, gwv1.AllowValidOnly, gwv1.AllowInsecureFallback))
		return
	}
	var cas []config.CACertificate
	var problems []string
	seen := map[string]bool{}
	for _, ref := range v.CACertificateRefs {
		ca, reason, detail := ix.resolveFrontendCA(l.gateway.key.Namespace, ref)
		if reason != "" {
			l.refsFail(reason, detail)
			problems = append(problems, detail)
			continue
		}
		if !seen[ca.Name] {
			seen[ca.Name] = true
			cas = append(cas, ca)
		}
	}
	if len(cas) == 0 {
		l.reject(gwv1.ListenerReasonNoValidCACertificate,
			fmt.Sprintf("No CA certificate for client certificate validation on port %d can be used. %s", l.port, strings.Join(problems, " ")))
		return
	}
	sort.Slice(cas, func(i, j int) bool { return cas[i].Name < cas[j].Name })
	l.clientValidation = &config.ClientValidation{Mode: mode, CACertificates: cas}
}

// resolveFrontendCA turns a caCertificateRef into a CA bundle, or explains why it
// cannot: a core ConfigMap, or a kubernetes.io/tls Secret, with a PEM bundle under
// "ca.crt". References to other namespaces need a ReferenceGrant.
func (ix *index) resolveFrontendCA(gwNamespace string, ref gwv1.ObjectReference) (config.CACertificate, gwv1.ListenerConditionReason, string) {
	group, kind := string(ref.Group), string(ref.Kind)
	ns := str(ref.Namespace, gwNamespace)
	name := ns + "/" + string(ref.Name)
	if group != coreGroup || (kind != kindConfigMap && kind != kindSecret) {
		return config.CACertificate{}, gwv1.ListenerReasonInvalidCACertificateKind,
			fmt.Sprintf("CA certificate reference %s of kind %q in group %q is not supported; use a core ConfigMap.", name, kind, group)
	}
	if ns != gwNamespace && !ix.grantAllows(gatewayGroup, kindGateway, gwNamespace, coreGroup, kind, ns, string(ref.Name)) {
		return config.CACertificate{}, gwv1.ListenerReasonRefNotPermitted,
			fmt.Sprintf("%s %s is in another namespace and no ReferenceGrant allows the reference.", kind, name)
	}
	key := types.NamespacedName{Namespace: ns, Name: string(ref.Name)}
	var bundle string
	switch kind {
	case kindConfigMap:
		cm := ix.configMaps[key]
		if cm == nil {
			return config.CACertificate{}, gwv1.ListenerReasonInvalidCACertificateRef, fmt.Sprintf("ConfigMap %s does not exist.", name)
		}
		bundle = cm.Data[caCertKey]
	default:
		secret := ix.secrets[key]
		if secret == nil {
			return config.CACertificate{}, gwv1.ListenerReasonInvalidCACertificateRef, fmt.Sprintf("Secret %s does not exist.", name)
		}
		if string(secret.Type) != secretTypeTLS {
			return config.CACertificate{}, gwv1.ListenerReasonInvalidCACertificateRef,
				fmt.Sprintf("Secret %s is of type %q; CA certificates are read from ConfigMaps and %q Secrets.", name, secret.Type, secretTypeTLS)
		}
		bundle = string(secret.Data[caCertKey])
	}
	if bundle == "" {
		return config.CACertificate{}, gwv1.ListenerReasonInvalidCACertificateRef, fmt.Sprintf("%s %s has no %q key.", kind, name, caCertKey)
	}
	if err := checkCABundle(bundle); err != nil {
		return config.CACertificate{}, gwv1.ListenerReasonInvalidCACertificateRef, fmt.Sprintf("%s %s: %q %v.", kind, name, caCertKey, err)
	}
	return config.CACertificate{Name: name, PEM: bundle}, "", ""
}

// checkCABundle makes sure a PEM bundle holds at least one certificate and that every
// certificate in it parses, so that the data plane never receives a bundle it
// rejects.
func checkCABundle(bundle string) error {
	rest := []byte(bundle)
	found := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("holds a certificate that does not parse: %v", err)
		}
		found++
	}
	if found == 0 {
		return fmt.Errorf("holds no PEM certificate")
	}
	return nil
}

// setInsecureFrontend reports, on the Gateway, that some client certificate
// validation of it accepts clients without a valid certificate.
func (gs *gatewayState) setInsecureFrontend(conds *conditionSet) {
	if gs.gw.Spec.TLS == nil || gs.gw.Spec.TLS.Frontend == nil {
		return
	}
	f := gs.gw.Spec.TLS.Frontend
	var where []string
	if v := f.Default.Validation; v != nil && v.Mode == gwv1.AllowInsecureFallback {
		where = append(where, "the default")
	}
	for _, p := range f.PerPort {
		if v := p.TLS.Validation; v != nil && v.Mode == gwv1.AllowInsecureFallback {
			where = append(where, fmt.Sprintf("port %d", p.Port))
		}
	}
	if len(where) == 0 {
		return
	}
	conds.set(string(gwv1.GatewayConditionInsecureFrontendValidationMode), true, string(gwv1.GatewayReasonConfigurationChanged),
		fmt.Sprintf("Client certificate validation of %s is %s: clients without a valid certificate are served.",
			strings.Join(where, ", "), gwv1.AllowInsecureFallback))
}
