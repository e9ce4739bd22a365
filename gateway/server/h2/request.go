package h2

import (
	"errors"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// pseudo holds a request's pseudo-header fields.
type pseudo struct {
	method, scheme, authority, path, protocol string
}

// buildRequest validates a request header block (RFC 9113 §8.2 and §8.3)
// and fills st.req from it. A malformed request is a stream PROTOCOL_ERROR
// and never reaches the handler.
func (c *conn) buildRequest(st *stream, f *http2.MetaHeadersFrame) error {
	bad := func(why string) error {
		return http2.StreamError{StreamID: st.id, Code: errCodeProtocol, Cause: errors.New(why)}
	}
	var ps pseudo
	for _, hf := range f.PseudoFields() {
		// The Framer has rejected unknown and duplicate pseudo-headers and
		// pseudo-headers after regular fields.
		switch hf.Name {
		case ":method":
			ps.method = hf.Value
		case ":scheme":
			ps.scheme = hf.Value
		case ":authority":
			ps.authority = hf.Value
		case ":path":
			ps.path = hf.Value
		case ":protocol":
			// We do not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL.
			return bad(":protocol not enabled")
		default:
			return bad("response pseudo-header in request")
		}
	}
	if err := checkPseudo(&ps); err != "" {
		return bad(err)
	}
	header, why := c.buildHeader(st, f.RegularFields())
	if why != "" {
		return bad(why)
	}
	// The request is made with its context: made without and given one with
	// WithContext, it would be made twice.
	r := (&http.Request{}).WithContext(&st.ctx)
	r.Method = ps.method
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
	r.Header = header
	r.RemoteAddr = c.remoteAddr
	// Unlike net/http, which sets r.TLS only for :scheme https, a TLS
	// connection's state is always given: the gateway's misdirected-request
	// and client-certificate checks run only when r.TLS is set, and a
	// client must not skip them by sending :scheme http over TLS.
	r.TLS = c.tlsState
	r.Host = ps.authority
	if r.Host == "" {
		r.Host = header.Get("Host")
	}
	if ps.method == http.MethodConnect {
		r.URL = &url.URL{Host: ps.authority}
		r.RequestURI = ps.authority
	} else {
		r.RequestURI = ps.path
		if ps.path == "*" {
			r.URL = &url.URL{Path: "*"}
		} else {
			u, err := url.ParseRequestURI(ps.path)
			if err != nil {
				return bad("bad :path")
			}
			r.URL = u
		}
	}
	if why := c.setBody(st, r, f.StreamEnded()); why != "" {
		return bad(why)
	}
	// Like net/http, hide what this server has taken care of: the 100
	// (Continue) it sends on the first body read, and the announced trailer
	// names, now the keys of r.Trailer.
	if st.needsContinue || httpguts.HeaderValuesContainsToken(header["Expect"], "100-continue") {
		delete(header, "Expect")
	}
	r.Trailer = declaredTrailers(header)
	delete(header, "Trailer")
	st.req = r
	return nil
}

// checkPseudo applies RFC 9113 §8.3.1 and §8.5 to a request's
// pseudo-headers and returns why they are malformed, or "".
func checkPseudo(ps *pseudo) string {
	if ps.method == "" {
		return "missing :method"
	}
	if !httpguts.ValidHeaderFieldName(ps.method) {
		return "bad :method"
	}
	if ps.method == http.MethodConnect {
		if ps.scheme != "" || ps.path != "" {
			return "CONNECT with :scheme or :path"
		}
		if ps.authority == "" {
			return "CONNECT without :authority"
		}
		return ""
	}
	if ps.scheme != "http" && ps.scheme != "https" || ps.path == "" {
		return "missing or bad :scheme, or missing :path"
	}
	if strings.IndexByte(ps.authority, '@') >= 0 {
		// RFC 9113 §8.3.1: no userinfo in http and https authorities.
		return "userinfo in :authority"
	}
	if ps.path[0] != '/' && !(ps.path == "*" && ps.method == http.MethodOptions) {
		return "bad :path"
	}
	return ""
}

// buildHeader validates the regular fields and collects them into a header
// map with canonical keys; cookie fields are joined with "; ".
func (c *conn) buildHeader(st *stream, fields []hpack.HeaderField) (http.Header, string) {
	h := make(http.Header, len(fields))
	// One backing array holds every value, so a header costs one allocation
	// for its values rather than one per field.
	vals := make([]string, 0, len(fields))
	var cookies []string
	for _, hf := range fields {
		if !validRegularField(hf) {
			return nil, "bad header field " + strconv.Quote(hf.Name)
		}
		switch hf.Name {
		case "te":
			if hf.Value != "trailers" {
				return nil, "te other than trailers"
			}
		case "content-length":
			n, ok := parseContentLength(hf.Value)
			if !ok || (st.declLen >= 0 && st.declLen != n) {
				return nil, "bad content-length"
			}
			st.declLen = n
		case "cookie":
			cookies = append(cookies, hf.Value)
			continue
		}
		key := canonicalKey(hf.Name)
		if old, ok := h[key]; ok {
			h[key] = append(old, hf.Value)
			continue
		}
		vals = append(vals, hf.Value)
		h[key] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	if len(cookies) > 0 {
		h["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	return h, ""
}

// validRegularField reports whether a regular field may appear in a request
// (RFC 9113 §8.2.1, §8.2.2). Names are lowercase tokens (the Framer also
// checks this); connection-specific fields are not allowed.
func validRegularField(hf hpack.HeaderField) bool {
	if !httpguts.ValidHeaderFieldValue(hf.Value) || hf.Name == "" {
		return false
	}
	for i := 0; i < len(hf.Name); i++ {
		b := hf.Name[i]
		if b >= 'A' && b <= 'Z' {
			return false
		}
	}
	if !httpguts.ValidHeaderFieldName(hf.Name) {
		return false
	}
	switch hf.Name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		return false
	}
	return true
}

// parseContentLength parses a content-length value: digits only.
func parseContentLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(v[i]-'0')
	}
	return n, true
}

// setBody sets the request's body and ContentLength, returning why the
// request is malformed, or "".
func (c *conn) setBody(st *stream, r *http.Request, ended bool) string {
	if ended {
		if st.declLen > 0 {
			return "content-length without body"
		}
		st.remoteClosed.Store(true)
		st.bodyErr = nil
		r.Body = http.NoBody
		r.ContentLength = 0
		return ""
	}
	r.Body = &st.body
	r.ContentLength = st.declLen
	st.needsContinue = httpguts.HeaderValuesContainsToken(r.Header["Expect"], "100-continue")
	return ""
}

// declaredTrailers returns the trailer map announced by the Trailer header,
// with nil values to be filled when trailers arrive.
func declaredTrailers(h http.Header) http.Header {
	var t http.Header
	for _, v := range h["Trailer"] {
		for _, name := range strings.Split(v, ",") {
			name = textproto.TrimString(name)
			if name == "" {
				continue
			}
			key := http.CanonicalHeaderKey(name)
			switch key {
			case "Transfer-Encoding", "Trailer", "Content-Length":
				continue
			}
			if t == nil {
				t = make(http.Header)
			}
			t[key] = nil
		}
	}
	return t
}

// canonicalKey canonicalizes a lowercase field name, without allocating for
// common ones.
func canonicalKey(name string) string {
	if k, ok := commonCanonical[name]; ok {
		return k
	}
	return textproto.CanonicalMIMEHeaderKey(name)
}

// commonCanonical and commonLower map between the wire (lowercase) and
// canonical forms of common field names.
var commonCanonical, commonLower = func() (map[string]string, map[string]string) {
	names := []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language",
		"Accept-Ranges", "Age", "Access-Control-Allow-Origin", "Allow",
		"Authorization", "Cache-Control", "Content-Disposition",
		"Content-Encoding", "Content-Language", "Content-Length",
		"Content-Location", "Content-Range", "Content-Type", "Cookie", "Date",
		"Etag", "Expect", "Expires", "From", "Host", "If-Match",
		"If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since",
		"Last-Modified", "Link", "Location", "Max-Forwards", "Origin",
		"Proxy-Authenticate", "Proxy-Authorization", "Range", "Referer",
		"Refresh", "Retry-After", "Server", "Set-Cookie",
		"Strict-Transport-Security", "Te", "Trailer", "User-Agent", "Vary",
		"Via", "Www-Authenticate", "X-Forwarded-For", "X-Forwarded-Host",
		"X-Forwarded-Proto", "X-Request-Id", "Traceparent", "Tracestate",
	}
	canon := make(map[string]string, len(names))
	lower := make(map[string]string, len(names))
	for _, n := range names {
		l := strings.ToLower(n)
		canon[l] = n
		lower[n] = l
	}
	return canon, lower
}()

// lowerKey returns the wire form of a header key.
func lowerKey(k string) string {
	if l, ok := commonLower[k]; ok {
		return l
	}
	for i := 0; i < len(k); i++ {
		if b := k[i]; b >= 'A' && b <= 'Z' {
			return strings.ToLower(k)
		}
	}
	return k
}
