package main

import (
	"net/netip"
	"strings"
	"testing"
)

func TestNodeFlags(t *testing.T) {
	t.Setenv("HOST_IP", "10.0.0.7")
	base := []string{"--controller", "https://c:1", "--node", "n", "--role", "node"}
	f, err := parseGatewayFlags(append(base, "--egress", "deny", "--egress-allow", "api.example.com,*.example.org,203.0.113.0/24",
		"--node-addresses", "10.0.0.0/24,fd00::7", "--service-cidrs", "10.96.0.0/12"))
	if err != nil {
		t.Fatal(err)
	}
	opts, err := f.nodeFlags.options()
	if err != nil {
		t.Fatal(err)
	}
	if opts.Address != "10.0.0.7" || opts.Port != defaultMeshPort || !opts.Egress.DenyByDefault || opts.Egress.Allow.Empty() {
		t.Errorf("options %+v", opts)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("fd00::7/128")}
	if len(opts.Egress.NodeAddresses) != 2 || opts.Egress.NodeAddresses[0] != want[0] || opts.Egress.NodeAddresses[1] != want[1] {
		t.Errorf("node addresses %v", opts.Egress.NodeAddresses)
	}
	if len(opts.Egress.ServiceCIDRs) != 1 {
		t.Errorf("service CIDRs %v", opts.Egress.ServiceCIDRs)
	}

	t.Setenv("HOST_IP", "")
	f, err = parseGatewayFlags(base)
	if err != nil || f.listen != ":15001" {
		t.Fatalf("default listen %q, %v", f.listen, err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--egress", "maybe"}, "want allow or deny"},
		{[]string{"--egress-allow", "bad name!"}, "--egress-allow"},
		{[]string{"--node-addresses", "ten"}, "--node-addresses"},
		{[]string{"--service-cidrs", "10.96.0.0/40"}, "--service-cidrs"},
		{[]string{"--listen", "nowhere"}, "--listen"},
		{[]string{"--listen", "host:15001"}, "--listen"},
	}
	for _, c := range cases {
		if _, err := parseGatewayFlags(append(append([]string{}, base...), c.args...)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one containing %q", c.args, err, c.want)
		}
	}
	edge := []string{"--controller", "https://c:1", "--node", "n", "--egress", "deny"}
	if _, err := parseGatewayFlags(edge); err == nil || !strings.Contains(err.Error(), "--role node only") {
		t.Errorf("node flags on an edge replica: %v", err)
	}
}
