package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/switchyard-dev/switchyard/e2e/echo"
)

// The ports the conformance echo server listens on when its environment names none.
const (
	defaultHTTPPort  = 3000
	defaultH2CPort   = 3001
	defaultHTTPSPort = 8443
)

// containerPlan is what the kubelet runs for one container: echo servers that report
// the container's identity, or, for a container of our image, our own binary.
type containerPlan struct {
	container string
	options   echo.Options
	servers   []serverPlan
	// process is set for a container of our image (see IsOurImage); servers is then
	// empty.
	process *processPlan
	// readiness is the container's readiness probe; nil means ready once running.
	readiness *probeSpec
}

// serverPlan is one listening port, cleartext (HTTP/1.1 and h2c) or, with tls, HTTPS.
type serverPlan struct {
	port int
	tls  *tls.Config
}

// mount maps a container's mountPath to the folder that holds the volume's files.
type mount struct {
	mountPath, hostPath string
}

// prepare materialises the Pod's volumes under dir and works out, from each
// container's resolved environment and ports, what to run at ip: our own binary for
// containers of our image, echo servers for the others.
func (k *Kubelet) prepare(ctx context.Context, pod *corev1.Pod, ip, dir string) ([]containerPlan, error) {
	volumes, err := k.materialiseVolumes(ctx, pod, ip, dir)
	if err != nil {
		return nil, err
	}
	var plans []containerPlan
	firstEcho, serving := -1, false
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		plan, err := k.planContainer(ctx, pod, c, ip, dir, volumes)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", c.Name, err)
		}
		if plan.process == nil && firstEcho < 0 {
			firstEcho = len(plans)
		}
		serving = serving || len(plan.servers) > 0
		plans = append(plans, plan)
	}
	// A Pod whose echo containers declare nothing to serve still answers on the echo
	// server's default port, so that a Service in front of it has something to reach.
	if !serving && firstEcho >= 0 {
		plans[firstEcho].servers = []serverPlan{{port: defaultHTTPPort}}
	}
	return plans, nil
}

// planContainer resolves one container's environment, mounts and readiness probe,
// and what runs for it.
func (k *Kubelet) planContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, ip, dir string,
	volumes map[string]string) (containerPlan, error) {
	env, err := k.containerEnv(ctx, pod, c, ip)
	if err != nil {
		return containerPlan{}, err
	}
	mounts := containerMounts(c, volumes)
	readiness, err := resolveProbe(c, c.ReadinessProbe, ip)
	if err != nil {
		return containerPlan{}, fmt.Errorf("readiness probe: %w", err)
	}
	plan := containerPlan{container: c.Name, readiness: readiness}
	if IsOurImage(c.Image) {
		plan.process, err = k.planProcess(pod, c, env, mounts, ip, dir)
		return plan, err
	}
	plan.options = echoIdentity(pod, env)
	plan.servers, err = containerServers(c, env, mounts)
	return plan, err
}

// echoIdentity is what the echo server reports about itself: the variables the
// conformance echo server reads, and the Pod's own name and namespace where those
// are not set.
func echoIdentity(pod *corev1.Pod, env map[string]string) echo.Options {
	opts := echo.Options{Pod: pod.Name, Namespace: pod.Namespace,
		Ingress: env["INGRESS_NAME"], Service: env["SERVICE_NAME"]}
	if v, ok := env["POD_NAME"]; ok {
		opts.Pod = v
	}
	if v, ok := env["NAMESPACE"]; ok {
		opts.Namespace = v
	}
	// ECHO_FAIL_STATUS makes a Pod answer every request with that status, for tests
	// that need one version of a service to fail; a value that is not a status code
	// is ignored.
	if code, err := strconv.Atoi(env["ECHO_FAIL_STATUS"]); err == nil && code >= 100 && code <= 599 {
		opts.FailStatus = code
	}
	return opts
}

// isEchoServer reports whether a container behaves as the conformance echo server:
// its image, or an environment that only that server reads, says so.
func isEchoServer(c *corev1.Container, env map[string]string) bool {
	if strings.Contains(c.Image, "echo-basic") {
		return true
	}
	for _, name := range []string{"HTTP_PORT", "H2C_PORT", "HTTPS_PORT", "TLS_SERVER_CERT"} {
		if _, ok := env[name]; ok {
			return true
		}
	}
	return false
}

