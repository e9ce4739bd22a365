package admin

import "github.com/switchyard-dev/switchyard/gateway/config"

// redactedKey replaces private keys in what the admin API shows.
const redactedKey = "<redacted>"

// redactKeys returns a copy of snap whose private keys are replaced by redactedKey.
// The snapshot itself is shared with the data plane and must not change, so every
// value on the way to a key (listeners, virtual hosts, TLS, certificates) is copied;
// the rest is shared read-only. Empty keys stay empty, so that a missing key is not
// disguised.
func redactKeys(snap *config.Snapshot) *config.Snapshot {
	if snap == nil {
		return nil
	}
	out := *snap
	out.Listeners = make([]config.Listener, len(snap.Listeners))
	for i, l := range snap.Listeners {
		l.VirtualHosts = append([]config.VirtualHost(nil), l.VirtualHosts...)
		for j := range l.VirtualHosts {
			l.VirtualHosts[j].TLS = redactTLS(l.VirtualHosts[j].TLS)
		}
		out.Listeners[i] = l
	}
	if snap.Listeners == nil {
		out.Listeners = nil
	}
	return &out
}

func redactTLS(tls *config.TLS) *config.TLS {
	if tls == nil {
		return nil
	}
	// Everything else (client validation's CA bundles) is public and shared.
	out := *tls
	out.Certificates = append([]config.Certificate(nil), tls.Certificates...)
	for i := range out.Certificates {
		if out.Certificates[i].KeyPEM != "" {
			out.Certificates[i].KeyPEM = redactedKey
		}
	}
	return &out
}
