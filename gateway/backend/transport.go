package backend

import (
	"net"
	"net/http"
	"time"
)

// Options tune the connections the gateway opens to backends. Every zero value takes
// the default documented on its field.
type Options struct {
	// DialTimeout bounds establishing a TCP connection to an endpoint. Default 5s.
	DialTimeout time.Duration
	// KeepAlive is the TCP keep-alive period of backend connections. Default 30s.
	KeepAlive time.Duration
	// MaxIdleConns caps idle connections across all endpoints. Default 16384.
	MaxIdleConns int
	// MaxIdleConnsPerHost caps idle connections kept per endpoint. Default 512: a
	// proxy reuses connections to few hosts heavily, and a small cap forces a new
	// connection (and its handshake) for most requests under load.
	MaxIdleConnsPerHost int
	// MaxConnsPerHost caps all connections per endpoint. Default 0 (no cap).
	MaxConnsPerHost int
	// IdleConnTimeout closes connections idle for this long. Default 90s.
	IdleConnTimeout time.Duration
	// ExpectContinueTimeout is how long to wait for a backend's 100 Continue before
	// sending a request body anyway. Default 1s.
	ExpectContinueTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for response headers after the request
	// is written. Default 0 (none): route timeouts bound requests instead.
	ResponseHeaderTimeout time.Duration
	// H2CPingInterval is how long an HTTP/2 backend connection may stay silent
	// before it is checked with a PING. Default 30s.
	H2CPingInterval time.Duration
	// HTTP1 chooses the client of cleartext HTTP/1.1 backends: "fast" (a client
	// without goroutines per connection, see fastTransport) or "std"
	// (http.Transport). "" means the SWITCHYARD_HTTP1 environment variable's choice,
	// else fast.
	HTTP1 string
}

// withDefaults fills in every zero field.
func (o Options) withDefaults() Options {
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = 30 * time.Second
	}
	if o.MaxIdleConns <= 0 {
		o.MaxIdleConns = 16384
	}
	if o.MaxIdleConnsPerHost <= 0 {
		o.MaxIdleConnsPerHost = 512
	}
	if o.IdleConnTimeout <= 0 {
		o.IdleConnTimeout = 90 * time.Second
	}
	if o.ExpectContinueTimeout <= 0 {
		o.ExpectContinueTimeout = time.Second
	}
	if o.H2CPingInterval <= 0 {
		o.H2CPingInterval = 30 * time.Second
	}
	return o
}

// newBaseTransport returns a transport tuned for proxying: large idle pools, no
// environment proxy, and no transparent compression, so that the client's
// Accept-Encoding and the backend's Content-Encoding pass through untouched.
func newBaseTransport(o Options) *http.Transport {
	dialer := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: o.KeepAlive}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		MaxIdleConns:          o.MaxIdleConns,
		MaxIdleConnsPerHost:   o.MaxIdleConnsPerHost,
		MaxConnsPerHost:       o.MaxConnsPerHost,
		IdleConnTimeout:       o.IdleConnTimeout,
		ExpectContinueTimeout: o.ExpectContinueTimeout,
		ResponseHeaderTimeout: o.ResponseHeaderTimeout,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
}

// newHTTP1Transport speaks HTTP/1.1 only; WebSocket upgrades need it, since an
// upgrade cannot happen on an HTTP/2 stream.
func newHTTP1Transport(o Options) *http.Transport {
	t := newBaseTransport(o)
	t.Protocols = new(http.Protocols)
	t.Protocols.SetHTTP1(true)
	return t
}

// newH2CTransport speaks HTTP/2 with prior knowledge over cleartext TCP. Idle
// connections are checked with PINGs so that a silently dropped connection is not
// handed requests that will hang.
func newH2CTransport(o Options) *http.Transport {
	t := newBaseTransport(o)
	t.Protocols = new(http.Protocols)
	t.Protocols.SetUnencryptedHTTP2(true)
	t.HTTP2 = &http.HTTP2Config{SendPingTimeout: o.H2CPingInterval}
	return t
}
