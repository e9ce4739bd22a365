package main

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/internal/testpki"
)

func TestControllerWebhookFlags(t *testing.T) {
	base := []string{"--tls-cert", "c", "--tls-key", "k", "--gateway-service-accounts", "ns/sa"}
	if _, err := parseControllerFlags(append(base, "--webhook-addr", ":9443")); err == nil || !strings.Contains(err.Error(), "--webhook-cert-dir") {
		t.Errorf("--webhook-addr without a certificate folder: %v", err)
	}
	f, err := parseControllerFlags(base)
	if err != nil {
		t.Fatal(err)
	}
	if w, err := newControllerWebhook(f.webhook, nil, nil); w != nil || err != nil {
		t.Errorf("without --webhook-addr the webhook is on (%v, %v)", w, err)
	}

	dir := t.TempDir()
	testpki.New(t).WriteFiles(t, dir)
	cases := []struct {
		flags []string
		want  string
	}{
		{[]string{"--webhook-cert-dir", t.TempDir()}, "--webhook-cert-dir"},
		{[]string{"--webhook-cert-dir", dir, "--webhook-proxy-port", "0x"}, "invalid value"},
		{[]string{"--webhook-cert-dir", dir, "--webhook-proxy-port", "70000"}, "--webhook-proxy-port"},
	}
	for _, tc := range cases {
		f, err := parseControllerFlags(append(append(base, "--webhook-addr", "127.0.0.1:0"), tc.flags...))
		if err == nil {
			_, err = newControllerWebhook(f.webhook, nil, prometheus.NewRegistry())
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("flags %v: error %v, want one containing %q", tc.flags, err, tc.want)
		}
	}
	f, err = parseControllerFlags(append(base, "--webhook-addr", "127.0.0.1:0", "--webhook-cert-dir", dir,
		"--webhook-no-proxy", "kubernetes.default.svc.cluster.local, 10.96.0.0/12"))
	if err != nil {
		t.Fatal(err)
	}
	if w, err := newControllerWebhook(f.webhook, nil, prometheus.NewRegistry()); w == nil || err != nil {
		t.Errorf("valid webhook flags: %v", err)
	}
}
