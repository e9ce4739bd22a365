package cluster

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestIsOurImage(t *testing.T) {
	for image, want := range map[string]bool{
		"switchyard":                                true,
		"switchyard:1.2.3":                          true,
		"ghcr.io/switchyard-dev/switchyard:dev":     true,
		"localhost:5000/switchyard":                 true,
		"registry.example/switchyard@sha256:abcdef": true,
		"registry.example:443/team/switchyard:v1":   true,
		"switchyard-echo:1":                         false,
		"registry.example/switchyard/other:1":       false,
		"echo-basic":                                false,
		"myswitchyard:1":                            false,
	} {
		if got := IsOurImage(image); got != want {
			t.Errorf("IsOurImage(%q) = %v, want %v", image, got, want)
		}
	}
}

// TestImageCommandMatchesDockerfile keeps imageEntrypoint and imageCmd equal to the
// Dockerfile's ENTRYPOINT and CMD, which they stand for.
func TestImageCommandMatchesDockerfile(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	f, err := os.Open(filepath.Join(filepath.Dir(file), "..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	found := map[string][]string{}
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		instruction, rest, _ := strings.Cut(scanner.Text(), " ")
		if instruction == "ENTRYPOINT" || instruction == "CMD" {
			var words []string
			if err := json.Unmarshal([]byte(rest), &words); err != nil {
				t.Fatalf("%s is not in exec form: %v", instruction, err)
			}
			found[instruction] = words
		}
	}
	if !slices.Equal(found["ENTRYPOINT"], imageEntrypoint) || !slices.Equal(found["CMD"], imageCmd) {
		t.Errorf("Dockerfile ENTRYPOINT %q CMD %q; the kubelet assumes %q and %q",
			found["ENTRYPOINT"], found["CMD"], imageEntrypoint, imageCmd)
	}
}

func TestCommandLineFollowsKubernetesRules(t *testing.T) {
	env := map[string]string{"IP": "10.244.1.7"}
	cases := []struct {
		name          string
		command, args []string
		want          []string
	}{
		{"image defaults", nil, nil, imageCmd},
		{"args replace CMD", nil, []string{"echo", "--listen=$(IP):80"}, []string{"echo", "--listen=10.244.1.7:80"}},
		{"command drops CMD", []string{"/usr/local/bin/switchyard"}, nil, []string{}},
		{"command by name with args", []string{"switchyard", "gateway"}, []string{"--node=$(NODE)"}, []string{"gateway", "--node=$(NODE)"}},
	}
	for _, c := range cases {
		got, err := commandLine(&corev1.Container{Image: "switchyard", Command: c.command, Args: c.args}, env)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	if _, err := commandLine(&corev1.Container{Image: "switchyard", Command: []string{"/bin/sh", "-c", "true"}}, env); err == nil {
		t.Error("a command that is not our binary was accepted")
	}
}

func TestRewriteMovesAddressesAndPathsIntoThePod(t *testing.T) {
	addrs := podAddresses{ip: "10.244.2.9", loopback: podLoopback("10.244.2.9")}
	mounts := []mount{{"/var/run/secrets/tokens", "/tmp/pod/volumes/token"}}
	for in, want := range map[string]string{
		"--admin-addr=127.0.0.1:9901":            "--admin-addr=127.244.2.9:9901",
		"localhost:8080":                         "127.244.2.9:8080",
		"--metrics-addr=:9091":                   "--metrics-addr=10.244.2.9:9091",
		"0.0.0.0:15001":                          "10.244.2.9:15001",
		"[::]:15001":                             "10.244.2.9:15001",
		"http://127.0.0.1:9901/readyz":           "http://127.244.2.9:9901/readyz",
		"https://10.244.0.2:18000":               "https://10.244.0.2:18000",
		"http://:80":                             "http://:80",
		"--token-file=/var/run/secrets/tokens/t": "--token-file=/tmp/pod/volumes/token/t",
		"/var/run/secrets/tokens":                "/tmp/pod/volumes/token",
		"/var/run/secrets/tokensx":               "/var/run/secrets/tokensx",
		"--listen":                               "--listen",
		"--role=node":                            "--role=node",
		"name:value":                             "name:value",
		"10.244.1.5:8080":                        "10.244.1.5:8080",
	} {
		if got := addrs.rewrite(in, mounts); got != want {
			t.Errorf("rewrite(%q) = %q, want %q", in, got, want)
		}
	}
	if got := podLoopback("10.244.1.1"); got != "127.244.1.1" {
		t.Errorf("a node's loopback is %s, want 127.244.1.1", got)
	}
}

// TestSpreadPodsHonoursAffinityAndHostPorts places DaemonSet Pods (pinned to their
// node by required node affinity, as the DaemonSet controller writes it) and shows
// that a declared host port keeps a second Pod off a node while a Pod without one
// may run beside the first.
func TestSpreadPodsHonoursAffinityAndHostPorts(t *testing.T) {
	ready := []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	nodes := []corev1.Node{
		{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{"zone": "1"}}, Status: corev1.NodeStatus{Conditions: ready}},
		{ObjectMeta: metav1.ObjectMeta{Name: "b", Labels: map[string]string{"zone": "2"}}, Status: corev1.NodeStatus{Conditions: ready}},
	}
	pinned := func(name, node string, hostNetwork bool, port int32) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(name), CreationTimestamp: metav1.NewTime(time.Now())},
			Spec: corev1.PodSpec{HostNetwork: hostNetwork, Containers: []corev1.Container{{Name: "c"}},
				Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{
						{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}}}}}}}}
		if port != 0 {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: port}}
		}
		return p
	}
	running := pinned("old-ported", "a", true, 15001)
	running.Spec.NodeName = "a"
	pods := []corev1.Pod{
		running,
		pinned("surge-ported", "a", true, 15001),
		pinned("surge-portless", "a", true, 0),
		pinned("for-b", "b", true, 15001),
	}
	zoned := pinned("zone-2", "", false, 0)
	zoned.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms = []corev1.NodeSelectorTerm{
		{}, // an empty term matches nothing
		{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"1"}}}},
	}
	pods = append(pods, zoned)
	got := spreadPods(pods, nodes)
	want := map[types.UID]string{"surge-ported": "", "surge-portless": "a", "for-b": "b", "zone-2": "b"}
	for uid, node := range want {
		if got[uid] != node {
			t.Errorf("pod %s placed on %q, want %q (all: %v)", uid, got[uid], node, got)
		}
	}
}

