package proxy

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/backend"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/observe"
	"github.com/switchyard-dev/switchyard/gateway/server/h1"
)

// RawRoute forwards the requests of a rule that asks nothing of a request but where
// to send it, from their wire form (see h1.Forwarder): no filters, one backend, no
// retries, no timeouts, no header route. It sends the head it received on with the
// same edits forwardDirect makes (hop-by-hop fields out, X-Forwarded-* set), and
// relays the answer as it comes, so that no http.Request or http.Response is built.
// It keeps the breaker, the endpoint choice and counts, outlier reports and outcome
// records of the handler path. It declines, before anything is sent, a request whose
// head it would have to change further, and leaves it to the rule's handler.
type RawRoute struct {
	fwd    *forwarder
	client *backend.RawClient
	// observer counts the rule's requests in the metrics; nil counts nothing.
	observer *observe.Rule
}

// RawRoute returns the raw route of rule, whose requests observer counts, or nil
// when the rule needs its handler.
func (p *Proxy) RawRoute(rule *config.Rule, observer *observe.Rule) *RawRoute {
	if p.viaReverseProxy || len(rule.Filters) > 0 || rule.Retry != nil || rule.HeaderRoute != nil || len(rule.Backends) != 1 {
		return nil
	}
	if t := rule.Timeouts; t != nil && (t.Request.D() > 0 || t.BackendRequest.D() > 0) {
		return nil
	}
	ref := &rule.Backends[0]
	if ref.Invalid != nil || ref.Backend == "" || ref.Weight <= 0 || len(ref.Filters) > 0 {
		return nil
	}
	client := backend.RawClientFor(p.backends.Transport(config.AppProtocolHTTP1))
	if client == nil {
		return nil
	}
	fwd := &forwarder{proxy: p, backend: ref.Backend, outcomes: p.outcomes.recorder(ref.Backend),
		observed: p.observer.Backend(ref.Backend)}
	return &RawRoute{fwd: fwd, client: client, observer: observer}
}

// rawHeadBuffers recycles the buffers outbound heads are built in.
var rawHeadBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// Forward forwards x to an endpoint of the backend, or declines it, having sent
// nothing, when the request or the backend's state needs the rule's handler.
func (r *RawRoute) Forward(x *h1.Exchange) bool {
	if !rawForwardable(x) {
		return false
	}
	start := time.Now()
	pool := r.fwd.proxy.backends.Pool(r.fwd.backend)
	if pool == nil {
		return false
	}
	if protocol, tls := pool.Transport(); tls != nil || (protocol != config.AppProtocolHTTP1 && protocol != "") {
		return false
	}
	if pool.Breaker().Limited() {
		// Admission may have to wait in the breaker's queue, or be refused with
		// an answer the handler path gives.
		return false
	}
	ep, err := pool.PickExcept(nil)
	if err != nil {
		return false
	}
	bp := rawHeadBuffers.Get().(*[]byte)
	head := r.appendHead((*bp)[:0], x)
	ep.Requests.Add(1)
	ep.InFlight.Add(1)
	defer ep.InFlight.Add(-1)
	method := x.Method()
	res := r.client.Forward(x.Context(), ep.Address, head, method == http.MethodHead, rawReplayable(x), x)
	*bp = head[:0]
	rawHeadBuffers.Put(bp)
	if res.Status == 0 {
		r.failed(x, pool, ep, res, start)
		return true
	}
	// The backend answered: its status counts, as on the handler path, before the
	// client has the answer, even when relaying it then fails, which abandons it.
	pool.Report(ep, backend.OutcomeOf(res.Status))
	r.fwd.outcomes.Record(time.Since(start), res.Status >= http.StatusInternalServerError)
	r.observer.RecordRaw(r.fwd.backend, res.Status, start)
	if res.Response != nil {
		r.relay(x, res.Response)
		return true
	}
	if _, err := res.Relay(x); err != nil {
		x.Abort()
	}
	return true
}

// rawReplayable reports whether the request may be sent again when a pooled
// connection turns out to have been closed, by the backend client's rule.
func rawReplayable(x *h1.Exchange) bool {
	key := false
	for i := range x.Fields() {
		if name, _ := x.Field(i); name == "Idempotency-Key" || name == "X-Idempotency-Key" {
			key = true
			break
		}
	}
	return backend.Replayable(x.Method(), key)
}

// failed counts an exchange that got no final answer from the backend and answers
// it as the handler path would.
func (r *RawRoute) failed(x *h1.Exchange, pool *backend.Pool, ep *backend.Endpoint, res backend.RawResult, start time.Time) {
	perr := classify(x.Context(), res.Err)
	if perr == nil || res.ClientFailed {
		// The client went away: there is no one to answer, and the backend is not
		// to blame.
		r.observer.RecordRaw(r.fwd.backend, 0, start)
		x.Abort()
		return
	}
	ep.Failures.Add(1)
	pool.Report(ep, backend.OutcomeGatewayError)
	r.fwd.outcomes.Record(time.Since(start), true)
	r.observer.RecordRaw(r.fwd.backend, perr.status, start)
	r.fwd.proxy.logger.Warn("forwarding failed", "backend", r.fwd.backend, "endpoint", ep.Address, "status", perr.status, "error", res.Err)
	// An interim response may have gone out already; the error answer is the
	// final one.
	writeRawError(x, perr)
}

