package proxy

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/backend"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/observe"
	"github.com/switchyard-dev/switchyard/gateway/server/h1"
	"github.com/switchyard-dev/switchyard/plugins"
)

// RawRoute forwards the requests of a rule from their wire form (see h1.Forwarder),
// when each of the rule's filters can act on that form (plugins.RawStage) and the
// backends it sends requests to have no filters of their own: no http.Request or
// http.Response is built. It chooses the backend as the rule's handler does (by the
// header route, else by weight), sends the head it received on with the edits
// forwardDirect makes (hop-by-hop fields out, X-Forwarded-* and the deadline set)
// and those of the rule's request header modifier, and relays the answer as it
// comes. It keeps everything else of the handler path: the rule's timeouts and retry
// policy, the breaker, the endpoint choice and counts, outlier reports, outcome
// records, metrics and access log lines. It declines, before anything is sent, a
// request whose head it would have to change further, or, when nothing is left to
// chance, that the breaker would make wait, and leaves it to the rule's handler.
type RawRoute struct {
	// split is the rule handler's split among the backends that get a share of
	// the requests by weight, each a *forwarder, or nil when none does. header,
	// when the rule has a header route, is its handler, and pinned the forwarder
	// of the requests that carry its headers.
	split  *weightedHandler
	header *headerRouteHandler
	pinned *forwarder
	// requestTimeout bounds the whole request, retries included; zero means none.
	requestTimeout time.Duration
	client         *backend.RawClient
	// stages are the rule's filters, in their order, in their raw form.
	stages []plugins.RawStage
	// editor is the one stage that edits the request's fields, or nil; editorAt is
	// its index in stages, and edited the names of the fields it edits.
	editor   plugins.RawRequestEditor
	editorAt int
	edited   []string
	// responseEditor is the one stage that edits the responses' fields, or nil;
	// responseEditorAt is its index in stages.
	responseEditor   plugins.RawResponseEditor
	responseEditorAt int
	// observer counts the rule's requests in the metrics; nil counts nothing.
	observer *observe.Rule
}

// RawRoute returns the raw route of rule, or nil when the rule needs its handler.
// chain is the rule's handler: its filters around what RuleHandler built for it;
// observer counts its requests.
func (p *Proxy) RawRoute(rule *config.Rule, chain http.Handler, observer *observe.Rule) *RawRoute {
	if p.viaReverseProxy {
		return nil
	}
	for i := range rule.Filters {
		for j := range i {
			if rule.Filters[j].Type == rule.Filters[i].Type {
				// A later filter of a kind replaces the response fields an earlier
				// one set, which the raw stages' fields cannot do.
				return nil
			}
		}
	}
	stages, deadline := rawStages(chain, len(rule.Filters))
	if deadline == nil {
		return nil
	}
	editor, editorAt, ok := rawEditor(stages)
	if !ok {
		return nil
	}
	responseEditor, responseEditorAt, ok := rawResponseEditor(stages)
	if !ok {
		return nil
	}
	client := backend.RawClientFor(p.backends.Transport(config.AppProtocolHTTP1))
	if client == nil {
		return nil
	}
	r := &RawRoute{requestTimeout: deadline.timeout, client: client, stages: stages, observer: observer,
		editor: editor, editorAt: editorAt, responseEditor: responseEditor, responseEditorAt: responseEditorAt}
	if editor != nil {
		r.edited = editor.EditedNames()
	}
	if !rawBackends(r, deadline.next) {
		return nil
	}
	return r
}

// rawEditor returns the one stage that edits the request's fields (nil and -1 when
// none does), or false when several do, or when one edits a field the raw path
// reads or writes itself: the hop-by-hop and forwarding fields, those that make it
// decline a request, the deadlines it sets, those it reads the request's retry and
// trace identity from, and User-Agent, which an empty value takes out.
func rawEditor(stages []plugins.RawStage) (plugins.RawRequestEditor, int, bool) {
	return oneEditor(stages, plugins.RawRequestEditor.EditedNames, rawReservedField)
}

// rawResponseEditor returns the one stage that edits the responses' fields (nil and
// -1 when none does), or false when several do, or when one edits a field the server
// or the raw relay decide themselves: the framing and hop-by-hop fields, Content-Type
// (without which a body's type is sniffed) and Date.
func rawResponseEditor(stages []plugins.RawStage) (plugins.RawResponseEditor, int, bool) {
	return oneEditor(stages, plugins.RawResponseEditor.ResponseEditedNames, func(name string) bool {
		switch name {
		case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
			"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length", "Content-Type", "Date":
			return true
		}
		return false
	})
}

// oneEditor returns the one stage of kind E and its index (the zero E and -1 when
// there is none), or false when several are, or when one edits a field that
// reserved names, as names lists them.
func oneEditor[E plugins.RawStage](stages []plugins.RawStage, names func(E) []string, reserved func(string) bool) (E, int, bool) {
	var editor, none E
	at := -1
	for i, stage := range stages {
		e, ok := stage.(E)
		if !ok {
			continue
		}
		if at >= 0 || slices.ContainsFunc(names(e), reserved) {
			return none, -1, false
		}
		editor, at = e, i
	}
	return editor, at, true
}