func TestResolveProbe(t *testing.T) {
	c := &corev1.Container{Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9091}}}
	p, err := resolveProbe(c, &corev1.Probe{FailureThreshold: 2, ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
		Path: "readyz", Port: intstr.FromString("metrics"),
		HTTPHeaders: []corev1.HTTPHeader{{Name: "Host", Value: "probe.example"}, {Name: "X-A", Value: "1"}}}}}, "10.244.1.4")
	if err != nil || p.url != "http://10.244.1.4:9091/readyz" || p.host != "probe.example" || p.headers.Get("X-A") != "1" ||
		p.failures != 2 || p.success != 1 || p.period != 10*time.Second {
		t.Errorf("probe %+v, %v", p, err)
	}
	tcp, err := resolveProbe(c, &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(15001)}}}, "10.244.1.1")
	if err != nil || tcp.addr != "10.244.1.1:15001" || tcp.failures != 3 {
		t.Errorf("tcp probe %+v, %v", tcp, err)
	}
	if _, err := resolveProbe(c, &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("admin")}}}, "ip"); err == nil {
		t.Error("a probe on an unknown named port was accepted")
	}
	if p, err := resolveProbe(c, &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{}}}, "ip"); p != nil || err != nil {
		t.Errorf("an exec probe resolved to %+v, %v; want none", p, err)
	}
}

