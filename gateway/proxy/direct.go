package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync/atomic"

	"golang.org/x/net/http/httpguts"

	"github.com/switchyard-dev/switchyard/internal/httpsyntax"
)

// Direct forwarding. A request that does not ask to switch protocols is forwarded by
// forwardDirect rather than by httputil.ReverseProxy, with the same effect on the
// wire and on the client: the same outbound headers, the same response headers and
// trailers, the same flushing, the same hooks (rewrite, modifyResponse, handleError)
// called with the same arguments. What differs is the cost: the outbound request is
// built once, with its URL, ClientTrace and body guard inside the attempt and its
// header sharing the inbound header's values; the response header's values are
// handed to the client's header map rather than copied one by one. That saves about
// a dozen allocations per request (BenchmarkProxyRequest).
//
// Requests that ask to switch protocols (WebSocket) still go through ReverseProxy,
// which tunnels the upgraded connection. The one difference is a backend answering
// 101 Switching Protocols with no Upgrade header to a request that asked for none:
// ReverseProxy tunnels that connection, forwardDirect answers 502 like for any other
// 101 the request did not ask for.

// forwardDirect forwards in, which does not ask to switch protocols, over t for
// attempt a, and copies the response to w.
func (p *Proxy) forwardDirect(w http.ResponseWriter, in *http.Request, a *attempt, t http.RoundTripper) {
	out := a.outbound(in)
	if out.Body != nil {
		// The transport may read the body after RoundTrip returns; the guard keeps
		// it from reading the client's body once the handler is done with it.
		defer out.Body.Close()
	}
	p.rewriteOutbound(out, in)
	res, err := t.RoundTrip(out)
	a.roundTripDone()
	if err != nil {
		p.handleError(w, out, err)
		return
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		p.refuseSwitch(w, out, res)
		return
	}
	removeHopByHopHeaders(res.Header)
	if err := p.modifyResponse(res); err != nil {
		res.Body.Close()
		p.handleError(w, out, err)
		return
	}
	announced := passResponseHeader(w.Header(), res)
	w.WriteHeader(res.StatusCode)
	if err := p.copyBody(w, res); err != nil {
		defer res.Body.Close()
		// The response is cut short and there is no way to say so but to abort it,
		// which the server does when the handler panics with ErrAbortHandler.
		if in.Context().Value(http.ServerContextKey) == nil {
			p.errorLog.Printf("suppressing panic for copyResponse error in test; copy error: %v", err)
			return
		}
		panic(http.ErrAbortHandler)
	}
	res.Body.Close() // Closing it fills in res.Trailer.
	passTrailers(w, res, announced)
}

// outbound returns the request to send to the backend for in: a copy with the
// attempt's context and ClientTrace, the attempt's copy of the URL, the header
// without hop-by-hop and forwarding headers, and the body behind the attempt's guard.
func (a *attempt) outbound(in *http.Request) *http.Request {
	a.trace.Got1xxResponse = a.got1xx
	var ctx context.Context = a
	if clientTraceKey != nil && httptrace.ContextClientTrace(a.Context) == nil {
		a.traceInValue = true
	} else {
		// A trace above the attempt's is composed with it, as httptrace does.
		ctx = httptrace.WithClientTrace(a, &a.trace)
	}
	out := in.WithContext(ctx)
	a.url = *in.URL
	out.URL = &a.url
	out.Header = outboundHeader(in.Header)
	if in.Trailer != nil {
		out.Trailer = in.Trailer.Clone()
	}
	out.Close = false
	if in.ContentLength == 0 {
		// No body at all rather than an empty one, so that the transport may retry
		// the request on a connection that turned out to be closed.
		out.Body = nil
	}
	if out.Body != nil {
		a.body.ReadCloser = out.Body
		out.Body = &a.body
	}
	return out
}

// clientTraceKey is the key under which package httptrace looks a ClientTrace up in
// a context, learnt once by asking it (nil should it ever stop asking Value). The
// attempt answers it with its own trace, where wrapping its context with
// httptrace.WithClientTrace would cost another context per request.
var clientTraceKey = func() any {
	probe := &keyProbe{Context: context.Background()}
	httptrace.ContextClientTrace(probe)
	// The key is checked: a context answering it with a trace must be found to
	// carry that trace, else the attempt wraps its context as before.
	sentinel := &httptrace.ClientTrace{}
	check := &keyProbe{Context: context.Background(), key: probe.key, answer: sentinel}
	if probe.key == nil || httptrace.ContextClientTrace(check) != sentinel {
		return nil
	}
	return probe.key
}()

// keyProbe records the key of the first Value lookup made on it, or, given a key
// and an answer, answers that key.
type keyProbe struct {
	context.Context
	key    any
	answer any
}

