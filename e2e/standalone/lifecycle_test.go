package standalone_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func headerRoute(value string) string {
	return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{name: x-generation, value: %q}]
    backendRefs: [{name: v1, port: 80}]
`, value)
}

// TestReloadUnderLoad edits the configuration repeatedly while clients send requests
// without pause, and requires that every request succeeds and that every edit is seen.
func TestReloadUnderLoad(t *testing.T) {
	v1 := echoBackend(t, "v1")
	port := freePort(t)
	g := startGateway(t, map[string]string{
		"gateway.yaml":  gatewayYAML("gw", port),
		"services.yaml": serviceYAML("v1", "", v1),
		"routes.yaml":   headerRoute("0"),
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)

	var sent, failed atomic.Int64
	var lastSeen atomic.Value
	lastSeen.Store("0")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(30 * time.Second)
			for i := 0; i < 100000 && time.Now().Before(deadline); i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := g.client.Get(url)
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					t.Errorf("request failed during reload: %v", err)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
					t.Errorf("status %d during reload", resp.StatusCode)
				}
				lastSeen.Store(resp.Header.Get("X-Generation"))
			}
		}()
	}
	const edits = 10
	for i := 1; i <= edits; i++ {
		want := fmt.Sprint(i)
		writeFile(t, filepath.Join(g.dir, "routes.yaml"), headerRoute(want))
		waitFor(t, 10*time.Second, func() bool { return lastSeen.Load() == want })
	}
	close(stop)
	wg.Wait()
	if sent.Load() < edits {
		t.Fatalf("only %d requests were sent", sent.Load())
	}
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed across %d reloads", failed.Load(), sent.Load(), edits)
	}
	t.Logf("%d requests, %d reloads, 0 failures", sent.Load(), edits)
}

// TestInvalidEditKeepsServing breaks the configuration and expects the last good one to
// stay in effect, with the reason reported by the admin API, until the edit is fixed.
func TestInvalidEditKeepsServing(t *testing.T) {
	v1 := echoBackend(t, "v1")
	port := freePort(t)
	g := startGateway(t, map[string]string{
		"gateway.yaml":  gatewayYAML("gw", port),
		"services.yaml": serviceYAML("v1", "", v1),
		"routes.yaml":   headerRoute("good"),
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	good := g.configVersion(t)

	writeFile(t, filepath.Join(g.dir, "routes.yaml"), "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: app\n  bad: [")
	var view struct {
		Version   string `json:"version"`
		LastError string `json:"lastError"`
	}
	waitFor(t, 10*time.Second, func() bool {
		g.adminJSON(t, "/api/v1/config", &view)
		return view.LastError != ""
	})
	if view.Version != good {
		t.Errorf("version changed to %q after an invalid edit, want %q", view.Version, good)
	}
	if !strings.Contains(view.LastError, "routes.yaml") {
		t.Errorf("lastError %q does not name the file", view.LastError)
	}
	resp, err := g.client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Generation") != "good" {
		t.Fatalf("after invalid edit: status %d generation %q, want 200 good", resp.StatusCode, resp.Header.Get("X-Generation"))
	}

	writeFile(t, filepath.Join(g.dir, "routes.yaml"), headerRoute("fixed"))
	waitFor(t, 10*time.Second, func() bool {
		resp, err := g.client.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.Header.Get("X-Generation") == "fixed"
	})
}

// TestSIGTERMDrains starts a slow request, sends SIGTERM, and expects the request to
// complete, new connections to be refused, and the process to exit cleanly.
func TestSIGTERMDrains(t *testing.T) {
	v1 := echoBackend(t, "v1")
	port := freePort(t)
	g := startGateway(t, map[string]string{
		"gateway.yaml":  gatewayYAML("gw", port),
		"services.yaml": serviceYAML("v1", "", v1),
		"routes.yaml":   headerRoute("x"),
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/slow?delay=1s", port)
	result := make(chan error, 1)
	go func() {
		resp, err := g.client.Get(url)
		if err != nil {
			result <- err
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "/slow") {
			result <- fmt.Errorf("slow request: status %d body %q", resp.StatusCode, body)
			return
		}
		result <- nil
	}()
	time.Sleep(300 * time.Millisecond) // let the slow request reach the backend
	if err := g.proc.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-result:
		if err != nil {
			t.Fatalf("in-flight request during drain: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight request did not finish")
	}
	select {
	case <-g.proc.Exited:
		if g.proc.Err != nil {
			t.Fatalf("gateway exited with %v", g.proc.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gateway did not exit after draining")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
	if resp, err := (&http.Client{}).Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("gateway still accepts requests after exiting")
	}
}

// TestMalformedRequestsAreRefused sends raw requests that a proxy must not forward.
func TestMalformedRequestsAreRefused(t *testing.T) {
	v1 := echoBackend(t, "v1")
	port := freePort(t)
	startGateway(t, map[string]string{
		"gateway.yaml":  gatewayYAML("gw", port),
		"services.yaml": serviceYAML("v1", "", v1),
		"routes.yaml":   headerRoute("x"),
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	smuggle := "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	if out := rawExchange(t, addr, smuggle, 5*time.Second); !strings.HasPrefix(out, "HTTP/1.1 400") {
		t.Errorf("Content-Length with Transfer-Encoding: got %q, want 400", firstLine(out))
	}
	badHost := "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"
	if out := rawExchange(t, addr, badHost, 5*time.Second); !strings.HasPrefix(out, "HTTP/1.1 400") {
		t.Errorf("invalid Host: got %q, want 400", firstLine(out))
	}
	big := "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("a", 1<<20) + "\r\n\r\n"
	if out := rawExchange(t, addr, big, 5*time.Second); !strings.HasPrefix(out, "HTTP/1.1 431") {
		t.Errorf("oversized headers: got %q, want 431", firstLine(out))
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