// TestProbeThresholds: readiness turns on after successThreshold passes in a row and
// off after failureThreshold failures in a row, and only while the container runs.
func TestProbeThresholds(t *testing.T) {
	c := &containerRuntime{readiness: &probeSpec{success: 2, failures: 2}, running: true}
	steps := []struct {
		ok, changed, ready bool
	}{{true, false, false}, {true, true, true}, {false, false, true}, {true, false, true}, {false, false, true}, {false, true, false}}
	for i, s := range steps {
		changed := c.probed(s.ok)
		if ready, _ := c.isReady(); changed != s.changed || ready != s.ready {
			t.Fatalf("step %d: changed %v ready %v, want %v %v", i, changed, ready, s.changed, s.ready)
		}
	}
	c.running = false
	if c.probed(true) || c.probed(true) {
		t.Error("a stopped container became ready")
	}
}

func TestKeyFilesAndGracePeriod(t *testing.T) {
	data := map[string][]byte{"tls.crt": []byte("c"), "ca.crt": []byte("a")}
	files, err := keyFiles(data, []corev1.KeyToPath{{Key: "ca.crt", Path: "ca/ca.crt"}}, false)
	if err != nil || len(files) != 1 || string(files["ca/ca.crt"]) != "a" {
		t.Errorf("items: %v, %v", files, err)
	}
	if _, err := keyFiles(data, []corev1.KeyToPath{{Key: "missing", Path: "x"}}, false); err == nil {
		t.Error("a missing key was accepted")
	}
	if files, err := keyFiles(data, []corev1.KeyToPath{{Key: "missing", Path: "x"}}, true); err != nil || len(files) != 0 {
		t.Errorf("optional missing key: %v, %v", files, err)
	}
	if err := writeFiles(t.TempDir(), map[string][]byte{"../escape": nil}); err == nil {
		t.Error("a path leaving the volume was written")
	}
	seven, thirty := int64(7), int64(30)
	pod := &corev1.Pod{Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &thirty}}
	if g := gracePeriod(pod); g != 30*time.Second {
		t.Errorf("grace from the spec: %v", g)
	}
	pod.DeletionGracePeriodSeconds = &seven
	if g := gracePeriod(pod); g != 7*time.Second {
		t.Errorf("grace from the deletion: %v", g)
	}
}

// TestBuiltInAdminAddrsMatchTheBinary compares builtInAdminAddrs with the defaults our
// binary's subcommands print in their help.
func TestBuiltInAdminAddrsMatchTheBinary(t *testing.T) {
	binary := os.Getenv(EnvBinary)
	if binary == "" {
		t.Fatal("no switchyard binary: TestMain must call cluster.MainWithBinary")
	}
	for sub, addr := range builtInAdminAddrs {
		out, _ := exec.Command(binary, sub, "-h").CombinedOutput()
		_, help, _ := strings.Cut(string(out), "-admin-addr string")
		line, _, _ := strings.Cut(strings.TrimSpace(help), "\n")
		if !strings.Contains(line, fmt.Sprintf("(default %q)", addr)) {
			t.Errorf("%s: the kubelet assumes the admin API defaults to %s; the help says %q", sub, addr, line)
		}
	}
	args := withBuiltInAdminAddr([]string{"gateway", "--role=node"})
	if !slices.Equal(args, []string{"gateway", "--role=node", "--admin-addr=127.0.0.1:9901"}) {
		t.Errorf("without the flag: %q", args)
	}
	for _, given := range [][]string{{"gateway", "--admin-addr", "127.0.0.1:1"}, {"controller", "-admin-addr=127.0.0.1:2"}, {"echo"}} {
		if got := withBuiltInAdminAddr(slices.Clone(given)); !slices.Equal(got, given) {
			t.Errorf("%q became %q", given, got)
		}
	}
}
