package cluster

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestSpreadPodsBalancesAndHonoursSelectors(t *testing.T) {
	node := func(name string, ready bool, labels map[string]string) corev1.Node {
		status := corev1.ConditionFalse
		if ready {
			status = corev1.ConditionTrue
		}
		return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status}}}}
	}
	base := time.Now()
	pod := func(name, nodeName string, age int, selector map[string]string) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(name),
			CreationTimestamp: metav1.NewTime(base.Add(time.Duration(age) * time.Second))},
			Spec: corev1.PodSpec{NodeName: nodeName, NodeSelector: selector}}
	}
	nodes := []corev1.Node{node("b", true, nil), node("a", true, map[string]string{"disk": "ssd"}), node("c", false, nil)}
	pods := []corev1.Pod{
		pod("running", "a", 0, nil),
		pod("p1", "", 1, nil), pod("p2", "", 2, nil), pod("p3", "", 3, nil),
		pod("ssd", "", 4, map[string]string{"disk": "ssd"}),
		pod("nowhere", "", 5, map[string]string{"disk": "tape"}),
	}
	got := spreadPods(pods, nodes)
	want := map[types.UID]string{"p1": "b", "p2": "a", "p3": "b", "ssd": "a", "nowhere": ""}
	for uid, node := range want {
		if got[uid] != node {
			t.Errorf("pod %s placed on %q, want %q (all: %v)", uid, got[uid], node, got)
		}
	}
	if _, ok := got["running"]; ok {
		t.Errorf("a scheduled pod was placed again: %v", got)
	}
}

func TestLogQueryAndSelection(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	lines := []logLine{{now.Add(-3 * time.Second), "one"}, {now.Add(-time.Second), "two"}, {now, "three"}}
	cases := []struct {
		query string
		want  string
	}{
		{"", "one two three"},
		{"tailLines=2", "two three"},
		{"tailLines=0", ""},
		{"sinceTime=" + url.QueryEscape(now.Add(-2*time.Second).Format(time.RFC3339)), "two three"},
		{"sinceSeconds=1&tailLines=5", "two three"},
	}
	for _, c := range cases {
		values, _ := url.ParseQuery(c.query)
		q, err := parseLogQuery(values, now)
		if err != nil {
			t.Fatalf("%q: %v", c.query, err)
		}
		var texts []string
		for _, l := range selectLines(lines, q) {
			texts = append(texts, l.text)
		}
		if got := strings.Join(texts, " "); got != c.want {
			t.Errorf("%q selected %q, want %q", c.query, got, c.want)
		}
	}
	for _, bad := range []string{"tailLines=-1", "follow=maybe", "sinceTime=yesterday", "previous=true"} {
		values, _ := url.ParseQuery(bad)
		if _, err := parseLogQuery(values, now); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

func TestContainerLogKeepsLinesWithinLimit(t *testing.T) {
	l := newContainerLog(16)
	_, _ = l.Write([]byte("first line\nsec"))
	_, _ = l.Write([]byte("ond\nthird\n"))
	lines, next, _, closed := l.from(0)
	if len(lines) != 2 || lines[0].text != "second" || lines[1].text != "third" || next != 3 || closed {
		t.Fatalf("lines %+v next %d closed %v, want second and third after the first was dropped", lines, next, closed)
	}
	_, _ = l.Write([]byte("tail"))
	l.Close()
	lines, _, _, closed = l.from(next)
	if len(lines) != 1 || lines[0].text != "tail" || !closed {
		t.Fatalf("after close: %+v closed %v", lines, closed)
	}
}

func TestEnvExpansionAndPaths(t *testing.T) {
	vars := map[string]string{"A": "x"}
	for in, want := range map[string]string{"$(A)-$(B)": "x-$(B)", "$$(A)": "$(A)", "a$": "a$", "$(A": "$(A", "$A": "$A"} {
		if got := expandVars(in, vars); got != want {
			t.Errorf("expandVars(%q) = %q, want %q", in, got, want)
		}
	}
	mounts := []mount{{"/etc/secret", "/tmp/v1"}, {"/etc/secret/deep", "/tmp/v2"}}
	for in, want := range map[string]string{
		"/etc/secret/crt": "/tmp/v1/crt", "/etc/secret/deep/key": "/tmp/v2/key",
		"/etc/secretive": "/etc/secretive", "/etc/secret": "/tmp/v1",
	} {
		if got := resolvePath(in, mounts); got != want {
			t.Errorf("resolvePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestContainerServersFollowTheEchoServerEnvironment(t *testing.T) {
	echoBasic := &corev1.Container{Image: "registry/echo-basic:v1"}
	servers, err := containerServers(echoBasic, map[string]string{"HTTP_PORT": "8080"}, nil)
	if err != nil || len(servers) != 2 || servers[0].port != 8080 || servers[1].port != defaultH2CPort {
		t.Errorf("echo-basic servers %+v, %v", servers, err)
	}
	other := &corev1.Container{Image: "coredns", Ports: []corev1.ContainerPort{
		{ContainerPort: 53, Protocol: corev1.ProtocolUDP}, {ContainerPort: 9153}}}
	servers, err = containerServers(other, nil, nil)
	if err != nil || len(servers) != 1 || servers[0].port != 9153 {
		t.Errorf("other image servers %+v, %v", servers, err)
	}
	if _, err := containerServers(echoBasic, map[string]string{"H2C_PORT": "lots"}, nil); err == nil {
		t.Error("a malformed H2C_PORT was accepted")
	}
	if _, err := containerServers(echoBasic, map[string]string{"TLS_SERVER_CERT": "/no/crt", "TLS_SERVER_PRIVKEY": "/no/key"}, nil); err == nil {
		t.Error("missing certificate files were accepted")
	}
}

// TestFollowedLogStreamsUntilTheContainerStops reads a log with follow=true: lines
// written later arrive, and the stream ends when the container's log closes.
func TestFollowedLogStreamsUntilTheContainerStops(t *testing.T) {
	logs := newContainerLog(maxLogBytes)
	k := &Kubelet{node: "n", running: map[types.UID]*podRuntime{
		"u": {namespace: "ns", name: "p", logs: map[string]*containerLog{"c": logs}}}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", k.serveContainerLogs)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	_, _ = logs.Write([]byte("before\n"))
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(srv.URL + "/containerLogs/ns/p/c?follow=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	reader := bufio.NewReader(resp.Body)
	if line, err := reader.ReadString('\n'); err != nil || line != "before\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	_, _ = logs.Write([]byte("after\n"))
	if line, err := reader.ReadString('\n'); err != nil || line != "after\n" {
		t.Fatalf("followed line %q, %v", line, err)
	}
	logs.Close()
	if rest, err := io.ReadAll(reader); err != nil || len(rest) != 0 {
		t.Fatalf("after close: %q, %v", rest, err)
	}
	missing, err := client.Get(srv.URL + "/containerLogs/ns/p/other")
	if err != nil {
		t.Fatal(err)
	}
	missing.Body.Close()
	if missing.StatusCode != http.StatusNotFound {
		t.Errorf("unknown container: status %d, want 404", missing.StatusCode)
	}
}
