package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/bench/internal/benchkit"
)

// Target names, as printed.
const (
	targetDirect = "direct"
	targetRelay  = "l4-relay"
	// targetFloor is bench/floor, the least an HTTP/1.1 proxy in Go does per
	// request; it runs in the reference and pinned scenarios only.
	targetFloor      = "l7-floor"
	targetSwitchyard = "switchyard"
	targetBare       = "switchyard-bare"
	// targetBareHandler is switchyard-bare with every request served by its rule's
	// handler (--forwarding handler), which tells what the raw forwarding path
	// gains; it runs in the reference and pinned scenarios only.
	targetBareHandler = "switchyard-bare-handler"
	targetPolicies    = "switchyard-policies"
	// targetPoliciesHandler is switchyard-policies with every request served by its
	// rule's handler, which tells what the raw forwarding path gains under policies;
	// it runs in the policies scenario only.
	targetPoliciesHandler = "switchyard-policies-handler"
	// targetOneRoute is switchyard with one route that takes every request, given
	// the 10,000-route scenario's request in its rounds, so that what the routes
	// cost shows as a ratio within one run; it runs in that scenario only.
	targetOneRoute = "switchyard-one-route"
	targetNginx    = "nginx"
	targetHAProxy  = "haproxy"
	targetCaddy    = "caddy"
	// targetH2Prefix starts the name of the run of Switchyard with the HTTP/2 server
	// it does not use by default ("switchyard-h2fast" or "switchyard-h2std").
	targetH2Prefix = "switchyard-h2"
)

// peers are the targets of a scenario that compares every peer, in the order of
// each round.
var peers = []string{targetDirect, targetRelay, targetSwitchyard, targetNginx, targetHAProxy, targetCaddy}

// target is something a scenario sends load to: the backend itself, or a process in
// front of it.
type target struct {
	name string
	// port is where it listens on 127.0.0.1.
	port int
	// proc is the process whose CPU time counts; nil for direct.
	proc *proc
}

// binaries are the programs the run built or found.
type binaries struct {
	switchyard, relay, floor, backend string
	// observeFlags is set when `switchyard standalone` has --route-metrics and
	// --access-log.
	observeFlags bool
	// http2Alt is the HTTP/2 server (--http2) the binary does not use by default,
	// "" when it has no choice.
	http2Alt string
	// forwardingFlag is set when `switchyard standalone` has --forwarding.
	forwardingFlag bool
}

// startTarget starts the named target in front of the backend on backendPort with
// s's table and protocol, pinned to cpus when not empty, and returns once it
// answers the benchmark request correctly.
func startTarget(ctx context.Context, name string, bins binaries, s peerSetup, cpus string, size int, ports map[int]bool) (*target, error) {
	if name == targetDirect {
		t := &target{name: name, port: s.Backend}
		return t, verify(ctx, t, s, size, false)
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort(ports)
	if err != nil {
		return nil, err
	}
	s.Listen = port
	argv, env, err := peerCommand(name, bins, s, ports)
	if err != nil {
		return nil, err
	}
	argv, env = append(slices.Clone(s.Wrap), argv...), append(env, s.Env...)
	p, err := startProc(name, s.Dir, cpus, env, argv...)
	if err != nil {
		return nil, err
	}
	t := &target{name: name, port: port, proc: p}
	err = waitListening(ctx, p, port, 60*time.Second)
	if err == nil {
		err = verify(ctx, t, s, size, withPolicies(name))
	}
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("%s: %w\n%s", name, err, benchkit.Tail(p.logPath, 15))
	}
	return t, nil
}

// peerCommand writes the target's configuration into s.Dir and returns the command
// that serves it, with extra environment variables.
func peerCommand(name string, bins binaries, s peerSetup, ports map[int]bool) (argv, env []string, err error) {
	write := func(file, content string) (string, error) {
		path := filepath.Join(s.Dir, file)
		return path, os.WriteFile(path, []byte(content), 0o644)
	}
	switch name {
	case targetRelay:
		return []string{bins.relay, "-listen", listenAddr(s.Listen), "-upstream", listenAddr(s.Backend)}, nil, nil
	case targetFloor:
		return []string{bins.floor, "-listen", listenAddr(s.Listen), "-upstream", listenAddr(s.Backend)}, nil, nil
	case targetNginx:
		path, err := write("nginx.conf", nginxConfig(s))
		return []string{"nginx", "-e", filepath.Join(s.Dir, "error.log"), "-p", s.Dir, "-c", path, "-g", "daemon off;"}, nil, err
	case targetHAProxy:
		cfg, maps := haproxyConfig(s)
		for file, content := range maps {
			if _, err := write(file, content); err != nil {
				return nil, nil, err
			}
		}
		path, err := write("haproxy.cfg", cfg)
		return []string{"haproxy", "-db", "-f", path}, nil, err
	case targetCaddy:
		path, err := write("Caddyfile", caddyConfig(s))
		// Caddy keeps its data and autosaved configuration under these folders.
		env = []string{"HOME=" + s.Dir, "XDG_DATA_HOME=" + s.Dir, "XDG_CONFIG_HOME=" + s.Dir}
		return []string{"caddy", "run", "--config", path, "--adapter", "caddyfile"}, env, err
	case targetSwitchyard, targetBare, targetBareHandler, targetPolicies, targetPoliciesHandler, targetOneRoute:
		return switchyardCommand(name, bins, s, ports)
	}
	if bins.http2Alt != "" && name == targetH2Prefix+bins.http2Alt {
		return switchyardCommand(name, bins, s, ports)
	}
	return nil, nil, fmt.Errorf("unknown target %q", name)
}

