package standalone_test

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/e2e/proc"
)

// processLoad is a bounded closed loop of clients: each sends GETs to its URL, half
// over keep-alive connections and half over a new connection per request, and the
// answers are counted by the X-Generation header (which process answered).
type processLoad struct {
	stop       chan struct{}
	wg         sync.WaitGroup
	sent       atomic.Int64
	failed     atomic.Int64
	mu         sync.Mutex
	generation map[string]int
	errs       []string
}

func startProcessLoad(urls []string, clientsPerURL int) *processLoad {
	l := &processLoad{stop: make(chan struct{}), generation: map[string]int{}}
	for _, url := range urls {
		for i := range clientsPerURL {
			client := &http.Client{Timeout: 10 * time.Second,
				Transport: &http.Transport{DisableKeepAlives: i%2 == 1, MaxIdleConnsPerHost: 1}}
			l.wg.Go(func() { l.run(client, url) })
		}
	}
	return l
}

func (l *processLoad) run(client *http.Client, url string) {
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; i < 50000 && time.Now().Before(deadline); i++ {
		select {
		case <-l.stop:
			return
		default:
		}
		l.sent.Add(1)
		resp, err := client.Get(url)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
			}
		}
		l.mu.Lock()
		if err != nil {
			l.failed.Add(1)
			if len(l.errs) < 5 {
				l.errs = append(l.errs, err.Error())
			}
		} else if g := resp.Header.Get("X-Generation"); g != "" {
			l.generation[g]++
		}
		l.mu.Unlock()
	}
}

func (l *processLoad) served(generation string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.generation[generation]
}

func (l *processLoad) finish() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// TestRollingRestartSharesPorts starts a replacement gateway process on the same
// listener, admin and metrics ports as a running one (as a DaemonSet with maxSurge
// does), stops the old one with SIGTERM under load, and requires that no request to
// the data plane or to the health endpoints fails.
func TestRollingRestartSharesPorts(t *testing.T) {
	v1 := echoBackend(t, "v1")
	port := freePort(t)
	adminAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	launch := func(generation string) *proc.Process {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "gateway.yaml"), gatewayYAML("gw", port))
		writeFile(t, filepath.Join(dir, "services.yaml"), serviceYAML("v1", "", v1))
		writeFile(t, filepath.Join(dir, "routes.yaml"), headerRoute(generation))
		return start(t, "standalone", "--config", dir, "--admin-addr", adminAddr, "--metrics-addr", metricsAddr,
			"--shutdown-delay", "200ms", "--drain-timeout", "10s")
	}
	old := launch("old")
	waitFor(t, 20*time.Second, func() bool {
		resp, err := http.Get("http://" + adminAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	load := startProcessLoad([]string{
		fmt.Sprintf("http://127.0.0.1:%d/", port),
		"http://" + adminAddr + "/healthz",
		"http://" + metricsAddr + "/healthz",
	}, 4)
	defer load.finish()
	waitFor(t, 10*time.Second, func() bool { return load.served("old") >= 100 })

	replacement := launch("new")
	waitFor(t, 20*time.Second, func() bool { return load.served("new") >= 100 })
	select {
	case <-replacement.Exited:
		t.Fatalf("the replacement exited while the old process ran: %v", replacement.Err)
	default:
	}
	if !old.Stop(20 * time.Second) {
		t.Fatal("the old process did not exit after SIGTERM")
	}
	if old.Err != nil {
		t.Fatalf("the old process exited with %v", old.Err)
	}
	afterStop := load.served("new")
	waitFor(t, 10*time.Second, func() bool { return load.served("new") >= afterStop+300 })
	load.finish()
	t.Logf("%d requests (%d answered by the old process, %d by the new), %d failed",
		load.sent.Load(), load.served("old"), load.served("new"), load.failed.Load())
	if n := load.failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed during the rolling restart; first errors: %q", n, load.sent.Load(), load.errs)
	}
}
