package main

import (
	"context"
	"errors"
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
	cases := []struct {
		memoryMax, goMemLimit string
		want                  int64
		wantSet               bool
	}{
		{memoryMax: "1073741824\n", want: 966367641, wantSet: true},
		{memoryMax: "max\n", wantSet: false},
		{memoryMax: "", wantSet: false},
		{memoryMax: "1073741824\n", goMemLimit: "500MiB", wantSet: false},
	}
	for _, c := range cases {
		got, set := memoryLimit(c.memoryMax, c.goMemLimit)
		if set != c.wantSet || (set && got != c.want) {
			t.Errorf("memoryLimit(%q, %q) = %d, %v; want %d, %v", c.memoryMax, c.goMemLimit, got, set, c.want, c.wantSet)
		}
	}
}

func TestCgroupMemoryMaxPath(t *testing.T) {
	cases := map[string]string{
		"0::/\n":                                   "/sys/fs/cgroup/memory.max",
		"0::/system.slice/switchyard.service\n":    "/sys/fs/cgroup/system.slice/switchyard.service/memory.max",
		"12:memory:/docker/abc\n0::/kubepods/pod1": "/sys/fs/cgroup/kubepods/pod1/memory.max",
		"":                "/sys/fs/cgroup/memory.max",
		"0::/../../etc\n": "/sys/fs/cgroup/etc/memory.max",
	}
	for in, want := range cases {
		if got := cgroupMemoryMaxPath(in); got != want {
			t.Errorf("cgroupMemoryMaxPath(%q) = %q, want %q", in, got, want)
		}
	}
}
