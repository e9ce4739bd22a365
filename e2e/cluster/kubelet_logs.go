package cluster

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxLogBytes bounds what the kubelet keeps of one container's output; older lines
// are dropped first, as log rotation would.
const maxLogBytes = 1 << 20

// logLine is one line of a container's output and when it was written.
type logLine struct {
	at   time.Time
	text string
}

// containerLog keeps the recent output of one container, line by line, and wakes
// readers that follow it. It is the io.Writer the container's servers log to.
type containerLog struct {
	mu      sync.Mutex
	limit   int
	lines   []logLine
	size    int
	dropped int // lines dropped from the front so far, so that positions stay stable
	partial []byte
	changed chan struct{}
	closed  bool
}

func newContainerLog(limit int) *containerLog {
	return &containerLog{limit: limit, changed: make(chan struct{})}
}

// Write splits p into lines, keeping an unfinished last line until its end arrives.
func (l *containerLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return len(p), nil
	}
	now := time.Now()
	data := append(l.partial, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		l.add(now, string(data[:i]))
		data = data[i+1:]
	}
	l.partial = append([]byte(nil), data...)
	if len(l.partial) > l.limit {
		l.add(now, string(l.partial))
		l.partial = nil
	}
	l.wake()
	return len(p), nil
}

// Close ends the log: followers finish once they have read everything.
func (l *containerLog) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if len(l.partial) > 0 {
		l.add(time.Now(), string(l.partial))
		l.partial = nil
	}
	l.closed = true
	l.wake()
}

func (l *containerLog) add(at time.Time, text string) {
	l.lines = append(l.lines, logLine{at: at, text: text})
	l.size += len(text) + 1
	for l.size > l.limit && len(l.lines) > 1 {
		l.size -= len(l.lines[0].text) + 1
		l.lines = l.lines[1:]
		l.dropped++
	}
}

func (l *containerLog) wake() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// from returns the lines at position next and after, the position after them, a
// channel closed at the next change, and whether the log has ended.
func (l *containerLog) from(next int) ([]logLine, int, <-chan struct{}, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := max(next-l.dropped, 0)
	lines := append([]logLine(nil), l.lines[min(start, len(l.lines)):]...)
	return lines, l.dropped + len(l.lines), l.changed, l.closed
}

// logQuery holds the kubelet API's containerLogs parameters.
type logQuery struct {
	since      time.Time
	tail       int // -1 for all lines
	limitBytes int // 0 for no limit
	timestamps bool
	follow     bool
}

// parseLogQuery reads the parameters the API server passes on from PodLogOptions.
func parseLogQuery(q url.Values, now time.Time) (logQuery, error) {
	out := logQuery{tail: -1}
	var err error
	flag := func(name string, dst *bool) {
		if v := q.Get(name); v != "" && err == nil {
			if *dst, err = strconv.ParseBool(v); err != nil {
				err = fmt.Errorf("%s=%q is not a boolean", name, v)
			}
		}
	}
	number := func(name string, dst *int) {
		if v := q.Get(name); v != "" && err == nil {
			if *dst, err = strconv.Atoi(v); err != nil || *dst < 0 {
				err = fmt.Errorf("%s=%q is not a non-negative number", name, v)
			}
		}
	}
	var previous bool
	var sinceSeconds int
	flag("timestamps", &out.timestamps)
	flag("follow", &out.follow)
	flag("previous", &previous)
	number("tailLines", &out.tail)
	number("limitBytes", &out.limitBytes)
	number("sinceSeconds", &sinceSeconds)
	if err != nil {
		return out, err
	}
	if previous {
		return out, errors.New("containers here never restart, so there is no previous container")
	}
	if v := q.Get("sinceTime"); v != "" {
		if out.since, err = time.Parse(time.RFC3339, v); err != nil {
			return out, fmt.Errorf("sinceTime=%q is not an RFC 3339 time", v)
		}
	} else if sinceSeconds > 0 {
		out.since = now.Add(-time.Duration(sinceSeconds) * time.Second)
	}
	return out, nil
}

// selectLines applies the time and tail filters, in the kubelet's order.
func selectLines(lines []logLine, q logQuery) []logLine {
	var kept []logLine
	for _, line := range lines {
		if !line.at.Before(q.since) {
			kept = append(kept, line)
		}
	}
	if q.tail >= 0 && len(kept) > q.tail {
		kept = kept[len(kept)-q.tail:]
	}
	return kept
}

// logWriter writes lines in the kubelet's format and stops at the byte limit.
type logWriter struct {
	w       http.ResponseWriter
	q       logQuery
	written int
}

// write reports false once the byte limit is reached or the client is gone.
func (lw *logWriter) write(lines []logLine) bool {
	var buf bytes.Buffer
	for _, line := range lines {
		if lw.q.timestamps {
			buf.WriteString(line.at.UTC().Format(time.RFC3339Nano))
			buf.WriteByte(' ')
		}
		buf.WriteString(line.text)
		buf.WriteByte('\n')
	}
	out, full := buf.Bytes(), false
	if lw.q.limitBytes > 0 && lw.written+len(out) >= lw.q.limitBytes {
		out, full = out[:lw.q.limitBytes-lw.written], true
	}
	n, err := lw.w.Write(out)
	lw.written += n
	if f, ok := lw.w.(http.Flusher); ok {
		f.Flush()
	}
	return err == nil && !full
}

// serveContainerLogs answers GET /containerLogs/{namespace}/{pod}/{container}.
func (k *Kubelet) serveContainerLogs(w http.ResponseWriter, r *http.Request) {
	q, err := parseLogQuery(r.URL.Query(), time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ns, pod, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	logs, ok := k.lookup(ns, pod, container)
	if !ok {
		http.Error(w, fmt.Sprintf("container %q in pod %s/%s is not running on node %s", container, ns, pod, k.node),
			http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	lines, next, changed, closed := logs.from(0)
	lw := &logWriter{w: w, q: q}
	if !lw.write(selectLines(lines, q)) || !q.follow {
		return
	}
	for !closed {
		select {
		case <-r.Context().Done():
			return
		case <-changed:
		}
		lines, next, changed, closed = logs.from(next)
		if !lw.write(selectLines(lines, logQuery{since: q.since, tail: -1})) {
			return
		}
	}
}

// serveAPI serves the kubelet API on the node's address over HTTPS with a
// self-signed certificate (the API server, given no kubelet CA, does not verify
// it) and returns the function that stops it.
func (k *Kubelet) serveAPI() (func(), error) {
	cert, err := selfSignedCert(k.node, net.ParseIP(k.NodeIP()))
	if err != nil {
		return nil, fmt.Errorf("making the kubelet API certificate: %w", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(k.NodeIP(), strconv.Itoa(KubeletPort)))
	if err != nil {
		return nil, fmt.Errorf("listening for the kubelet API: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", k.serveContainerLogs)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ServeTLS(ln, "", "") }()
	return func() {
		// Close rather than Shutdown: followed logs would otherwise hold it open.
		_ = srv.Close()
		<-done
	}, nil
}

// selfSignedCert makes a day-long serving certificate for ip.
func selfSignedCert(name string, ip net.IP) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{ip}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// tail returns the log's last lines, at most about n bytes of them.
func (l *containerLog) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var lines []string
	size := 0
	for i := len(l.lines) - 1; i >= 0 && size < n; i-- {
		lines = append(lines, l.lines[i].text)
		size += len(l.lines[i].text) + 1
	}
	slices.Reverse(lines)
	return strings.Join(lines, "\n")
}
