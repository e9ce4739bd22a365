// Package standalone_test drives the real switchyard binary in standalone mode with
// real echo backends, all on loopback, and asserts what a client sees.
package standalone_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/switchyard-dev/switchyard/e2e/proc"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/testport"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "switchyard-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "switchyard")
	build := exec.Command("go", "build", "-race", "-o", binary, "../../cmd/switchyard")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building switchyard:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a free loopback port (see testport for why not ":0").
func freePort(t testing.TB) int { return testport.Free(t) }

func start(t testing.TB, args ...string) *proc.Process {
	t.Helper()
	return proc.Start(t, binary, args...)
}

// echoBackend starts `switchyard echo` on a free loopback port and returns the port.
func echoBackend(t testing.TB, pod string) int {
	t.Helper()
	port := freePort(t)
	start(t, "echo", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--pod", pod, "--namespace", "default")
	waitFor(t, 10*time.Second, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return port
}

// gateway is a running standalone gateway.
type gateway struct {
	proc   *proc.Process
	dir    string
	admin  string
	client *http.Client
}

// startGateway writes the manifests into a fresh folder and starts the gateway on it,
// waiting until it reports ready.
func startGateway(t testing.TB, manifests map[string]string, extra ...string) *gateway {
	t.Helper()
	dir := t.TempDir()
	for name, body := range manifests {
		writeFile(t, filepath.Join(dir, name), body)
	}
	return launchGateway(t, dir, extra...)
}

// launchGateway starts a gateway on a folder of manifests that is already written,
// such as the folder of a gateway that was stopped, waiting until it reports ready.
func launchGateway(t testing.TB, dir string, extra ...string) *gateway {
	t.Helper()
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	args := append([]string{"standalone", "--config", dir, "--admin-addr", admin, "--watch-interval", "50ms", "--log-level", "debug"}, extra...)
	g := &gateway{proc: start(t, args...), dir: dir, admin: "http://" + admin,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	waitFor(t, 20*time.Second, func() bool {
		resp, err := http.Get(g.admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return g
}

func writeFile(t testing.TB, path, body string) {
	t.Helper()
	// Write to a temporary name and rename, as editors and config management do, so a
	// reader never sees half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// echoReply is the part of the echo backend's JSON reply the tests read.
type echoReply struct {
	Path    string              `json:"path"`
	Host    string              `json:"host"`
	Method  string              `json:"method"`
	Proto   string              `json:"proto"`
	Headers map[string][]string `json:"headers"`
	Pod     string              `json:"pod"`
}

// get sends a request and decodes an echo reply when the status is 200.
func (g *gateway) do(t testing.TB, req *http.Request) (*http.Response, *echoReply) {
	t.Helper()
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), "json") {
		return resp, nil
	}
	var e echoReply
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("decoding echo reply %q: %v", body, err)
	}
	return resp, &e
}

func newRequest(t testing.TB, method, url string, headers ...string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "host") {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Add(headers[i], headers[i+1])
	}
	return req
}

// adminJSON fetches an admin endpoint and decodes it into v.
func (g *gateway) adminJSON(t testing.TB, path string, v any) {
	t.Helper()
	resp, err := http.Get(g.admin + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func (g *gateway) configVersion(t testing.TB) string {
	var v struct {
		Version string `json:"version"`
	}
	g.adminJSON(t, "/api/v1/config", &v)
	return v.Version
}

// rawExchange writes raw bytes to addr and returns everything read until the server
// closes the connection or the timeout passes.
func rawExchange(t testing.TB, addr, raw string, timeout time.Duration) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, _ = io.Copy(&out, bufio.NewReader(c))
	return out.String()
}
