// Package echo is a test backend that answers every request with a JSON description
// of the request as it arrived: the behaviour of the Gateway API conformance echo
// server, so that tests can see exactly what a gateway forwarded.
//
// Besides echoing, it answers /status/NNN with status NNN, waits before answering when
// the query has delay=<duration>, sets the response headers that the
// X-Echo-Set-Header request header lists, and echoes WebSocket messages. It speaks
// HTTP/1.1 and cleartext HTTP/2 (h2c with prior knowledge) on one port.
package echo

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// MaxDelay bounds the delay a request may ask for, so that a mistyped query cannot
// hold a connection for long.
const MaxDelay = 30 * time.Second

// Options describe where the backend runs; they are reported in every reply.
type Options struct {
	// Pod, Namespace, Ingress and Service name this backend instance.
	Pod, Namespace, Ingress, Service string
	// HTTPPort is the port the backend listens on.
	HTTPPort int
	// FailStatus, when non-zero, answers every request except /health with this
	// status code and a JSON error body, so that tests can make one version of a
	// service fail (a canary that must be rolled back, say).
	FailStatus int
	// Logger receives errors; nil means slog.Default().
	Logger *slog.Logger
	// LogWriter receives one line per request; nil means os.Stdout.
	LogWriter io.Writer
	// TLSConfig, when set, makes Serve speak TLS with it (HTTP/1.1 and HTTP/2 by
	// ALPN) instead of cleartext HTTP/1.1 and h2c. It must hold a certificate.
	TLSConfig *tls.Config
}

// Reply is the JSON body of an echo answer. Its field names are those of the Gateway
// API conformance echo server, which conformance tests decode.
type Reply struct {
	// Path is the request target as received: path and query.
	Path string `json:"path"`
	// Host is the Host header (HTTP/1.1) or :authority (HTTP/2).
	Host string `json:"host"`
	// Method is the request method.
	Method string `json:"method"`
	// Proto is the protocol, such as "HTTP/1.1" or "HTTP/2.0".
	Proto string `json:"proto"`
	// Headers are the request headers with canonical names; Host is not among them.
	Headers map[string][]string `json:"headers"`

	Namespace string `json:"namespace"`
	Ingress   string `json:"ingress"`
	Service   string `json:"service"`
	Pod       string `json:"pod"`
	// HTTPPort is the port the request arrived on, as a string like the conformance
	// echo server's (the suite decodes it as one).
	HTTPPort string `json:"httpPort,omitempty"`

	// TLS describes the connection when the request came over TLS.
	TLS *TLSInfo `json:"tls,omitempty"`
	// SNI is the server name the client sent, when over TLS.
	SNI string `json:"sni"`
}

// TLSInfo describes a TLS connection.
type TLSInfo struct {
	// Version is "TLSv1.2" or "TLSv1.3" (and older names for older versions).
	Version string `json:"version"`
	// PeerCertificates are the client's certificates, PEM-encoded, leaf first.
	PeerCertificates []string `json:"peerCertificates,omitempty"`
	// ServerName is the SNI the client sent.
	ServerName string `json:"serverName"`
	// NegotiatedProtocol is the ALPN protocol, if any.
	NegotiatedProtocol string `json:"negotiatedProtocol,omitempty"`
	// CipherSuite is the cipher suite's standard name.
	CipherSuite string `json:"cipherSuite"`
}

// statusPath matches the /status/NNN endpoint.
var statusPath = regexp.MustCompile(`^/status/(\d{3})$`)

// Handler returns the echo backend's handler.
func Handler(opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.LogWriter == nil {
		opts.LogWriter = os.Stdout
	}
	retries := newRetrySimulator()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The line is written whole in one call, so concurrent requests do not
		// interleave within a line.
		fmt.Fprintf(opts.LogWriter, "Echoing back request made to %s to client (%s)\n", r.RequestURI, r.RemoteAddr)
		switch {
		case r.URL.Path == "/health":
			_, _ = io.WriteString(w, "OK")
		case opts.FailStatus != 0:
			writeError(w, opts.FailStatus, "this backend is set to fail every request")
		case strings.HasPrefix(r.URL.Path, "/status/"):
			m := statusPath.FindStringSubmatch(r.URL.Path)
			if m == nil {
				writeError(w, http.StatusBadRequest, "the status path is /status/NNN with a three-digit code")
				return
			}
			code, _ := strconv.Atoi(m[1])
			setEchoHeaders(w, r.Header)
			w.WriteHeader(code)
		case isRetryPath(r.URL.Path):
			retries.serve(w, r, opts)
		case isWebSocketUpgrade(r):
			serveWebSocket(w, r, opts.Logger)
		default:
			echo(w, r, opts)
		}
	})
}

