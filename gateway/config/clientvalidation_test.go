package config

import (
	"reflect"
	"strings"
	"testing"
)

const testCAPEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

// mtlsSnapshot serves three HTTPS virtual hosts on one socket, one requiring client
// certificates, one asking for them optionally and one without, and a second socket
// whose only virtual host requires them.
func mtlsSnapshot() *Snapshot {
	s := validSnapshot()
	cert := []Certificate{{Name: "ns/cert", CertPEM: "c", KeyPEM: "k"}}
	ca := []CACertificate{{Name: "ns/ca", PEM: testCAPEM}}
	required := &ClientValidation{Mode: ClientValidationRequired, CACertificates: ca}
	optional := &ClientValidation{Mode: ClientValidationOptional, CACertificates: ca}
	routes := s.Listeners[0].VirtualHosts[0].Routes
	s.Listeners = []Listener{
		{Name: ":443", Port: 443, Protocol: ProtocolHTTPS, VirtualHosts: []VirtualHost{
			{Name: "ns/gw/a", Hostname: "a.example", TLS: &TLS{Certificates: cert, ClientValidation: required}, Routes: routes},
			{Name: "ns/gw/b", Hostname: "b.example", TLS: &TLS{Certificates: cert, ClientValidation: optional}, Routes: routes},
			{Name: "ns/gw/c", Hostname: "c.example", TLS: &TLS{Certificates: cert}, Routes: routes},
		}},
		{Name: ":8443", Port: 8443, Protocol: ProtocolHTTPS, VirtualHosts: []VirtualHost{
			{Name: "ns/gw/d", TLS: &TLS{Certificates: cert, ClientValidation: required}, Routes: routes},
		}},
	}
	return s
}

func TestValidateClientValidation(t *testing.T) {
	if err := mtlsSnapshot().Validate(); err != nil {
		t.Fatalf("good snapshot: %v", err)
	}
	cases := []struct {
		name   string
		mutate func(cv *ClientValidation, l *Listener)
		want   string
	}{
		{"mode", func(cv *ClientValidation, _ *Listener) { cv.Mode = "Sometimes" }, `mode "Sometimes"`},
		{"no CAs", func(cv *ClientValidation, _ *Listener) { cv.CACertificates = nil }, "at least one CA certificate"},
		{"not PEM", func(cv *ClientValidation, _ *Listener) { cv.CACertificates[0].PEM = "junk" }, `"ns/ca" holds no PEM certificate`},
		{"cleartext", func(_ *ClientValidation, l *Listener) { l.Protocol = ProtocolHTTP }, "needs an HTTPS listener"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := mtlsSnapshot()
			l := &s.Listeners[1]
			cv := *l.VirtualHosts[0].TLS.ClientValidation
			cv.CACertificates = append([]CACertificate(nil), cv.CACertificates...)
			l.VirtualHosts[0].TLS = &TLS{Certificates: l.VirtualHosts[0].TLS.Certificates, ClientValidation: &cv}
			c.mutate(&cv, l)
			err := s.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// A schema 2 replica cannot ask for client certificates: virtual hosts that require
// them must not be served there at all, optional ones are served without asking.
func TestDowngradeToSchema2FailsClosedOnClientValidation(t *testing.T) {
	snap := mtlsSnapshot()
	snap.SchemaVersion = 3
	before := mtlsSnapshot()
	before.SchemaVersion = 3
	got, err := Downgrade(snap, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(snap, before) {
		t.Error("Downgrade modified its input")
	}
	if len(got.Listeners) != 1 {
		t.Fatalf("got %d listeners, want only :443 (:8443 has nothing left to serve)", len(got.Listeners))
	}
	var names []string
	for _, vh := range got.Listeners[0].VirtualHosts {
		names = append(names, vh.Name)
		if vh.TLS.ClientValidation != nil {
			t.Errorf("%s keeps client validation", vh.Name)
		}
	}
	if strings.Join(names, ",") != "ns/gw/b,ns/gw/c" {
		t.Errorf("virtual hosts %v, want ns/gw/b and ns/gw/c", names)
	}
	if got.RoutesVersion != snap.RoutesVersion || got.Version != snap.Version {
		t.Error("versions changed")
	}
	if err := validateAsCurrent(got); err != nil {
		t.Errorf("downgraded snapshot does not validate: %v", err)
	}
}

func TestDowngradeWithoutClientValidationSharesListeners(t *testing.T) {
	snap := validSnapshot()
	got, err := Downgrade(snap, 2)
	if err != nil {
		t.Fatal(err)
	}
	if &got.Listeners[0] != &snap.Listeners[0] {
		t.Error("listeners were copied although nothing needed to change")
	}
}