// rawReservedField reports whether a filter's edits of the canonical name would
// need more than the raw path does for them (see rawEditor).
func rawReservedField(name string) bool {
	switch name {
	case "Host", "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Close", "Content-Length", "Content-Type", "Expect",
		"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "User-Agent",
		DeadlineHeader, "Grpc-Timeout", "Idempotency-Key", "X-Idempotency-Key", "Traceparent", "Tracestate":
		return true
	}
	return false
}

// rawStages returns the raw forms of the n filters chain begins with, and the
// handler RuleHandler built that follows them; nil when one of the filters has no
// raw form, or when what follows them is not that handler.
func rawStages(chain http.Handler, n int) ([]plugins.RawStage, *deadlineHandler) {
	var stages []plugins.RawStage
	h := chain
	for range n {
		stage, ok := h.(plugins.RawStage)
		if !ok {
			return nil, nil
		}
		stages = append(stages, stage)
		h = stage.Next()
	}
	deadline, _ := h.(*deadlineHandler)
	return stages, deadline
}

// Forward forwards x to an endpoint of the backend the rule's handler would choose,
// or declines it, having sent nothing, when the request or the backend's state
// needs the rule's handler. l writes the request's access log line.
func (r *RawRoute) Forward(x *h1.Exchange, l *observe.Listener) bool {
	if !rawForwardable(x) {
		return false
	}
	if !r.allPoolsRaw() {
		return false
	}
	fwd := r.choose(x)
	if fwd == nil {
		return false
	}
	pool := rawPool(fwd)
	if pool == nil {
		return false
	}
	if r.admitsEarly() {
		// Without filters, and when the pick of the backend is not left to
		// chance, the breaker admits the request here or declines it: admission would wait in the breaker's
		// queue, or be refused with an answer the handler path gives. Any other
		// request is admitted as on the handler path (see rawCall.serve).
		release, ok := pool.Breaker().TryAcquire()
		if !ok {
			return false
		}
		defer release()
	}
	e := rawCalls.Get().(*rawCall)
	e.x, e.route, e.fwd, e.pool = x, r, fwd, pool
	e.req.Exchange = x
	// The request is timed from when the server offered it, a reading of the
	// clock made then; an exchange offered without one gets its own.
	if e.info.Start = x.Arrived(); e.info.Start.IsZero() {
		e.info.Start = time.Now()
	}
	defer e.end(l)
	e.serve()
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

// rawForwardable reports whether the request can be sent on with the edits
// appendHead makes: the target is in origin form and needs no cleaning, no field
// asks for more than those edits (hop-by-hop fields, forwarding fields to merge,
// deadlines), and the body is one the handler path would keep to replay.
func rawForwardable(x *h1.Exchange) bool {
	if !rawTargetOK(x.Target()) || x.Host() == "" {
		// Without a Host, the backend client sends the endpoint's address.
		return false
	}
	if len(x.Body()) > maxReplayBody {
		// The handler path would send such a body once, without retries.
		return false
	}
	for i := range x.Fields() {
		name, _ := x.Field(i)
		switch name {
		case "Proxy-Connection", "Keep-Alive", "Close", "Te", "Trailer", "Upgrade",
			"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", DeadlineHeader, "Grpc-Timeout":
			return false
		case "Content-Type":
			// A gRPC request's deadline goes out as grpc-timeout too.
			if _, value := x.Field(i); strings.HasPrefix(value, "application/grpc") {
				return false
			}
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

// appendHead appends the outbound head, as forwardDirect would send it, but for the
// deadline field and the empty line that ends it, which each attempt adds with the
// body: the request line and Host as received, the fields but hop-by-hop ones, the
// body's framing and an empty User-Agent, with the editor's edits made, and
// X-Forwarded-For, -Proto and -Host. req shows x to the editor.
func (r *RawRoute) appendHead(b []byte, x *h1.Exchange, req plugins.RawRequest) []byte {
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
		if r.editor != nil && slices.Contains(r.edited, name) {
			continue
		}
		b = append(b, name...)
		b = append(b, ": "...)
		b = append(b, value...)
		b = append(b, "\r\n"...)
	}
	if r.editor != nil {
		b = r.editor.AppendEdited(b, req)
	}
	if n := len(x.Body()); n > 0 {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, "\r\n"...)
	} else if backend.BodyExpected(x.Method()) {
		b = append(b, "Content-Length: 0\r\n"...)
	}
	if peer := x.RemoteHost(); peer != "" {
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
	return b
}

// writeRawText answers x with a short plain-text response, as proxyError.write and
// http.Error write one through a ResponseWriter: reason, when not empty, goes in
// errorHeader, and fields (in wire form) are the filters' response fields; edit,
// when not nil, edits the fields but those the server decides. A HEAD request gets
// the head alone.
func writeRawText(x *h1.Exchange, status int, reason, body string, fields []byte, edit backend.HeadEditor) {
	b := make([]byte, 0, 256+len(fields))
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\n"...)
	start := len(b)
	b = append(b, fields...)
	b = append(b, "Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"...)
	if reason != "" {
		b = append(b, errorHeader+": "...)
		b = append(b, reason...)
		b = append(b, "\r\n"...)
	}
	if edit != nil {
		b = backend.EditFieldsInPlace(b, start, edit)
	}
	b = append(b, x.DateLine()...)
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	if x.Closing() {
		b = append(b, "\r\nConnection: close"...)
	}
	b = append(b, "\r\n\r\n"...)
	if x.Method() != http.MethodHead {
		b = append(b, body...)
	}
	_, _ = x.Write(b)
}
