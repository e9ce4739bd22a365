package translate

import (
	"crypto/tls"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// evaluateTLS resolves the certificates of an HTTPS listener. References that cannot
// be used are reported on the listener; the listener is served as long as at least
// one certificate resolves.
func (ix *index) evaluateTLS(l *listenerState) {
	t := l.spec.TLS
	if t != nil && t.Mode != nil && *t.Mode != gwv1.TLSModeTerminate {
		l.reject(gwv1.ListenerReasonUnsupportedValue, fmt.Sprintf("TLS mode %q is not supported on HTTPS listeners; use Terminate.", *t.Mode))
		return
	}
	if t == nil || len(t.CertificateRefs) == 0 {
		l.refsFail(gwv1.ListenerReasonInvalidCertificateRef, "An HTTPS listener needs at least one certificateRef.")
		return
	}
	seen := map[string]bool{}
	for _, ref := range t.CertificateRefs {
		cert, reason, detail := ix.resolveCertificate(l.ownerKind(), l.namespace(), ref)
		if reason != "" {
			l.refsFail(reason, detail)
			continue
		}
		if !seen[cert.Name] {
			seen[cert.Name] = true
			l.certificates = append(l.certificates, cert)
		}
	}
}

// resolveCertificate turns a certificateRef into certificate material, or explains
// why it cannot.
func (ix *index) resolveCertificate(ownerKind, gwNamespace string, ref gwv1.SecretObjectReference) (config.Certificate, gwv1.ListenerConditionReason, string) {
	group, kind := str(ref.Group, coreGroup), str(ref.Kind, kindSecret)
	ns := str(ref.Namespace, gwNamespace)
	name := ns + "/" + string(ref.Name)
	if group != coreGroup || kind != kindSecret {
		return config.Certificate{}, gwv1.ListenerReasonInvalidCertificateRef,
			fmt.Sprintf("Certificate reference %s of kind %q in group %q is not supported; use a core Secret.", name, kind, group)
	}
	if ns != gwNamespace && !ix.grantAllows(gatewayGroup, ownerKind, gwNamespace, coreGroup, kindSecret, ns, string(ref.Name)) {
		return config.Certificate{}, gwv1.ListenerReasonRefNotPermitted,
			fmt.Sprintf("Secret %s is in another namespace and no ReferenceGrant allows the reference.", name)
	}
	secret := ix.secrets[types.NamespacedName{Namespace: ns, Name: string(ref.Name)}]
	if secret == nil {
		return config.Certificate{}, gwv1.ListenerReasonInvalidCertificateRef, fmt.Sprintf("Secret %s does not exist.", name)
	}
	if string(secret.Type) != secretTypeTLS {
		return config.Certificate{}, gwv1.ListenerReasonInvalidCertificateRef,
			fmt.Sprintf("Secret %s is of type %q, not %q.", name, secret.Type, secretTypeTLS)
	}
	certPEM, keyPEM := secret.Data["tls.crt"], secret.Data["tls.key"]
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return config.Certificate{}, gwv1.ListenerReasonInvalidCertificateRef,
			fmt.Sprintf("Secret %s does not hold a usable certificate and key: %v.", name, err)
	}
	return config.Certificate{Name: name, CertPEM: string(certPEM), KeyPEM: string(keyPEM)}, "", ""
}

// markConflicts finds listeners of one Gateway that are not distinct: on one port,
// every listener must share the protocol and have its own hostname. Per the Gateway
// API no conflicting listener wins; all of them are refused.
func markConflicts(listeners []*listenerState) {
	byPort := map[int][]*listenerState{}
	for _, l := range listeners {
		if l.accepted {
			byPort[l.port] = append(byPort[l.port], l)
		}
	}
	for port, group := range byPort {
		protocols := map[config.Protocol]bool{}
		hostnames := map[string]int{}
		for _, l := range group {
			protocols[l.protocol] = true
			hostnames[l.hostname]++
		}
		for _, l := range group {
			switch {
			case len(protocols) > 1:
				l.conflictReason = string(gwv1.ListenerReasonProtocolConflict)
				l.conflictDetail = fmt.Sprintf("Listeners on port %d use different protocols.", port)
			case hostnames[l.hostname] > 1:
				l.conflictReason = string(gwv1.ListenerReasonHostnameConflict)
				l.conflictDetail = fmt.Sprintf("Another listener on port %d has the same hostname %q.", port, l.hostname)
			default:
				continue
			}
			l.reject(gwv1.ListenerConditionReason(l.conflictReason), l.conflictDetail)
		}
	}
}

