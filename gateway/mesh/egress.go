package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/reqctx"
)

// Resolver looks up the addresses of a host name; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// EgressOptions configure egress: requests whose destination is no Service of the
// mesh.
type EgressOptions struct {
	// DenyByDefault refuses every destination the allow-list does not list. Without
	// it, an empty allow-list allows every destination, and a non-empty one only
	// those it lists.
	DenyByDefault bool
	// Allow is the allow-list; see AllowList.
	Allow AllowList
	// NodeAddresses are the node's own addresses (and any other ranges to refuse),
	// which egress never reaches: the replica runs in the node's network namespace,
	// so they would reach the node's own services (the kubelet, for one).
	NodeAddresses []netip.Prefix
	// ServiceCIDRs are the cluster's Service IP ranges. A cluster IP that is no
	// Service of the mesh is refused rather than sent out, since reaching it would
	// skip the Service's policies.
	ServiceCIDRs []netip.Prefix
	// ClusterIP reports whether an address is a cluster IP of a Service of the mesh;
	// such an address is refused as an egress destination (a name that resolves to
	// it must not skip the Service's policies). Nil means none is.
	ClusterIP func(netip.Addr) bool
	// Resolver resolves destination names; nil means net.DefaultResolver.
	Resolver Resolver
	// Tunnel tunes CONNECT tunnels out of the mesh.
	Tunnel TunnelOptions
	// Logger receives egress failures; nil discards them.
	Logger *slog.Logger
}

// DeniedError is the refusal of an egress destination.
type DeniedError struct {
	// Host is the destination as the caller named it.
	Host string
	// Addr is the address refused, when the refusal is of an address.
	Addr netip.Addr
	// Reason says why, in a few words.
	Reason string
}

func (e *DeniedError) Error() string {
	if e.Addr.IsValid() && e.Addr.String() != e.Host {
		return fmt.Sprintf("egress to %s (%s) is refused: %s", e.Host, e.Addr, e.Reason)
	}
	return fmt.Sprintf("egress to %s is refused: %s", e.Host, e.Reason)
}

// Egress sends requests out of the mesh: HTTP requests through a tuned transport and
// CONNECT tunnels, both to destinations the allow-list admits. Whatever the
// allow-list says, the address actually dialled, after name resolution, is checked
// against a fixed deny-list: loopback, link-local (which holds cloud metadata
// services), unspecified, multicast and broadcast addresses, the node's own
// addresses, cluster IPs (see EgressOptions), and IPv4 addresses of those kinds
// embedded in NAT64 addresses. Checking the dialled address, not the name, is what
// keeps a name that resolves to a forbidden address (DNS rebinding) from reaching it.
type Egress struct {
	opts     EgressOptions
	allowAll bool
	resolver Resolver
	dialer   net.Dialer
	proxy    *httputil.ReverseProxy
	tunnels  TunnelOptions
	// permitLoopback lifts the refusal of loopback addresses, for tests whose only
	// network is loopback.
	permitLoopback bool
}

// NewEgress returns an Egress with opts.
func NewEgress(opts EgressOptions) *Egress {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Tunnel.Logger == nil {
		opts.Tunnel.Logger = opts.Logger
	}
	opts.Tunnel = opts.Tunnel.withDefaults()
	e := &Egress{opts: opts, allowAll: !opts.DenyByDefault && opts.Allow.Empty(), resolver: opts.Resolver, tunnels: opts.Tunnel}
	if e.resolver == nil {
		e.resolver = net.DefaultResolver
	}
	// The dialer checks each socket's address once more right before connecting,
	// whatever path led to the dial.
	e.dialer = net.Dialer{Timeout: opts.Tunnel.ConnectTimeout, KeepAlive: 30 * time.Second, ControlContext: e.control}
	transport := &http.Transport{
		DialContext:           e.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	e.proxy = &httputil.ReverseProxy{
		Rewrite:      rewriteEgress,
		Transport:    transport,
		BufferPool:   egressBuffers{},
		ErrorLog:     slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
		ErrorHandler: e.handleError,
	}
	return e
}

// rewriteEgress sends the request to the host it names, leaving X-Forwarded-* unset:
// nothing about the cluster's addresses leaves it.
func rewriteEgress(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	if pr.In.URL.Scheme == "https" {
		pr.Out.URL.Scheme = "https"
	}
	host := pr.In.Host
	// An IPv6 address without brackets names that address (ParseDestination reads
	// it so); a URL needs the brackets, or it would read the last group as a port.
	if strings.Count(host, ":") > 1 && !strings.HasPrefix(host, "[") {
		if addr, err := netip.ParseAddr(host); err == nil {
			host = "[" + addr.String() + "]"
		}
	}
	pr.Out.URL.Host = host
	pr.Out.Host = host
}

// ServeHTTP forwards an HTTP request out of the mesh, or refuses it (403) when its
// destination is not allowed. Absolute-form requests may name http or https; an
// origin-form request goes to its Host over cleartext HTTP.
func (e *Egress) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s := r.URL.Scheme; s != "" && s != "http" && s != "https" {
		http.Error(w, "only http and https destinations are forwarded", http.StatusBadRequest)
		return
	}
	e.proxy.ServeHTTP(w, r)
}

