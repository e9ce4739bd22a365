package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchyard-dev/switchyard/bench/internal/benchkit"
)

// env owns everything a run starts: the temporary folder, the switchyard and
// redis-server processes and the in-process backends. close stops them all.
type env struct {
	dir      string
	bin      string
	stateDir bool
	gateways []*switchyard
	redises  []*redisServer
	backends []*backend
}

// buildSwitchyard builds the binary into the run's folder from the module root.
func buildSwitchyard(ctx context.Context, root, dir string) (string, error) {
	out := filepath.Join(dir, "switchyard")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/switchyard")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/switchyard: %w", err)
	}
	return out, nil
}

// supportsFlag reports whether `switchyard standalone` knows the flag, by reading
// its usage text.
func supportsFlag(bin, flag string) bool {
	out, _ := exec.Command(bin, "standalone", "-h").CombinedOutput()
	return bytes.Contains(out, []byte("-"+flag+" "))
}

// freePort returns a port free on 127.0.0.1 now, below the kernel's ephemeral range
// so that no outgoing connection takes it before the process meant to bind it does.
func freePort() (int, error) {
	for range 200 {
		port := 20000 + rand.IntN(12768)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		_ = l.Close()
		return port, nil
	}
	return 0, errors.New("no free port found in 200 tries")
}

// newBackend starts a backend the env stops at the end.
func (e *env) newBackend(name string, m mode) (*backend, error) {
	b, err := startBackend(name, m)
	if err != nil {
		return nil, err
	}
	e.backends = append(e.backends, b)
	return b, nil
}

// switchyard is one `switchyard standalone` process.
type switchyard struct {
	name      string
	cmd       *exec.Cmd
	adminAddr string
	// gatewayURL is the listener's base URL.
	gatewayURL string
	logPath    string
	exited     chan struct{}
}

// startSwitchyard writes m into a folder of its own and runs the standalone gateway
// on it (with redisURL, when not empty), then waits until the probe route serves.
func (e *env) startSwitchyard(ctx context.Context, name string, gatewayPort int, m *manifests, redisURL string) (*switchyard, error) {
	dir := filepath.Join(e.dir, name)
	if err := m.write(filepath.Join(dir, "config")); err != nil {
		return nil, err
	}
	adminPort, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &switchyard{name: name, adminAddr: fmt.Sprintf("127.0.0.1:%d", adminPort),
		gatewayURL: fmt.Sprintf("http://127.0.0.1:%d", gatewayPort),
		logPath:    filepath.Join(dir, "switchyard.log"), exited: make(chan struct{})}
	args := []string{"standalone", "--config", filepath.Join(dir, "config"), "--admin-addr", s.adminAddr,
		"--log-level", "warn", "--drain-timeout", "1s"}
	if redisURL != "" {
		args = append(args, "--redis-url", redisURL)
	}
	if e.stateDir {
		args = append(args, "--state-dir", filepath.Join(dir, "state"))
	}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	s.cmd = exec.Command(e.bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	e.gateways = append(e.gateways, s)
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	if err := s.waitServing(ctx, 15*time.Second); err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", name, err, benchkit.Tail(s.logPath, 20))
	}
	return s, nil
}

// waitServing waits for /readyz and then for a 200 from the probe route.
func (s *switchyard) waitServing(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for _, url := range []string{"http://" + s.adminAddr + "/readyz", s.gatewayURL + probePath} {
		for {
			select {
			case <-s.exited:
				return errors.New("switchyard exited")
			case <-ctx.Done():
				return ctx.Err()
			default:
			}
			if resp, err := client.Get(url); err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if reason := s.rejected(client); reason != "" {
				return fmt.Errorf("the configuration was rejected: %s", reason)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s did not answer 200 within %s", url, timeout)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// rejected returns why the gateway refused its configuration when it serves none,
// so that a manifest the binary does not accept fails at once rather than after the
// readiness timeout.
func (s *switchyard) rejected(client *http.Client) string {
	resp, err := client.Get("http://" + s.adminAddr + "/api/v1/config")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var view struct {
		Version   string `json:"version"`
		LastError string `json:"lastError"`
	}
	if json.NewDecoder(resp.Body).Decode(&view) != nil || view.Version != "" {
		return ""
	}
	return view.LastError
}

// stop sends SIGTERM and waits for the process, killing it after a few seconds.
func (s *switchyard) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// running reports whether the process is still up.
func (s *switchyard) running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// redisServer is a redis-server process on a loopback port, without persistence.
type redisServer struct {
	port int
	dir  string
	cmd  *exec.Cmd
}

// startRedis runs redis-server on a free loopback port.
func (e *env) startRedis() (*redisServer, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, errors.New("redis-server is not installed (Debian package redis-server)")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &redisServer{port: port, dir: filepath.Join(e.dir, "redis-"+strconv.Itoa(port))}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return nil, err
	}
	e.redises = append(e.redises, r)
	return r, r.start()
}

func (r *redisServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

func (r *redisServer) url() string { return "redis://" + r.addr() + "/0" }

// start runs the server on its port, empty, and waits for it to answer PING.
func (r *redisServer) start() error {
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--logfile", filepath.Join(r.dir, "redis.log"))
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if redisPing(r.addr()) == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.kill()
	return fmt.Errorf("redis-server on %s did not answer PING within 10 s", r.addr())
}

// kill stops the server with SIGKILL, as a crash would.
func (r *redisServer) kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	_ = r.cmd.Wait()
	r.cmd = nil
}

func redisPing(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

// close stops every process and backend the run started and removes its folder
// unless keep is set.
func (e *env) close(keep bool) {
	for _, s := range e.gateways {
		s.stop()
	}
	for _, r := range e.redises {
		r.kill()
	}
	for _, b := range e.backends {
		b.close()
	}
	if !keep {
		_ = os.RemoveAll(e.dir)
	}
}