// switchyardCommand writes the manifests and returns the standalone command. The
// bare run has no policies, route metrics and access log off; the policies run has
// the typical policy set, route metrics in full and an access log to a file; the
// plain run keeps the binary's defaults. Binaries without the observability flags
// run with their built-in behaviour, which the report says.
func switchyardCommand(name string, bins binaries, s peerSetup, ports map[int]bool) ([]string, []string, error) {
	manifests, err := switchyardManifests(s, withPolicies(name))
	if err != nil {
		return nil, nil, err
	}
	configDir := filepath.Join(s.Dir, "config")
	if err := os.MkdirAll(configDir, 0o755); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(configDir, "gateway.yaml"), []byte(manifests), 0o644); err != nil {
		return nil, nil, err
	}
	adminPort, err := freePort(ports)
	if err != nil {
		return nil, nil, err
	}
	argv := []string{bins.switchyard, "standalone", "--config", configDir, "--admin-addr", listenAddr(adminPort),
		"--log-level", "warn", "--drain-timeout", "1s"}
	if bins.http2Alt != "" && name == targetH2Prefix+bins.http2Alt {
		argv = append(argv, "--http2", bins.http2Alt)
	}
	if bins.observeFlags {
		switch name {
		case targetBare, targetBareHandler:
			argv = append(argv, "--route-metrics", "off", "--access-log", "off")
		case targetPolicies, targetPoliciesHandler:
			argv = append(argv, "--route-metrics", "full", "--access-log", filepath.Join(s.Dir, "access.log"))
		}
	}
	if name == targetBareHandler || name == targetPoliciesHandler {
		argv = append(argv, "--forwarding", "handler")
	}
	return argv, nil, nil
}

// withPolicies reports whether a target runs with the typical policy set.
func withPolicies(name string) bool { return name == targetPolicies || name == targetPoliciesHandler }

func listenAddr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// waitListening waits until the port accepts connections, failing early when the
// process exits.
func waitListening(ctx context.Context, p *proc, port int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if !p.running() {
			return errors.New("exited before listening")
		}
		if conn, err := net.DialTimeout("tcp", listenAddr(port), time.Second); err == nil {
			_ = conn.Close()
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %d after %s", port, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// verify checks that the target answers the benchmark request with the backend's
// body (retrying for a while, as a gateway may listen before its routes are in),
// that a path no route matches does not reach the backend, and, for the policies
// run, that the rate limit is in force (its RateLimit-Limit header).
func verify(ctx context.Context, t *target, s peerSetup, size int, wantPolicies bool) error {
	client := probeClient(s.HTTP2)
	defer client.CloseIdleConnections()
	base := "http://" + listenAddr(t.port)
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for {
		status, header, n, err := fetch(ctx, client, base+s.Table.Path, s.Table.Host)
		switch {
		case err != nil:
			last = err
		case status != http.StatusOK || n != size:
			last = fmt.Errorf("benchmark request answered %d with %d body bytes, want 200 with %d", status, n, size)
		case wantPolicies && header.Get("RateLimit-Limit") == "":
			last = errors.New("the policy set is not in force: no RateLimit-Limit header")
		default:
			last = nil
		}
		if last == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if last != nil || s.Table.MissPath == "" || t.name == targetDirect || t.name == targetRelay || t.name == targetFloor {
		return last
	}
	status, _, n, err := fetch(ctx, client, base+s.Table.MissPath, s.Table.Host)
	if err == nil && status == http.StatusOK && n == size {
		return fmt.Errorf("%s reached the backend though no route matches it", s.Table.MissPath)
	}
	return nil
}

// probeClient speaks HTTP/1.1, or HTTP/2 with prior knowledge when h2 is set.
func probeClient(h2 bool) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	if h2 {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// fetch GETs url with the Host header host (when not empty) and returns the status,
// headers and body length.
func fetch(ctx context.Context, client *http.Client, url, host string) (int, http.Header, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, 0, err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header, int(n), err
}

// flagSupported reports whether `switchyard standalone` knows the flag, by reading
// its usage text.
func flagSupported(bin, flag string) bool {
	out, _ := execOutput(bin, "standalone", "-h")
	return strings.Contains(out, "-"+flag+" ")
}

// http2Alternative returns the HTTP/2 server the binary's --http2 flag offers
// besides its default, which its help names ("..., else std"); "" without the flag.
func http2Alternative(bin string) string {
	out, _ := execOutput(bin, "standalone", "-h")
	return alternativeIn(out)
}

// alternativeIn reads the help text of `switchyard standalone` for http2Alternative.
func alternativeIn(help string) string {
	_, rest, found := strings.Cut(help, "$SWITCHYARD_HTTP2, else ")
	if !found || !strings.Contains(help, "-http2 ") {
		return ""
	}
	switch {
	case strings.HasPrefix(rest, "std"):
		return "fast"
	case strings.HasPrefix(rest, "fast"):
		return "std"
	}
	return ""
}