// ServeConnect answers CONNECT r with a tunnel to d, or refuses it (403) when d is not
// allowed. raw, w and report are as for Tunnels.ServeService.
func (e *Egress) ServeConnect(raw, w http.ResponseWriter, r *http.Request, d Destination, report TunnelReport) {
	start := time.Now()
	info := reqctx.From(r.Context())
	ctx, cancel := context.WithTimeout(r.Context(), e.tunnels.ConnectTimeout)
	upstream, err := e.DialContext(ctx, "tcp", net.JoinHostPort(d.Host, strconv.Itoa(d.Port)))
	cancel()
	result := TunnelResult{ConnectTime: time.Since(start)}
	if info != nil {
		info.UpstreamTime = result.ConnectTime
		info.Attempts = 1
	}
	if err != nil {
		e.answerError(w, r, info, err)
		report.send(result)
		return
	}
	if info != nil {
		info.Endpoint = upstream.RemoteAddr().String()
	}
	runTunnel(raw, r, upstream, e.tunnels.IdleTimeout, e.opts.Logger, result, report)
}

// handleError is the ReverseProxy's error handler.
func (e *Egress) handleError(w http.ResponseWriter, r *http.Request, err error) {
	e.answerError(w, r, reqctx.From(r.Context()), err)
}

// answerError answers a request whose egress failed: 403 when it was refused, 504
// when connecting timed out, 502 otherwise; nothing when the client went away.
func (e *Egress) answerError(w http.ResponseWriter, r *http.Request, info *reqctx.Info, err error) {
	var denied *DeniedError
	switch {
	case errors.As(err, &denied):
		e.opts.Logger.Info("egress refused", "host", denied.Host, "reason", denied.Reason)
		refuse(w, info, reqctx.FlagEgressDenied, http.StatusForbidden, denied.Error())
	case r.Context().Err() != nil:
		if info != nil {
			info.Flags |= reqctx.FlagClientClosed
		}
	case isTimeout(err):
		refuse(w, info, reqctx.FlagUpstreamTimeout, http.StatusGatewayTimeout, "the egress destination did not answer in time")
	default:
		e.opts.Logger.Warn("egress failed", "host", r.Host, "error", err)
		refuse(w, info, reqctx.FlagUpstreamError, http.StatusBadGateway, "the egress destination could not be reached")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// DialContext connects to address ("host:port") if egress may reach it: the host must
// be allowed by name, or the address it resolves to (or is) by range, and that
// address must not be on the deny-list. The addresses a name resolves to are tried in
// turn, skipping those refused; the connection is made to the checked address, never
// to the name, so that a second resolution cannot change it.
func (e *Egress) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("egress to %s: bad port", address)
	}
	addrs, nameAllowed, err := e.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var firstErr error
	for _, addr := range addrs {
		if err := e.check(host, addr, nameAllowed); err != nil {
			firstErr = cmpErr(firstErr, err)
			continue
		}
		conn, err := e.dialer.DialContext(ctx, network, netip.AddrPortFrom(addr, uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		firstErr = cmpErr(firstErr, err)
		if ctx.Err() != nil {
			break
		}
	}
	if firstErr == nil {
		firstErr = &DeniedError{Host: host, Reason: "the name resolves to no address"}
	}
	return nil, firstErr
}

// cmpErr keeps the first error.
func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// resolve returns the addresses of host (itself, for an address) and whether its
// name is on the allow-list. A name that neither the allow-list's names nor its
// ranges could admit is refused before any lookup.
func (e *Egress) resolve(ctx context.Context, host string) ([]netip.Addr, bool, error) {
	if addr, ok := parseIP(host); ok {
		return []netip.Addr{addr.Unmap().WithZone("")}, false, nil
	}
	name := strings.TrimSuffix(host, ".")
	if hasUpper(name) {
		name = strings.ToLower(name)
	}
	nameAllowed := e.allowAll || e.opts.Allow.allowsName(name)
	if !nameAllowed && len(e.opts.Allow.prefixes) == 0 {
		return nil, false, &DeniedError{Host: host, Reason: "not on the egress allow-list"}
	}
	addrs, err := e.resolver.LookupNetIP(ctx, "ip", name)
	if err != nil {
		return nil, false, err
	}
	for i := range addrs {
		addrs[i] = addrs[i].Unmap().WithZone("")
	}
	return addrs, nameAllowed, nil
}

// check returns why egress may not reach addr, the address of host, or nil.
func (e *Egress) check(host string, addr netip.Addr, nameAllowed bool) error {
	if reason := e.denied(addr); reason != "" {
		return &DeniedError{Host: host, Addr: addr, Reason: reason}
	}
	if !nameAllowed && !e.allowAll && !e.opts.Allow.allowsAddr(addr) {
		return &DeniedError{Host: host, Addr: addr, Reason: "not on the egress allow-list"}
	}
	return nil
}

// control is the dialer's last check, on the address of the socket about to
// connect.
func (e *Egress) control(_ context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &DeniedError{Host: address, Reason: "the address dialled is not an IP address"}
	}
	if reason := e.denied(ap.Addr().Unmap()); reason != "" {
		return &DeniedError{Host: address, Addr: ap.Addr(), Reason: reason}
	}
	return nil
}

// nat64 is the well-known NAT64 prefix, whose addresses carry an IPv4 address in
// their last 32 bits.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// thisNetwork is 0.0.0.0/8, which Linux treats as the local host.
var thisNetwork = netip.MustParsePrefix("0.0.0.0/8")

// nat64Local is the local-use NAT64 prefix (RFC 8215), whose embedding of IPv4
// addresses depends on the network's prefix length: the whole range is refused.
var nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")

// metadataAddrs are cloud metadata and platform endpoints outside link-local
// ranges: AWS and GCP instance metadata over IPv6, Alibaba Cloud's metadata and
// Azure's WireServer. From the node's network namespace they would hand a Pod the
// node's credentials.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("fd00:ec2::254"),
	netip.MustParseAddr("fd20:ce::254"),
	netip.MustParseAddr("100.100.100.200"),
	netip.MustParseAddr("168.63.129.16"),
}

