package h1

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"

	"github.com/switchyard-dev/switchyard/internal/httpsyntax"
)

// protocolError is a request the server refuses before any handler sees it. The
// answer always closes the connection: once a head cannot be parsed, nothing says
// where the next request would start.
type protocolError struct {
	status int
	reason string
}

func (e *protocolError) Error() string { return e.reason }

func badRequest(reason string) *protocolError {
	return &protocolError{status: http.StatusBadRequest, reason: reason}
}

// Refusals shared by every connection; their reasons are stable and go in the body.
var (
	errHeadTooLarge     = &protocolError{http.StatusRequestHeaderFieldsTooLarge, "request header fields too large"}
	errVersion          = &protocolError{http.StatusHTTPVersionNotSupported, "unsupported protocol version"}
	errUnsupportedTE    = &protocolError{http.StatusNotImplemented, "unsupported transfer encoding"}
	errRequestLine      = badRequest("malformed request line")
	errMethod           = badRequest("invalid method")
	errTarget           = badRequest("invalid request target")
	errObsFold          = badRequest("obsolete header line folding")
	errHeaderLine       = badRequest("malformed header line")
	errHeaderValue      = badRequest("invalid header value")
	errMissingHost      = badRequest("missing required Host header")
	errManyHosts        = badRequest("too many Host headers")
	errBadHost          = badRequest("malformed Host header")
	errCLAndTE          = badRequest("both Content-Length and Transfer-Encoding")
	errTEOnHTTP10       = badRequest("Transfer-Encoding on an HTTP/1.0 request")
	errManyTE           = badRequest("more than one Transfer-Encoding header")
	errConflictingCL    = badRequest("conflicting Content-Length values")
	errInvalidCL        = badRequest("invalid Content-Length")
	errBadTrailerHeader = badRequest("invalid Trailer header")
)

// h2Preface is the request line HTTP/2 clients with prior knowledge start with.
const h2Preface = "PRI * HTTP/2.0"

// head is one parsed request head and what the connection needs to frame its body.
type head struct {
	method, target string
	http10         bool
	// contentLength is the body length, or -1 for a chunked body.
	contentLength int64
	chunked       bool
	// close is set when the client asked to close the connection after this request.
	close bool
	// expect100 is set for "Expect: 100-continue"; otherExpect for any other
	// expectation, which the server cannot meet.
	expect100, otherExpect bool
	host                   string
	trailer                http.Header
	// text is the head's text, which the header's strings share; spans locate its
	// fields in it.
	text  string
	spans []lineSpan
}

// lineSpan locates one header field in the head: name and value offsets.
type lineSpan struct {
	nameStart, nameEnd, valueStart, valueEnd int
}

// parser holds scratch space reused across the requests of a connection.
type parser struct {
	spans []lineSpan
}

// findHeadEnd returns the length of the request head at the start of buf, up to and
// including the empty line that ends it, or -1 when buf holds no complete head. Lines
// end with CRLF or, as RFC 9112 section 2.2 lets a recipient accept, a bare LF. An
// empty first line ends at once; parse refuses it. from is where a previous call on a
// shorter prefix of buf stopped (0 at first); next is where the next call may resume,
// so that a head trickling in byte by byte is scanned once.
func findHeadEnd(buf []byte, from int) (end, next int) {
	for i := from; ; {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return -1, i
		}
		line := buf[i : i+j]
		i += j + 1
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			return i, i
		}
	}
}

// parse reads the head held in b (from findHeadEnd). It canonicalises header names
// in place, so b must be the caller's to change. Every string of the result shares
// one allocation of the head's text.
func (p *parser) parse(b []byte, h *head) *protocolError {
	lineEnd := bytes.IndexByte(b, '\n')
	methodEnd, targetEnd, err := h.requestLine(trimCR(b[:lineEnd]))
	if err != nil {
		return err
	}
	p.spans = p.spans[:0]
	for i := lineEnd + 1; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		line := trimCR(b[i : i+j])
		start := i
		i += j + 1
		if len(line) == 0 {
			break
		}
		span, err := headerLine(line, start)
		if err != nil {
			return err
		}
		httpsyntax.Canonicalize(b[span.nameStart:span.nameEnd])
		p.spans = append(p.spans, span)
	}
	text := string(b)
	h.text = text
	h.method = internMethod(text[:methodEnd])
	h.target = text[methodEnd+1 : targetEnd]
	return h.fields(text, p.spans)
}

