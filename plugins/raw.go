package plugins

import (
	"context"
	"iter"
	"net/http"
	"strconv"

	"github.com/switchyard-dev/switchyard/gateway/reqctx"
)

// Over HTTP/1.1 the data plane forwards the requests of a rule from the wire form
// the server parsed, without building an http.Request, when every filter of the rule
// can act on that form (see proxy.RawRoute). A filter can when the handler its
// middleware returns is also a RawStage; the data plane then calls FilterRaw in place
// of ServeHTTP for such requests, and never both for one request.

// RawStage is a filter's handler that can also act on a request in its wire form.
// A stage that edits heads (RawRequestEditor, RawResponseEditor) does so through
// the data plane, not in FilterRaw: whatever runs raw stages must make those edits,
// or leave the rule to its handler.
type RawStage interface {
	http.Handler
	// FilterRaw does to req what ServeHTTP does to an http.Request: it returns nil
	// to pass the request on, having added to fields the response fields
	// ServeHTTP sets (they go on whatever answer the client gets); or the answer
	// the client gets instead, in which case fields holds that answer's fields
	// besides those Answer describes. It records its decisions in info, as
	// ServeHTTP does in the request's Info.
	FilterRaw(req RawRequest, info *reqctx.Info, fields *ResponseFields) *Answer
	// Next is the handler ServeHTTP passes requests on to.
	Next() http.Handler
}

// RawRequest is the head of a request in its wire form. A raw request carries
// neither X-Forwarded-For nor Forwarded (the data plane serves such requests through
// the handlers), so the client is always the TCP peer.
type RawRequest interface {
	// Context ends when the client goes away or the request's deadline passes.
	Context() context.Context
	// RemoteAddr is the TCP peer's address, as http.Request.RemoteAddr.
	RemoteAddr() string
	// RemoteIP is the TCP peer's IP address in canonical form (without a zone,
	// an IPv4-mapped address unmapped), or RemoteAddr's host when that is not an
	// IP address: the client's address, as a request without X-Forwarded-For has
	// it. The data plane works it out once for all the requests of a connection.
	RemoteIP() string
	// HeaderValue returns the first value of the field with the canonical name
	// (as http.CanonicalHeaderKey gives it), or "", as http.Header.Get does. It
	// shows the edits of the filters before the one asking (see RawRequestEditor).
	HeaderValue(canonicalName string) string
	// Fields is how many field lines the head had as received.
	Fields() int
	// Field returns the canonical name and the value of the i'th field line as
	// received, in the order received, before any filter's edits.
	Field(i int) (name, value string)
}

// RawRequestEditor is a RawStage whose filter edits the request's header fields,
// the same edits for every request (a RequestHeaderModifier). Its FilterRaw changes
// nothing: the data plane makes the edits as it writes the head it sends on, taking
// the fields EditedNames names out of the head as received and appending those
// AppendEdited gives in their place. Filters after it see the edited values through
// RawRequest.HeaderValue.
type RawRequestEditor interface {
	RawStage
	// EditedNames are the canonical names of the fields the edits may change.
	EditedNames() []string
	// AppendEdited appends to b, in wire form ("Name: value\r\n" each), the
	// fields named in EditedNames that req has after the edits. It reads req's
	// fields as received, through Fields and Field.
	AppendEdited(b []byte, req RawRequest) []byte
	// EditedValue is what HeaderValue returns after the edits for canonicalName,
	// one of EditedNames, reading req's fields as AppendEdited does.
	EditedValue(req RawRequest, canonicalName string) string
}

// RawResponseEditor is a RawStage whose filter edits the header fields of the
// responses that reach the client through it, the same edits for every response (a
// ResponseHeaderModifier): the backend's, the gateway's own error answers, and the
// answers of the filters after it, but not interim (1xx) responses. Its FilterRaw
// changes nothing: the data plane makes the edits as it writes a response's head.
type RawResponseEditor interface {
	RawStage
	// ResponseEditedNames are the canonical names of the fields the edits may
	// change.
	ResponseEditedNames() []string
	// AppendEditedResponse appends to b the field lines of block (a response head's
	// field lines, each ending in CRLF, their names in any case) after the edits:
	// the lines of the names the edits leave alone as they are, then the edited
	// ones.
	AppendEditedResponse(b, block []byte) []byte
	// EditHeader makes the edits on the header of a response about to be written
	// through a ResponseWriter.
	EditHeader(h http.Header)
}

// Answer is a plain-text answer a raw stage gives in place of the backend's, as
// http.Error writes one: Content-Type "text/plain; charset=utf-8",
// X-Content-Type-Options "nosniff", and Body.
type Answer struct {
	Status int
	Body   string
}

// ResponseFields are header fields to add to a response, kept in their wire form
// ("Name: value\r\n" each) so that adding them costs no allocation per request.
type ResponseFields struct {
	b []byte
}

// Set adds a field; name must be canonical and not repeat an earlier one.
func (f *ResponseFields) Set(name, value string) {
	f.b = append(f.b, name...)
	f.b = append(f.b, ": "...)
	f.b = append(f.b, value...)
	f.b = append(f.b, "\r\n"...)
}

// SetInt adds a field with a decimal integer value, as Set does.
func (f *ResponseFields) SetInt(name string, value int64) {
	f.b = append(f.b, name...)
	f.b = append(f.b, ": "...)
	f.b = strconv.AppendInt(f.b, value, 10)
	f.b = append(f.b, "\r\n"...)
}

// SetLines adds fields already in their wire form, "Name: value\r\n" each, as Set
// and SetInt write them: for a filter that renders a field once for many responses.
func (f *ResponseFields) SetLines(lines string) { f.b = append(f.b, lines...) }

// Wire returns the fields in their wire form, each line ending in CRLF.
func (f *ResponseFields) Wire() []byte { return f.b }

// Len is the length of the fields' wire form.
func (f *ResponseFields) Len() int { return len(f.b) }

// Reset empties the fields, keeping their storage.
func (f *ResponseFields) Reset() { f.b = f.b[:0] }

// All yields the fields as name and value, in the order they were set, for answers
// written through an http.ResponseWriter.
func (f *ResponseFields) All() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		rest := f.b
		for len(rest) > 0 {
			end := 0
			for end+1 < len(rest) && (rest[end] != '\r' || rest[end+1] != '\n') {
				end++
			}
			line := rest[:end]
			rest = rest[min(end+2, len(rest)):]
			for i := 0; i+1 < len(line); i++ {
				if line[i] == ':' && line[i+1] == ' ' {
					if !yield(string(line[:i]), string(line[i+2:])) {
						return
					}
					break
				}
			}
		}
	}
}