func (p *keyProbe) Value(key any) any {
	if p.answer != nil {
		if key == p.key {
			return p.answer
		}
		return nil
	}
	if p.key == nil {
		p.key = key
	}
	return nil
}

// rewriteOutbound is what ReverseProxy does to the outbound request between copying
// it and sending it: query parameters it could not parse are dropped and the
// rewrite hook runs. (ReverseProxy then gives the request an empty User-Agent when
// it has none; setForwarded does that already.)
func (p *Proxy) rewriteOutbound(out, in *http.Request) {
	if q := out.URL.RawQuery; q != "" {
		out.URL.RawQuery = cleanQuery(q)
	}
	p.rewriteRequest(out, in)
}

// outboundHeaderRoom is how many headers the rewrite adds to every outbound header
// (X-Forwarded-For, -Proto and -Host), so that adding them does not grow the map.
// Room for more (User-Agent, the deadline headers, trace context) would make the
// map of a request with a few headers a large one from the start: a map of up to
// eight entries is one group, and a hint beyond that allocates a table.
const outboundHeaderRoom = 3

// outboundHeader returns the header to send on for the inbound header h: h without
// hop-by-hop headers, those the Connection header names, Forwarded and X-Forwarded-*,
// and with "Te: trailers" when the client accepts trailers. The values are h's own,
// capped so that an append by a later stage copies them instead of writing into h's.
func outboundHeader(h http.Header) http.Header {
	out := make(http.Header, len(h)+outboundHeaderRoom)
	connection := h["Connection"]
	for k, vv := range h {
		if isHopByHop(k, connection) || isForwardingHeader(k) {
			continue
		}
		out[k] = vv[:len(vv):len(vv)]
	}
	if httpguts.HeaderValuesContainsToken(h["Te"], "trailers") {
		out["Te"] = []string{"trailers"}
	}
	return out
}

// isForwardingHeader reports whether k is a header the rewrite sets anew, which a
// client's copy must not reach the backend as.
func isForwardingHeader(k string) bool {
	switch k {
	case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	}
	return false
}

// isHopByHop reports whether the header named k concerns one connection only: one
// of the hop-by-hop headers of RFC 2616, or one that the Connection header's values
// name (RFC 9110, section 7.6.1). Names compare as http.Header.Del compares them.
func isHopByHop(k string, connection []string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	for _, v := range connection {
		for v != "" {
			var token string
			token, v, _ = strings.Cut(v, ",")
			if token = textproto.TrimString(token); token != "" && isCanonicalFormOf(k, token) {
				return true
			}
		}
	}
	return false
}

// isCanonicalFormOf reports whether k == http.CanonicalHeaderKey(name), without
// allocating: a name with a byte that cannot be in a header name is its own
// canonical form; any other has its first letter and each letter after a hyphen in
// upper case and the rest in lower case.
func isCanonicalFormOf(k, name string) bool {
	if len(k) != len(name) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !httpguts.IsTokenRune(rune(name[i])) {
			return k == name
		}
	}
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if k[i] != c {
			return false
		}
		upper = c == '-'
	}
	return true
}

// removeHopByHopHeaders deletes a response's hop-by-hop headers (see isHopByHop).
func removeHopByHopHeaders(h http.Header) {
	connection := h["Connection"]
	for k := range h {
		if isHopByHop(k, connection) {
			delete(h, k)
		}
	}
}

// cleanQuery drops the query parameters that cannot be parsed (those holding ";" or
// a malformed escape), as ReverseProxy does, so that the backend cannot read a
// parameter differently from the gateway. A query without any is returned as is.
func cleanQuery(q string) string {
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case ';':
			return reencodeQuery(q)
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return reencodeQuery(q)
			}
			i += 2
		}
	}
	if len(q) >= maxQueryParams && strings.Count(q, "&") >= maxQueryParams {
		return reencodeQuery(q)
	}
	return q
}

// maxQueryParams is the number of query parameters net/url parses at most.
const maxQueryParams = 10000

