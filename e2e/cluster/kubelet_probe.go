package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Probe timing. The kubelet probes more often than a probe's periodSeconds asks
// (tests should not wait out production periods): every readyProbeInterval until a
// container is first ready, then every probeInterval or the period, whichever is
// shorter. The success and failure thresholds are honoured as written.
const (
	readyProbeInterval = 100 * time.Millisecond
	probeInterval      = time.Second
)

// probeSpec is a resolved readiness probe: an HTTP GET or a TCP connection to a
// fixed address.
type probeSpec struct {
	// url is set for HTTP probes; addr for TCP probes.
	url     string
	headers http.Header
	addr    string
	// host overrides the Host header of HTTP probes.
	host              string
	period, timeout   time.Duration
	success, failures int
}

// resolveProbe turns a container's probe into a probeSpec at the Pod's address ip
// (or the probe's own host), resolving named ports from the container's ports. Exec
// and gRPC probes cannot run here: they yield nil, so the container counts as ready
// once running.
func resolveProbe(c *corev1.Container, p *corev1.Probe, ip string) (*probeSpec, error) {
	if p == nil || (p.HTTPGet == nil && p.TCPSocket == nil) {
		return nil, nil
	}
	spec := &probeSpec{
		period:   seconds(p.PeriodSeconds, 10),
		timeout:  seconds(p.TimeoutSeconds, 1),
		success:  int(max(p.SuccessThreshold, 1)),
		failures: int(p.FailureThreshold),
	}
	if spec.failures <= 0 {
		spec.failures = 3
	}
	if g := p.HTTPGet; g != nil {
		port, err := containerPort(c, g.Port)
		if err != nil {
			return nil, err
		}
		host := ip
		if g.Host != "" {
			host = g.Host
		}
		scheme := "http"
		if g.Scheme == corev1.URISchemeHTTPS {
			scheme = "https"
		}
		path := g.Path
		if path == "" || path[0] != '/' {
			path = "/" + path
		}
		spec.url = scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + path
		spec.headers = http.Header{}
		for _, h := range g.HTTPHeaders {
			if http.CanonicalHeaderKey(h.Name) == "Host" {
				spec.host = h.Value
				continue
			}
			spec.headers.Add(h.Name, h.Value)
		}
		return spec, nil
	}
	port, err := containerPort(c, p.TCPSocket.Port)
	if err != nil {
		return nil, err
	}
	host := ip
	if p.TCPSocket.Host != "" {
		host = p.TCPSocket.Host
	}
	spec.addr = net.JoinHostPort(host, strconv.Itoa(port))
	return spec, nil
}

func seconds(v int32, def int) time.Duration {
	if v <= 0 {
		return time.Duration(def) * time.Second
	}
	return time.Duration(v) * time.Second
}

// containerPort resolves a probe's port: a number, or the name of one of the
// container's ports.
func containerPort(c *corev1.Container, port intstr.IntOrString) (int, error) {
	if port.Type == intstr.Int {
		if port.IntVal < 1 || port.IntVal > 65535 {
			return 0, fmt.Errorf("port %d is out of range", port.IntVal)
		}
		return int(port.IntVal), nil
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("the container has no port named %q", port.StrVal)
}

// interval is how long to wait before probing again.
func (p *probeSpec) interval(ready bool) time.Duration {
	if !ready {
		return readyProbeInterval
	}
	return min(p.period, probeInterval)
}

// run probes once: an HTTP status from 200 to 399 succeeds, as does a TCP
// connection that opens. HTTPS probes do not verify the certificate, as a kubelet's
// do not.
func (p *probeSpec) run(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	if p.addr != "" {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", p.addr)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return false
	}
	req.Header = p.headers.Clone()
	req.Header.Set("User-Agent", "kube-probe/harness")
	if p.host != "" {
		req.Host = p.host
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}

// probeClient sends probes: no proxy, no kept connections (each probe is a fresh
// connection, as a kubelet's), no certificate checks, and no following of redirects
// to other hosts' content (a redirect's status counts).
var probeClient = &http.Client{
	Transport: &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // kubelets do not verify probe targets
	},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}
