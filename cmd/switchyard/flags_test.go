package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/controller/distribute"
)

func TestControllerFlagsRequireTLSAndReplicaAuthentication(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--gateway-token-file", "t"}, "--tls-cert and --tls-key are required"},
		{[]string{"--tls-cert", "c", "--tls-key", "k"}, "gateway replicas must authenticate"},
	}
	for _, c := range cases {
		_, err := parseControllerFlags(c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("flags %v: error %v, want one containing %q", c.args, err, c.want)
		}
	}
	f, err := parseControllerFlags([]string{"--tls-cert", "c", "--tls-key", "k", "--gateway-service-accounts", "ns/sa"})
	if err != nil || f.holdOff <= 0 || f.maxDelay < f.holdOff {
		t.Fatalf("valid flags: %+v, %v", f, err)
	}
}

func TestControllerEastWestFlags(t *testing.T) {
	base := []string{"--tls-cert", "c", "--tls-key", "k", "--gateway-token-file", "t"}
	f, err := parseControllerFlags(base)
	if err != nil || !f.eastWest || f.clusterDomain != "cluster.local" {
		t.Fatalf("defaults: %+v, %v; want the mesh on in cluster.local", f, err)
	}
	f, err = parseControllerFlags(append(base, "--east-west=false", "--cluster-domain", "corp.example."))
	if err != nil || f.eastWest || f.clusterDomain != "corp.example." {
		t.Fatalf("set: %+v, %v", f, err)
	}
	if _, err := parseControllerFlags(append(base, "--cluster-domain", "not a domain")); err == nil || !strings.Contains(err.Error(), "--cluster-domain") {
		t.Errorf("a bad cluster domain: error %v, want one naming --cluster-domain", err)
	}
}

func TestGatewayFlagsNeedControllerNodeAndKnownRole(t *testing.T) {
	t.Setenv("NODE_NAME", "")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--node", "n"}, "--controller is required"},
		{[]string{"--controller", "https://c:1"}, "--node is required"},
		{[]string{"--controller", "https://c:1", "--node", "n", "--role", "mesh"}, "want edge or node"},
	}
	for _, c := range cases {
		_, err := parseGatewayFlags(c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("flags %v: error %v, want one containing %q", c.args, err, c.want)
		}
	}
}

func TestPlacementFlags(t *testing.T) {
	if lo, hi, err := parsePortRange("20000-20009"); err != nil || lo != 20000 || hi != 20009 {
		t.Errorf("parsePortRange: %d %d %v", lo, hi, err)
	}
	for _, bad := range []string{"", "20000", "9-1", "0-10", "1-70000", "a-b"} {
		if _, _, err := parsePortRange(bad); err == nil {
			t.Errorf("parsePortRange(%q) accepted", bad)
		}
	}
	if sel, err := parseSelector("a=b,c=d"); err != nil || sel["a"] != "b" || sel["c"] != "d" {
		t.Errorf("parseSelector: %v %v", sel, err)
	}
	if _, err := parseSelector(""); err == nil {
		t.Error("an empty edge selector, which would select every Pod, was accepted")
	}
	for _, mode := range []string{"pool", "service", "bogus"} {
		f := &controllerFlags{placementMode: mode, portRange: "20000-20010", edgeSelector: "a=b", serviceType: "ClusterIP"}
		_, err := newAllocator(f)
		if wantErr := mode != "service"; (err != nil) != wantErr {
			t.Errorf("placement %q without a pool: error %v", mode, err)
		}
	}
}

type fixedAuth struct {
	name string
	err  error
}

func (a fixedAuth) Authenticate(context.Context, string) (distribute.Identity, error) {
	return distribute.Identity{Name: a.name}, a.err
}

func TestAnyAuthenticator(t *testing.T) {
	reject := fixedAuth{err: errors.New("rejected")}
	unavailable := fixedAuth{err: distribute.ErrAuthUnavailable}
	if id, err := (anyAuthenticator{reject, fixedAuth{name: "sa"}}).Authenticate(context.Background(), "t"); err != nil || id.Name != "sa" {
		t.Errorf("second authenticator accepts: %v %v", id, err)
	}
	if _, err := (anyAuthenticator{reject, unavailable}).Authenticate(context.Background(), "t"); !errors.Is(err, distribute.ErrAuthUnavailable) {
		t.Errorf("all reject, one unavailable: %v, want the unavailable error so the replica retries", err)
	}
	if _, err := (anyAuthenticator{reject}).Authenticate(context.Background(), "t"); err == nil || errors.Is(err, distribute.ErrAuthUnavailable) {
		t.Errorf("all reject: %v, want a rejection", err)
	}
}

func TestRetryBackoffDoublesToAMinuteAndResets(t *testing.T) {
	var r retryBackoff
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute}
	for i, w := range want {
		if got := r.after(true); got != w {
			t.Fatalf("failure %d: wait %v, want %v", i+1, got, w)
		}
	}
	if got := r.after(false); got != 0 {
		t.Fatalf("after a success: wait %v, want 0", got)
	}
	if got := r.after(true); got != time.Second {
		t.Fatalf("first failure after a success: wait %v, want 1s", got)
	}
}

func TestGCPercentPrecedence(t *testing.T) {
	cases := []struct {
		flag    int
		goGC    string
		want    int
		wantSet bool
	}{
		{flag: 0, goGC: "", want: defaultGCPercent, wantSet: true},
		{flag: 0, goGC: "150", wantSet: false},
		{flag: 0, goGC: "off", wantSet: false},
		{flag: 200, goGC: "150", want: 200, wantSet: true},
		{flag: -1, goGC: "", want: -1, wantSet: true},
	}
	for _, c := range cases {
		got, set := gcPercent(c.flag, c.goGC)
		if set != c.wantSet || (set && got != c.want) {
			t.Errorf("gcPercent(%d, %q) = %d, %v; want %d, %v", c.flag, c.goGC, got, set, c.want, c.wantSet)
		}
	}
}

func TestMemoryLimitFollowsTheContainer(t *testing.T) {
	if got, ok := memoryLimit(1<<30, ""); !ok || got != 966367641 {
		t.Errorf("memoryLimit(1 GiB) = %d, %v; want 90%%", got, ok)
	}
	if _, ok := memoryLimit(1<<30, "500MiB"); ok {
		t.Error("memoryLimit overrode GOMEMLIMIT")
	}
}

// The smallest limit among the process's group and its ancestors counts.
func TestCgroupMemoryLimit(t *testing.T) {
	root := t.TempDir()
	write := func(dir, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, dir, "memory.max"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("/", "max\n")
	write("/kubepods", "max\n")
	write("/kubepods/pod1", "2147483648\n")
	write("/kubepods/pod1/container", "max\n")
	write("/slice", "1073741824\n")
	write("/slice/service", "4294967296\n")
	cases := []struct {
		procSelfCgroup string
		want           int64
		wantOK         bool
	}{
		{"0::/kubepods/pod1/container\n", 2147483648, true},
		{"12:memory:/docker/abc\n0::/slice/service\n", 1073741824, true},
		{"0::/\n", 0, false},
		{"", 0, false},
		{"0::/not/there\n", 0, false},
		{"0::/../../kubepods/pod1\n", 2147483648, true},
	}
	for _, c := range cases {
		got, ok := cgroupMemoryLimit(root, c.procSelfCgroup)
		if ok != c.wantOK || got != c.want {
			t.Errorf("cgroupMemoryLimit(%q) = %d, %v; want %d, %v", c.procSelfCgroup, got, ok, c.want, c.wantOK)
		}
	}
}