// relay sends a response the raw client did not relay itself through the
// exchange's ResponseWriter, as forwardDirect does.
func (r *RawRoute) relay(x *h1.Exchange, res *http.Response) {
	// Closed on every way out, a panic included, so that its connection is not
	// left behind.
	defer res.Body.Close()
	w := x.ResponseWriter()
	removeHopByHopHeaders(res.Header)
	announced := passResponseHeader(w.Header(), res)
	w.WriteHeader(res.StatusCode)
	if err := r.fwd.proxy.copyBody(w, res); err != nil {
		x.Abort()
		return
	}
	_ = res.Body.Close()
	passTrailers(w, res, announced)
}

// rawForwardable reports whether the head can be sent on with the edits appendHead
// makes: the target is in origin form and needs no cleaning, and no field asks for
// more than those edits (hop-by-hop fields, forwarding fields to merge, deadlines).
func rawForwardable(x *h1.Exchange) bool {
	if !rawTargetOK(x.Target()) || x.Host() == "" {
		// Without a Host, the backend client sends the endpoint's address.
		return false
	}
	for i := range x.Fields() {
		name, _ := x.Field(i)
		switch name {
		case "Proxy-Connection", "Keep-Alive", "Close", "Te", "Trailer", "Upgrade",
			"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", DeadlineHeader, "Grpc-Timeout":
			return false
		case "Connection":
			// Only the options that concern this connection alone, which the
			// server has taken in: other tokens name fields to take out.
			if _, value := x.Field(i); !onlyConnectionOptions(value) {
				return false
			}
		}
	}
	return true
}

// onlyConnectionOptions reports whether a Connection field lists nothing but
// "keep-alive" and "close".
func onlyConnectionOptions(value string) bool {
	for token := range strings.SplitSeq(value, ",") {
		token = strings.TrimSpace(token)
		if !strings.EqualFold(token, "keep-alive") && !strings.EqualFold(token, "close") && token != "" {
			return false
		}
	}
	return true
}

// rawTargetOK reports whether a request target goes on as received on the handler
// path too: an origin-form path of characters URL.EscapedPath keeps, with valid
// escapes, and a query cleanQuery keeps.
func rawTargetOK(t string) bool {
	if t == "" || t[0] != '/' || len(t) > 1 && t[1] == '/' {
		return false
	}
	inQuery := false
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '%':
			if i+2 >= len(t) || !isHex(t[i+1]) || !isHex(t[i+2]) {
				return false
			}
			i += 2
		case c == '?':
			if inQuery {
				return false
			}
			inQuery = true
		case c == ';':
			if inQuery {
				return false
			}
		case strings.IndexByte("-._~!$&'()*+,=:@/", c) >= 0:
		default:
			return false
		}
	}
	return !inQuery || strings.Count(t, "&") < maxQueryParams-1
}

// appendHead appends the outbound head, as forwardDirect would send it: the request
// line and Host as received, the fields but hop-by-hop ones, the body's framing and
// an empty User-Agent, and X-Forwarded-For, -Proto and -Host.
func (r *RawRoute) appendHead(b []byte, x *h1.Exchange) []byte {
	b = append(b, x.Method()...)
	b = append(b, ' ')
	b = append(b, x.Target()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, x.Host()...)
	b = append(b, "\r\n"...)
	for i := range x.Fields() {
		name, value := x.Field(i)
		switch name {
		case "Host", "Connection", "Proxy-Authorization", "Proxy-Authenticate", "Content-Length", "Transfer-Encoding":
			continue
		case "User-Agent":
			if value == "" {
				continue
			}
		}
		b = append(b, name...)
		b = append(b, ": "...)
		b = append(b, value...)
		b = append(b, "\r\n"...)
	}
	if backend.BodyExpected(x.Method()) {
		b = append(b, "Content-Length: 0\r\n"...)
	}
	peer, _, err := net.SplitHostPort(x.RemoteAddr())
	if err != nil {
		peer = x.RemoteAddr()
	}
	if peer != "" {
		b = append(b, "X-Forwarded-For: "...)
		b = append(b, peer...)
		b = append(b, "\r\n"...)
	}
	if x.TLS() {
		b = append(b, "X-Forwarded-Proto: https\r\n"...)
	} else {
		b = append(b, "X-Forwarded-Proto: http\r\n"...)
	}
	if host := x.Host(); host != "" {
		b = append(b, "X-Forwarded-Host: "...)
		b = append(b, host...)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

// writeRawError answers x with the gateway's error response e, as e.write does
// through a ResponseWriter.
func writeRawError(x *h1.Exchange, e *proxyError) {
	b := make([]byte, 0, 256)
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(e.status)...)
	b = append(b, "\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"...)
	b = append(b, errorHeader+": "...)
	b = append(b, e.reason...)
	b = append(b, "\r\n"...)
	b = append(b, x.DateLine()...)
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(e.body)), 10)
	if x.Closing() {
		b = append(b, "\r\nConnection: close"...)
	}
	b = append(b, "\r\n\r\n"...)
	b = append(b, e.body...)
	_, _ = x.Write(b)
}