// containerServers lists the ports a container serves. The conformance echo server
// listens on HTTP_PORT and H2C_PORT, and on HTTPS_PORT with the certificate that
// TLS_SERVER_CERT and TLS_SERVER_PRIVKEY name; any other image is taken to serve
// echo on each declared TCP port. UDP and SCTP ports are not served.
func containerServers(c *corev1.Container, env map[string]string, mounts []mount) ([]serverPlan, error) {
	var servers []serverPlan
	taken := map[int]bool{}
	add := func(port int, cfg *tls.Config) {
		if !taken[port] {
			taken[port] = true
			servers = append(servers, serverPlan{port: port, tls: cfg})
		}
	}
	if isEchoServer(c, env) {
		for _, p := range []struct {
			name string
			def  int
		}{{"HTTP_PORT", defaultHTTPPort}, {"H2C_PORT", defaultH2CPort}} {
			port, err := envPort(env, p.name, p.def)
			if err != nil {
				return nil, err
			}
			add(port, nil)
		}
		if env["TLS_SERVER_CERT"] != "" && env["TLS_SERVER_PRIVKEY"] != "" {
			cfg, err := serverTLS(env, mounts)
			if err != nil {
				return nil, err
			}
			port, err := envPort(env, "HTTPS_PORT", defaultHTTPSPort)
			if err != nil {
				return nil, err
			}
			add(port, cfg)
		}
	}
	for _, p := range c.Ports {
		if p.Protocol == "" || p.Protocol == corev1.ProtocolTCP {
			add(int(p.ContainerPort), nil)
		}
	}
	return servers, nil
}

// envPort reads a port number from the environment, def when unset.
func envPort(env map[string]string, name string, def int) (int, error) {
	v, ok := env[name]
	if !ok || v == "" {
		return def, nil
	}
	port, err := strconv.Atoi(v)
	if err != nil || port < 1 || port > 65535 {
		return 0, fmt.Errorf("%s=%q is not a port number", name, v)
	}
	return port, nil
}

// serverTLS loads the serving certificate the environment names, reading the files
// from the container's mounted volumes, and the optional client CA bundle: like the
// conformance echo server, it then checks client certificates that are offered but
// does not require one.
func serverTLS(env map[string]string, mounts []mount) (*tls.Config, error) {
	certFile, keyFile := resolvePath(env["TLS_SERVER_CERT"], mounts), resolvePath(env["TLS_SERVER_PRIVKEY"], mounts)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading the serving certificate: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	if caFile := env["TLS_CLIENT_CACERTS"]; caFile != "" {
		pem, err := os.ReadFile(resolvePath(caFile, mounts))
		if err != nil {
			return nil, fmt.Errorf("reading the client CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the client CA bundle %s holds no PEM certificate", caFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

// containerMounts lists where the container sees the volumes the kubelet wrote.
// Mounts of volumes the kubelet does not materialise are left out.
func containerMounts(c *corev1.Container, volumes map[string]string) []mount {
	var mounts []mount
	for _, m := range c.VolumeMounts {
		host, ok := volumes[m.Name]
		if !ok {
			continue
		}
		if m.SubPath != "" && filepath.IsLocal(m.SubPath) {
			host = filepath.Join(host, m.SubPath)
		}
		mounts = append(mounts, mount{mountPath: filepath.Clean(m.MountPath), hostPath: host})
	}
	return mounts
}

// resolvePath turns a path as the container sees it into the file the kubelet wrote,
// through the most specific mount that holds it; other paths are used as given.
func resolvePath(p string, mounts []mount) string {
	p = filepath.Clean(p)
	best := -1
	for i, m := range mounts {
		if (p == m.mountPath || strings.HasPrefix(p, strings.TrimSuffix(m.mountPath, "/")+"/")) &&
			(best < 0 || len(m.mountPath) > len(mounts[best].mountPath)) {
			best = i
		}
	}
	if best < 0 {
		return p
	}
	rest := strings.TrimPrefix(p, mounts[best].mountPath)
	return filepath.Join(mounts[best].hostPath, rest)
}