// echo answers with the Reply for r, after the delay the query asks for.
func echo(w http.ResponseWriter, r *http.Request, opts Options) {
	if delay := r.URL.Query().Get("delay"); delay != "" {
		d, err := time.ParseDuration(delay)
		if err != nil || d < 0 || d > MaxDelay {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("delay %q must be a duration between 0 and %v", delay, MaxDelay))
			return
		}
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-r.Context().Done():
			// The client is gone; nobody is left to answer.
			return
		}
	}
	body, err := json.MarshalIndent(newReply(r, opts), "", " ")
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	setEchoHeaders(w, r.Header)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(body)
}

func newReply(r *http.Request, opts Options) Reply {
	headers := make(map[string][]string, len(r.Header))
	for name, values := range r.Header {
		headers[http.CanonicalHeaderKey(name)] = append(headers[http.CanonicalHeaderKey(name)], values...)
	}
	reply := Reply{
		Path: r.RequestURI, Host: r.Host, Method: r.Method, Proto: r.Proto, Headers: headers,
		Namespace: opts.Namespace, Ingress: opts.Ingress, Service: opts.Service, Pod: opts.Pod,
	}
	if opts.HTTPPort != 0 {
		reply.HTTPPort = strconv.Itoa(opts.HTTPPort)
	}
	if r.TLS != nil {
		reply.TLS = tlsInfo(r.TLS)
		reply.SNI = r.TLS.ServerName
	}
	return reply
}

func tlsInfo(cs *tls.ConnectionState) *TLSInfo {
	info := &TLSInfo{
		Version:            tlsVersionName(cs.Version),
		ServerName:         cs.ServerName,
		NegotiatedProtocol: cs.NegotiatedProtocol,
		CipherSuite:        tls.CipherSuiteName(cs.CipherSuite),
	}
	for _, cert := range cs.PeerCertificates {
		info.PeerCertificates = append(info.PeerCertificates,
			string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})))
	}
	return info
}

// tlsVersionName spells a TLS version the way OpenSSL-style tools do, as the
// conformance tests expect.
func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS10:
		return "TLSv1.0"
	}
	return fmt.Sprintf("0x%04x", v)
}

// setEchoHeaders sets the response headers that X-Echo-Set-Header asks for, a
// comma-separated list of "Name:Value". Names keep the case they are given in, so
// that tests can check how a gateway treats header case; a name listed twice gets its
// values joined by commas.
func setEchoHeaders(w http.ResponseWriter, request http.Header) {
	for _, list := range request.Values("X-Echo-Set-Header") {
		for _, pair := range strings.Split(list, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(pair), ":")
			name, value = strings.TrimSpace(name), strings.TrimSpace(value)
			if name == "" {
				continue
			}
			if existing := w.Header()[name]; len(existing) > 0 {
				existing[0] += "," + value
				continue
			}
			w.Header()[name] = []string{value}
		}
	}
}

// writeError answers with a JSON {"message": ...} body.
func writeError(w http.ResponseWriter, status int, message string) {
	body, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{message})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// ListenAndServe serves the echo backend on addr, over HTTP/1.1 and h2c, until ctx
// is done; then it stops accepting connections and waits up to ten seconds for
// requests in flight.
func ListenAndServe(ctx context.Context, addr string, opts Options) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return Serve(ctx, ln, opts)
}

// Serve is ListenAndServe on an existing listener, which it closes. With
// opts.TLSConfig it serves HTTPS instead.
func Serve(ctx context.Context, ln net.Listener, opts Options) error {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	if opts.TLSConfig != nil {
		protocols.SetHTTP2(true)
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	srv := &http.Server{
		Handler:           Handler(opts),
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	if opts.Logger != nil {
		srv.ErrorLog = slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn)
	}
	errc := make(chan error, 1)
	if opts.TLSConfig != nil {
		// The server clones the config and adds the ALPN protocols it speaks; the
		// certificate comes from the config, so no files are named here.
		srv.TLSConfig = opts.TLSConfig
		go func() { errc <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- srv.Serve(ln) }()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return err
}