// requestLine checks "method SP target SP version" and returns where the method and
// the target end.
func (h *head) requestLine(line []byte) (methodEnd, targetEnd int, err *protocolError) {
	method, rest, ok1 := httpsyntax.CutByte(line, ' ')
	target, version, ok2 := httpsyntax.CutByte(rest, ' ')
	if !ok1 || !ok2 || len(method) == 0 || len(target) == 0 {
		return 0, 0, errRequestLine
	}
	if !httpsyntax.IsToken(method) {
		return 0, 0, errMethod
	}
	for _, c := range target {
		if c <= ' ' || c == 0x7f {
			return 0, 0, errTarget
		}
	}
	switch string(version) {
	case "HTTP/1.1":
		h.http10 = false
	case "HTTP/1.0":
		h.http10 = true
	default:
		if len(version) == 8 && bytes.HasPrefix(version, []byte("HTTP/")) && isDigit(version[5]) && version[6] == '.' && isDigit(version[7]) {
			return 0, 0, errVersion
		}
		return 0, 0, errRequestLine
	}
	return len(method), len(method) + 1 + len(target), nil
}

// internMethod returns the standard methods as constants, so that a request kept
// for long does not keep its head's text alive through its method.
func internMethod(m string) string {
	switch m {
	case http.MethodGet:
		return http.MethodGet
	case http.MethodPost:
		return http.MethodPost
	case http.MethodHead:
		return http.MethodHead
	case http.MethodPut:
		return http.MethodPut
	case http.MethodDelete:
		return http.MethodDelete
	case http.MethodOptions:
		return http.MethodOptions
	case http.MethodPatch:
		return http.MethodPatch
	}
	return m
}