func reencodeQuery(q string) string {
	v, _ := url.ParseQuery(q)
	return v.Encode()
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// passResponseHeader adds the response's header to the client's header h and
// announces its trailers, returning how many were announced. The values move to h
// (capped, so that a later append copies them) rather than being copied: the
// response is not used for anything else.
func passResponseHeader(h http.Header, res *http.Response) int {
	for k, vv := range res.Header {
		// A header filled other than through its methods may hold names in any
		// case.
		k = httpsyntax.CanonicalHeaderKey(k)
		if prior, ok := h[k]; ok {
			h[k] = append(prior, vv...)
		} else {
			h[k] = vv[:len(vv):len(vv)]
		}
	}
	if len(res.Trailer) == 0 {
		return 0
	}
	names := make([]string, 0, len(res.Trailer))
	for k := range res.Trailer {
		names = append(names, k)
	}
	h.Add("Trailer", strings.Join(names, ", "))
	return len(names)
}

// passTrailers sends the response's trailers once its body has been copied. Those
// announced in advance go under their names; any others under http.TrailerPrefix.
func passTrailers(w http.ResponseWriter, res *http.Response, announced int) {
	if len(res.Trailer) == 0 {
		return
	}
	// Trailers need a chunked response: flushing now keeps the server from sending
	// a short body with a Content-Length instead.
	_ = http.NewResponseController(w).Flush()
	h := w.Header()
	for k, vv := range res.Trailer {
		if len(res.Trailer) != announced {
			k = http.TrailerPrefix + k
		}
		for _, v := range vv {
			h.Add(k, v)
		}
	}
}

// copyBody copies the response body to w, flushing after every write when the
// response is a stream (server-sent events, or a body of unknown length), and
// returns the first error other than the end of the body.
func (p *Proxy) copyBody(w http.ResponseWriter, res *http.Response) error {
	flush := streamed(res)
	if flush {
		// The client learns at once that the response has begun, even when its
		// first event is long in coming.
		_ = http.NewResponseController(w).Flush()
	}
	buf := p.buffers.Get()
	defer p.buffers.Put(buf)
	for {
		n, rerr := res.Body.Read(buf)
		if rerr != nil && rerr != io.EOF && rerr != context.Canceled {
			p.errorLog.Printf("httputil: ReverseProxy read error during body copy: %v", rerr)
		}
		if n > 0 {
			written, werr := w.Write(buf[:n])
			if werr != nil {
				return werr
			}
			if written != n {
				return io.ErrShortWrite
			}
			if flush {
				_ = http.NewResponseController(w).Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// streamed reports whether a response is flushed write by write: server-sent events,
// and any body whose length is not known in advance.
func streamed(res *http.Response) bool {
	if res.ContentLength == -1 {
		return true
	}
	// What Get would give: it looks up the canonical form of the name it is
	// given, which this name is already.
	var contentType string
	if vv := res.Header["Content-Type"]; len(vv) > 0 {
		contentType = vv[0]
	}
	mediaType, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mediaType), "text/event-stream")
}

// refuseSwitch answers a 101 Switching Protocols to a request that asked for no
// protocol switch with the error ReverseProxy gives it.
func (p *Proxy) refuseSwitch(w http.ResponseWriter, out *http.Request, res *http.Response) {
	if err := p.modifyResponse(res); err != nil {
		res.Body.Close()
		p.handleError(w, out, err)
		return
	}
	res.Body.Close()
	protocol := ""
	if httpguts.HeaderValuesContainsToken(res.Header["Connection"], "Upgrade") {
		protocol = res.Header.Get("Upgrade")
	}
	err := fmt.Errorf("backend tried to switch protocol %q when %q was requested", protocol, "")
	if !isPrintableASCII(protocol) {
		err = fmt.Errorf("backend tried to switch to invalid protocol %q", protocol)
	}
	p.handleError(w, out, err)
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// got1xx passes an informational response (103 Early Hints) on to the client while
// the round trip is in progress. The transport calls it from its own goroutine.
func (a *attempt) got1xx(code int, header textproto.MIMEHeader) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done {
		// The round trip has returned; the handler owns the header map again.
		return nil
	}
	h := a.w.Header()
	// Fields the filters set (RateLimit-*, say) belong on the final response: the
	// interim one carries the backend's fields alone, and the filters' are put back
	// after it.
	var filters http.Header
	if len(h) > 0 {
		filters = h.Clone()
		clear(h)
	}
	for k, vv := range header {
		for _, v := range vv {
			h.Add(k, v)
		}
	}
	a.w.WriteHeader(code)
	// WriteHeader does not clear the header map after an informational response.
	clear(h)
	maps.Copy(h, filters)
	return nil
}

// roundTripDone stops got1xx from writing to the client.
func (a *attempt) roundTripDone() {
	a.mu.Lock()
	a.done = true
	a.mu.Unlock()
}

// guardedBody is the outbound request's body: the inbound body, until the handler
// returns and closes it. The transport closes a body on errors and may read it after
// RoundTrip returns, neither of which it may do to the client's body.
type guardedBody struct {
	io.ReadCloser
	closed atomic.Bool
}

var errBodyClosed = errors.New("proxy: read from a request body after its handler returned")

func (b *guardedBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errBodyClosed
	}
	return b.ReadCloser.Read(p)
}

// Close marks the body closed without closing the client's body, which the server
// closes.
func (b *guardedBody) Close() error {
	b.closed.Store(true)
	return nil
}