// denied returns why addr is on the deny-list, or "".
func (e *Egress) denied(addr netip.Addr) string {
	addr = addr.Unmap()
	if nat64.Contains(addr) {
		b := addr.As16()
		addr = netip.AddrFrom4([4]byte(b[12:]))
	}
	if nat64Local.Contains(addr) {
		return "local-use NAT64 address"
	}
	if slices.Contains(metadataAddrs, addr) {
		return "cloud metadata address"
	}
	switch {
	case addr.IsLoopback():
		if !e.permitLoopback {
			return "loopback address"
		}
	case addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast():
		return "link-local address (cloud metadata)"
	case addr.IsUnspecified() || thisNetwork.Contains(addr):
		return "unspecified address"
	case addr.IsMulticast() || addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "multicast or broadcast address"
	}
	for _, p := range e.opts.NodeAddresses {
		if p.Contains(addr) {
			return "address of the node"
		}
	}
	if e.opts.ClusterIP != nil && e.opts.ClusterIP(addr) {
		return "cluster IP of a mesh Service (name the Service instead)"
	}
	for _, p := range e.opts.ServiceCIDRs {
		if p.Contains(addr) {
			return "cluster IP outside the mesh"
		}
	}
	return ""
}

// egressBuffers lends the tunnels' copy buffers to the egress ReverseProxy.
type egressBuffers struct{}

func (egressBuffers) Get() []byte { return tunnelBuffers.Get().(*[tunnelBufferSize]byte)[:] }

func (egressBuffers) Put(b []byte) {
	if cap(b) >= tunnelBufferSize {
		tunnelBuffers.Put((*[tunnelBufferSize]byte)(b[:tunnelBufferSize]))
	}
}

// InterfaceAddresses returns the addresses of the host's network interfaces, each as
// a single-address range, for EgressOptions.NodeAddresses.
func InterfaceAddresses() ([]netip.Prefix, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		addr, ok := netip.AddrFromSlice(ipnet.IP)
		if !ok {
			continue
		}
		addr = addr.Unmap()
		out = append(out, netip.PrefixFrom(addr, addr.BitLen()))
	}
	return out, nil
}