// headerLine checks one field line and returns where its name and trimmed value are.
func headerLine(line []byte, offset int) (lineSpan, *protocolError) {
	if line[0] == ' ' || line[0] == '\t' {
		// Obsolete line folding could hide a framing header from one parser and
		// show it to another; RFC 9112 section 5.2 lets a server reject it.
		return lineSpan{}, errObsFold
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !httpsyntax.IsToken(line[:colon]) {
		return lineSpan{}, errHeaderLine
	}
	vs, ve := colon+1, len(line)
	for vs < ve && (line[vs] == ' ' || line[vs] == '\t') {
		vs++
	}
	for ve > vs && (line[ve-1] == ' ' || line[ve-1] == '\t') {
		ve--
	}
	if !httpsyntax.ValidFieldValue(line[vs:ve]) {
		return lineSpan{}, errHeaderValue
	}
	return lineSpan{nameStart: offset, nameEnd: offset + colon, valueStart: offset + vs, valueEnd: offset + ve}, nil
}

// fields applies the framing rules to the fields and reads the ones that govern the
// connection. The rules are those of the connection guard of package server:
// whatever two parsers could frame differently is refused. The header map is not
// built here: a request forwarded from its wire form never needs it (see
// head.buildHeader).
func (h *head) fields(text string, spans []lineSpan) *protocolError {
	h.spans, h.host = spans, ""
	var hosts, clCount, teCount, expects int
	var cl, te, expect string
	var closeToken, keepAliveToken, trailers bool
	for _, s := range spans {
		value := text[s.valueStart:s.valueEnd]
		switch text[s.nameStart:s.nameEnd] {
		case "Host":
			hosts++
			h.host = value
		case "Content-Length":
			clCount++
			if clCount == 1 {
				cl = value
			} else if value != cl {
				return errConflictingCL
			}
		case "Transfer-Encoding":
			teCount++
			te = value
		case "Connection":
			closeToken = closeToken || httpsyntax.ValueHasToken(value, "close")
			keepAliveToken = keepAliveToken || httpsyntax.ValueHasToken(value, "keep-alive")
		case "Expect":
			expects++
			expect = value
		case "Trailer":
			trailers = true
		}
	}
	if err := h.framing(cl, clCount, te, teCount); err != nil {
		return err
	}
	if err := h.semantics(hosts); err != nil {
		return err
	}
	if h.http10 {
		h.close = !keepAliveToken
	} else {
		h.close = closeToken
	}
	h.expect100 = expects == 1 && strings.EqualFold(expect, "100-continue")
	h.otherExpect = expects > 0 && !h.expect100
	h.trailer = nil
	if trailers && h.chunked {
		// As net/http: the declaration moves from the header to Request.Trailer.
		return h.declareTrailers(text, spans)
	}
	return nil
}

// framing decides how the body is delimited, refusing ambiguous combinations.
func (h *head) framing(cl string, clCount int, te string, teCount int) *protocolError {
	h.contentLength, h.chunked = 0, false
	switch {
	case teCount > 0 && clCount > 0:
		return errCLAndTE
	case teCount > 0 && h.http10:
		return errTEOnHTTP10
	case teCount > 1:
		return errManyTE
	case teCount == 1:
		if !strings.EqualFold(te, "chunked") {
			return errUnsupportedTE
		}
		h.chunked, h.contentLength = true, -1
	case clCount > 0:
		n, ok := httpsyntax.ParseContentLength(cl)
		if !ok {
			return errInvalidCL
		}
		h.contentLength = n
	}
	return nil
}

// semantics checks the Host header.
func (h *head) semantics(hosts int) *protocolError {
	switch {
	case hosts > 1:
		return errManyHosts
	case hosts == 0 && !h.http10 && h.method != http.MethodConnect:
		return errMissingHost
	case hosts == 1 && !validHost(h.host):
		return errBadHost
	}
	return nil
}

// buildHeader builds the header map of the parsed head as net/http would: Host
// moves to Request.Host, and for a chunked request Transfer-Encoding and the
// trailer declaration move to Request.TransferEncoding and Request.Trailer. The
// values go in room when they fit, rather than in a slice of their own.
func (h *head) buildHeader(room []string) http.Header {
	spans, text := h.spans, h.text
	header := make(http.Header, len(spans))
	values := room
	if len(spans) > len(room) {
		values = make([]string, len(spans))
	}
	for i, s := range spans {
		name := internName(text[s.nameStart:s.nameEnd])
		switch name {
		case "Host":
			continue
		case "Transfer-Encoding", "Trailer":
			if h.chunked {
				continue
			}
		}
		value := text[s.valueStart:s.valueEnd]
		values[i] = value
		if vv, ok := header[name]; ok {
			header[name] = append(vv, value)
		} else {
			header[name] = values[i : i+1 : i+1]
		}
	}
	return header
}

// declareTrailers records the trailer fields a chunked request announces, as
// net/http does: their names are keys of Request.Trailer whose values arrive with
// the end of the body. Framing fields may not be trailers.
func (h *head) declareTrailers(text string, spans []lineSpan) *protocolError {
	h.trailer = http.Header{}
	for _, s := range spans {
		if text[s.nameStart:s.nameEnd] != "Trailer" {
			continue
		}
		v := text[s.valueStart:s.valueEnd]
		for name := range strings.SplitSeq(v, ",") {
			name = http.CanonicalHeaderKey(strings.TrimSpace(name))
			switch name {
			case "":
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return errBadTrailerHeader
			default:
				h.trailer[name] = nil
			}
		}
	}
	return nil
}

// requestURL parses the request target as net/http does: the authority alone for
// CONNECT, else origin-form, absolute-form or "*". The common case, an origin-form
// target with nothing to unescape, is written to common, which is returned.
func (h *head) requestURL(common *url.URL) (*url.URL, *protocolError) {
	if h.method == http.MethodConnect && !strings.HasPrefix(h.target, "/") {
		// An authority: checked as the host of a URL, as net/http does.
		u, err := url.ParseRequestURI("http://" + h.target)
		if err != nil {
			return nil, errTarget
		}
		u.Scheme = ""
		return u, nil
	}
	if h.target[0] == '/' && strings.IndexByte(h.target, '%') < 0 {
		// The common case needs no unescaping.
		path, query, hasQuery := strings.Cut(h.target, "?")
		*common = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
		if !strings.Contains(h.target, "#") && common.EscapedPath() == path {
			// The path reads back as sent, so url.Parse would keep no RawPath.
			return common, nil
		}
	}
	u, err := url.ParseRequestURI(h.target)
	if err != nil {
		return nil, errTarget
	}
	return u, nil
}

// commonNames interns the header names most requests carry, so that the header map
// holds shared strings rather than slices of each request's text.
var commonNames = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{
		"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control",
		"Connection", "Content-Length", "Content-Type", "Cookie", "Expect", "Host",
		"If-Modified-Since", "If-None-Match", "Origin", "Referer", "Te", "Trailer",
		"Transfer-Encoding", "Upgrade", "User-Agent", "X-Forwarded-For",
		"X-Forwarded-Host", "X-Forwarded-Proto", "X-Request-Id", "Traceparent",
		"Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Protocol",
		"Sec-Websocket-Extensions", "Grpc-Timeout", "X-Switchyard-Deadline-Ms",
	} {
		m[n] = n
	}
	return m
}()

func internName(name string) string {
	if n, ok := commonNames[name]; ok {
		return n
	}
	return name
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// validHost reports whether a Host header value holds only characters a host and
// port can have (as net/http checks: no whitespace, controls or delimiters that
// would let it be read as more than an authority).
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		if !hostChars[h[i]] {
			return false
		}
	}
	return true
}

var hostChars = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 0x80 || httpsyntax.IsTokenChar(byte(c))
	}
	for _, c := range "[]:@()!$&'*+,;=%" {
		t[c] = true
	}
	return t
}()

// trimCR removes one trailing CR, as a CRLF line ending leaves it.
func trimCR(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\r' {
		return b[:len(b)-1]
	}
	return b
}