// socketClaim is a bound (address, port) and the Gateway that holds it.
type socketClaim struct {
	address string
	port    int
	owner   types.NamespacedName
}

// overlaps reports whether two binds collide: same port, and the same address or
// either one on all interfaces.
func (c socketClaim) overlaps(address string, port int) bool {
	return c.port == port && (c.address == address || c.address == "" || address == "")
}

// claimSockets gives each (address, port) to one Gateway. Older Gateways (then by
// namespace and name) keep their sockets; a younger Gateway's listeners on a taken
// socket are not programmed, and the older Gateway is unaffected.
func claimSockets(gateways []*gatewayState) {
	ordered := append([]*gatewayState(nil), gateways...)
	sort.SliceStable(ordered, func(i, j int) bool {
		a, b := ordered[i].gw.CreationTimestamp, ordered[j].gw.CreationTimestamp
		if !a.Equal(&b) {
			return a.Before(&b)
		}
		if ordered[i].key.Namespace != ordered[j].key.Namespace {
			return ordered[i].key.Namespace < ordered[j].key.Namespace
		}
		return ordered[i].key.Name < ordered[j].key.Name
	})
	var claims []socketClaim
	for _, gs := range ordered {
		ports := map[int]bool{}
		for _, l := range gs.allListeners() {
			if l.programmed() {
				ports[l.bindPort] = true
			}
		}
		for _, port := range sortedKeys(ports) {
			if taken := findClaim(claims, gs.address, port); taken != nil {
				msg := fmt.Sprintf("Port %d on %s is already served by Gateway %s, which is older.",
					port, describeAddress(gs.address), taken.owner)
				for _, l := range gs.allListeners() {
					if l.bindPort == port {
						l.portTaken = msg
					}
				}
				continue
			}
			claims = append(claims, socketClaim{address: gs.address, port: port, owner: gs.key})
		}
	}
}

func findClaim(claims []socketClaim, address string, port int) *socketClaim {
	for i := range claims {
		if claims[i].overlaps(address, port) {
			return &claims[i]
		}
	}
	return nil
}

func describeAddress(address string) string {
	if address == "" {
		return "all addresses"
	}
	return "address " + address
}

func sortedKeys[K int | string, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// buildListeners turns the programmed listeners of all Gateways into sockets with
// virtual hosts, sorted by name.
func buildListeners(gateways []*gatewayState) []config.Listener {
	sockets := map[string]*config.Listener{}
	for _, gs := range gateways {
		for _, l := range gs.allListeners() {
			if !l.programmed() {
				continue
			}
			name := gs.address + ":" + strconv.Itoa(l.bindPort)
			if strings.Contains(gs.address, ":") {
				name = net.JoinHostPort(gs.address, strconv.Itoa(l.bindPort))
			}
			sock := sockets[name]
			if sock == nil {
				sock = &config.Listener{Name: name, Address: gs.address, Port: l.bindPort, Protocol: l.protocol}
				sockets[name] = sock
			}
			sock.VirtualHosts = append(sock.VirtualHosts, l.virtualHost())
		}
	}
	out := make([]config.Listener, 0, len(sockets))
	for _, name := range sortedKeys(sockets) {
		sock := sockets[name]
		sort.Slice(sock.VirtualHosts, func(i, j int) bool { return sock.VirtualHosts[i].Name < sock.VirtualHosts[j].Name })
		out = append(out, *sock)
	}
	return out
}

// virtualHost renders the listener and its attached routes, one entry per route.
func (l *listenerState) virtualHost() config.VirtualHost {
	vh := config.VirtualHost{Name: l.virtualHostName(), Hostname: l.hostname}
	if l.protocol == config.ProtocolHTTPS {
		vh.TLS = &config.TLS{Certificates: l.certificates, ClientValidation: l.clientValidation}
	}
	sort.SliceStable(l.routes, func(i, j int) bool { return l.routes[i].Name < l.routes[j].Name })
	for i, r := range l.routes {
		if i > 0 && r.Name == l.routes[i-1].Name {
			continue
		}
		vh.Routes = append(vh.Routes, r)
	}
	return vh
}
