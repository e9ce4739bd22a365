package server

import (
	"crypto/tls"
	"strings"
	"testing"
)

func TestCertStoreSelection(t *testing.T) {
	def := newTestCert(t, "default.example.test")
	exact := newTestCert(t, "www.example.test")
	wild := newTestCert(t, "*.example.test")
	shadow := newTestCert(t, "www.example.test", "other.example.test")
	store, err := NewCertStore([]CertPair{
		{Name: "def", CertPEM: def.certPEM, KeyPEM: def.keyPEM},
		{Name: "wild", CertPEM: wild.certPEM, KeyPEM: wild.keyPEM},
		{Name: "exact", CertPEM: exact.certPEM, KeyPEM: exact.keyPEM},
		{Name: "shadow", CertPEM: shadow.certPEM, KeyPEM: shadow.keyPEM},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"":                      "default.example.test",
		"www.example.test":      "www.example.test", // exact beats the wildcard listed earlier
		"WWW.Example.Test.":     "www.example.test",
		"api.example.test":      "*.example.test",
		"a.b.example.test":      "default.example.test", // a wildcard covers one label only
		"example.test":          "default.example.test",
		"other.example.test":    "www.example.test,other.example.test", // the later pair serves its other names
		"unknown.elsewhere.org": "default.example.test",
	}
	for sni, want := range cases {
		cert, err := store.GetCertificate(&tls.ClientHelloInfo{ServerName: sni})
		if err != nil {
			t.Fatalf("%q: %v", sni, err)
		}
		if got := strings.Join(cert.Leaf.DNSNames, ","); got != want {
			t.Errorf("SNI %q got certificate for %q, want %q", sni, got, want)
		}
	}
}

func TestCertStoreErrors(t *testing.T) {
	good := newTestCert(t, "a.example.test")
	other := newTestCert(t, "b.example.test")
	if _, err := NewCertStore(nil); err == nil {
		t.Error("empty store accepted")
	}
	_, err := NewCertStore([]CertPair{
		{Name: "ns/good", CertPEM: good.certPEM, KeyPEM: good.keyPEM},
		{Name: "ns/mismatched", CertPEM: good.certPEM, KeyPEM: other.keyPEM},
	})
	if err == nil || !strings.Contains(err.Error(), "ns/mismatched") {
		t.Errorf("mismatched pair: %v", err)
	}
	_, err = NewCertStore([]CertPair{{Name: "ns/garbage", CertPEM: "nope", KeyPEM: "nope"}})
	if err == nil || !strings.Contains(err.Error(), "ns/garbage") || strings.Contains(err.Error(), "nope") {
		t.Errorf("garbage pair: %v", err)
	}
	var nilStore *CertStore
	if _, err := nilStore.GetCertificate(&tls.ClientHelloInfo{}); err == nil {
		t.Error("nil store returned a certificate")
	}
}
