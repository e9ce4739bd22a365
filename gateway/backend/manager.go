// Package backend keeps the gateway's view of its upstreams: one Pool per configured
// backend, balancing over that backend's endpoints, and the tuned transports that
// carry requests to them. Pool state (balancing position, endpoint counters) outlives
// configuration versions.
package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// ErrUnknownBackend is returned by RoundTrip for a backend name that is not
// configured.
var ErrUnknownBackend = errors.New("unknown backend")

// Manager owns the backend pools and transports of a gateway replica.
type Manager struct {
	opts  Options
	http1 *http.Transport
	h2c   *http.Transport
	// fast, when set, carries cleartext HTTP/1.1 in place of http1 (which it falls
	// back on for what it does not handle); see Options.HTTP1.
	fast *fastTransport

	// closed is set by Close; guarded by updateMu.
	closed bool
	// updateMu serialises Update and guards tls and closed; requests only load pools.
	updateMu sync.Mutex
	pools    atomic.Pointer[map[string]*Pool]
	// tls holds one transport per distinct protocol and TLS settings (see tlsKey),
	// for the backends of the current configuration.
	tls map[string]http.RoundTripper
}

// NewManager returns a Manager with no backends.
func NewManager(opts Options) *Manager {
	opts = opts.withDefaults()
	m := &Manager{opts: opts, http1: newHTTP1Transport(opts), h2c: newH2CTransport(opts), tls: map[string]http.RoundTripper{}}
	if useFastHTTP1(opts.HTTP1) {
		m.fast = newFastTransport(opts, m.http1)
	}
	empty := map[string]*Pool{}
	m.pools.Store(&empty)
	return m
}

// Update installs the backends of a new configuration version. Pools of backends
// whose Name is unchanged are kept, with their state; pools of backends no longer
// listed are dropped. It is safe to call while requests are in flight: readers see
// either the old or the new set of pools.
func (m *Manager) Update(backends []config.Backend) {
	m.updateMu.Lock()
	defer m.updateMu.Unlock()
	old := *m.pools.Load()
	next := make(map[string]*Pool, len(backends))
	transports := map[string]http.RoundTripper{}
	for i := range backends {
		b := &backends[i]
		tr := m.tlsTransport(b, transports)
		p := old[b.Name]
		if p != nil {
			p.update(b, tr)
		} else {
			p = newPool(b, tr)
		}
		next[b.Name] = p
		hc := b.HealthCheck
		if m.closed {
			// A Manager closed while a configuration was being applied starts no
			// checker that nothing would stop.
			hc = nil
		}
		client, scheme := m.healthClient(p)
		p.syncHealth(hc, client, scheme)
	}
	m.pools.Store(&next)
	for name, p := range old {
		if next[name] == nil {
			p.stopHealth()
		}
	}
	// Transports no backend uses any more let go of their idle connections; requests
	// still in flight on them finish normally.
	for key, tr := range m.tls {
		if _, used := transports[key]; !used {
			closeIdle(tr)
		}
	}
	m.tls = transports
}

// tlsTransport returns the transport of a TLS backend, nil for a cleartext one,
// reusing the transport of the previous configuration for equal settings. It records
// the transport in used.
func (m *Manager) tlsTransport(b *config.Backend, used map[string]http.RoundTripper) http.RoundTripper {
	if b.TLS == nil {
		return nil
	}
	protocol := b.Protocol
	if protocol == "" {
		protocol = config.AppProtocolHTTP1
	}
	key := tlsKey(protocol, b.TLS)
	if tr, ok := used[key]; ok {
		return tr
	}
	tr, ok := m.tls[key]
	if !ok {
		tr = newTLSTransport(m.opts, protocol, b.TLS)
	}
	used[key] = tr
	return tr
}

func closeIdle(tr http.RoundTripper) {
	if c, ok := tr.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Pool returns the pool of the named backend, or nil if it is not configured.
func (m *Manager) Pool(name string) *Pool {
	return (*m.pools.Load())[name]
}

// Pools returns the pools of the current configuration, in no particular order.
func (m *Manager) Pools() []*Pool {
	pools := *m.pools.Load()
	out := make([]*Pool, 0, len(pools))
	for _, p := range pools {
		out = append(out, p)
	}
	return out
}

// Transport returns the shared transport for an application protocol: HTTP/2 with
// prior knowledge for h2c, HTTP/1.1 for everything else (WebSocket included).
func (m *Manager) Transport(p config.AppProtocol) http.RoundTripper {
	if p == config.AppProtocolH2C {
		return m.h2c
	}
	if m.fast != nil {
		return m.fast
	}
	return m.http1
}

// RoundTrip sends req to one endpoint of the named backend, chosen by the backend's
// pool, over the backend's transport. req is not modified; it is cloned with ctx.
// The endpoint counts the request as in flight until the response body is closed.
func (m *Manager) RoundTrip(ctx context.Context, backend string, req *http.Request) (*http.Response, error) {
	pool := m.Pool(backend)
	if pool == nil {
		return nil, fmt.Errorf("backend %q: %w", backend, ErrUnknownBackend)
	}
	ep, err := pool.Pick()
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", backend, err)
	}
	protocol, tlsTransport := pool.Transport()
	out := req.Clone(ctx)
	out.RequestURI = ""
	out.URL.Scheme = "http"
	transport := m.Transport(protocol)
	if tlsTransport != nil {
		out.URL.Scheme, transport = "https", tlsTransport
	}
	out.URL.Host = ep.Address
	ep.Requests.Add(1)
	ep.InFlight.Add(1)
	res, err := transport.RoundTrip(out)
	if err != nil {
		ep.InFlight.Add(-1)
		ep.Failures.Add(1)
		return nil, err
	}
	res.Body = &releasingBody{ReadCloser: res.Body, ep: ep}
	return res, nil
}

// healthClient is the client of health probes for a pool, and the URL scheme they
// use. It shares the data path's transport, TLS settings included, so probes reuse
// its connections and verify backends as requests do.
func (m *Manager) healthClient(p *Pool) (*http.Client, string) {
	protocol, tls := p.Transport()
	transport, scheme := m.Transport(protocol), "http"
	if tls != nil {
		transport, scheme = tls, "https"
	}
	return &http.Client{Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}, scheme
}

// Close stops health checks and closes idle backend connections. Requests in flight
// are not interrupted.
func (m *Manager) Close() {
	m.updateMu.Lock()
	m.closed = true
	for _, p := range *m.pools.Load() {
		p.stopHealth()
	}
	m.updateMu.Unlock()
	m.http1.CloseIdleConnections()
	m.h2c.CloseIdleConnections()
	if m.fast != nil {
		m.fast.CloseIdleConnections()
	}
	m.updateMu.Lock()
	defer m.updateMu.Unlock()
	for _, tr := range m.tls {
		closeIdle(tr)
	}
}

// releasingBody ends an endpoint's in-flight count when the response body is closed.
type releasingBody struct {
	io.ReadCloser
	ep   *Endpoint
	once sync.Once
}

func (b *releasingBody) Close() error {
	b.once.Do(func() { b.ep.InFlight.Add(-1) })
	return b.ReadCloser.Close()
}
