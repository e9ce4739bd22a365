package backend

import (
	"bytes"
	"context"
	"errors"
	"iter"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/internal/httpsyntax"
)

// RawClient forwards requests given in their wire form over the fast client's
// connections, and relays the answers to a client byte for byte, with the head's
// hop-by-hop fields taken out. It serves only what it can relay that way: requests
// given whole (a body framed by Content-Length follows the head), answered by a
// response framed by Content-Length (or without a body). Anything else it reports
// as errNotRelayable before the client has been written to.
type RawClient struct {
	t *fastTransport
}

// RawClientFor returns the raw client of a transport Manager.Transport returned,
// or nil when that transport is not the fast client or would not send requests itself
// (connections per endpoint are capped).
func RawClientFor(rt http.RoundTripper) *RawClient {
	t, ok := rt.(*fastTransport)
	if !ok || t.opts.MaxConnsPerHost > 0 {
		return nil
	}
	return &RawClient{t: t}
}

// RawSink is the client a response is relayed to.
type RawSink interface {
	// Write writes to the client as is.
	Write(p []byte) (int, error)
	// DateLine is the "Date: ...\r\n" line to add to a response that has none.
	DateLine() []byte
	// Closing reports whether the client's connection closes after the response.
	Closing() bool
}

// RawResult is how the exchange Forward made went, up to the final response head.
type RawResult struct {
	// Status is the backend's final status code, or 0 when it gave none.
	Status int
	// Response is set for a final response the raw client does not relay itself
	// (a chunked body, say): its body streams from the connection, which goes back
	// to the pool once it is read to its end, as with RoundTrip. The caller relays it
	// and closes its body. Without it, a Status is relayed by Relay.
	Response *http.Response
	// Wrote is set once an interim response was written to the client.
	Wrote bool
	// ClientFailed is set when writing to the client failed (it went away); Err
	// is then that failure, which says nothing of the backend.
	ClientFailed bool
	// Err is why the exchange failed before a final response head, or nil. Its
	// kinds are those of RoundTrip's errors: a *net.OpError with Op "dial" for a
	// connect failure, net.Error timeouts, and the context's error when it ended the
	// request.
	Err error

	// What Relay needs: the connection, whose buffer holds the head at its read
	// position, the head's length and what scanRawHead read of it.
	cc      *clientConn
	headLen int
	rh      rawHead
}

// Forward sends the request req, its head and its body framed by Content-Length,
// to addr, relays interim responses to sink, and returns once the final response
// head has arrived, so that the caller can count the answer before the client sees
// it; Relay then sends it. head is set for HEAD requests, whose responses have no
// body whatever their framing says; replayable for requests that may be sent again
// when a pooled connection turns out to have been closed by the backend (see
// Replayable); body for requests that carry one. A request with a body is sent on an
// idle connection only once that connection is seen still open and silent, as
// RoundTrip sends one. The exchange ends when ctx does.
func (rc *RawClient) Forward(ctx context.Context, addr string, req []byte, head, replayable, body bool, sink RawSink) RawResult {
	if err := ctx.Err(); err != nil {
		return RawResult{Err: err}
	}
	for {
		cc, err := rc.t.getConn(ctx, addr, body)
		if err != nil {
			return RawResult{Err: err}
		}
		res := cc.forwardRaw(ctx, req, head, body, sink)
		if res.Err != nil && !res.Wrote && cc.reused && cc.nothingRead && replayable && ctx.Err() == nil {
			// The backend closed an idle connection just as it was taken; the
			// request never reached it.
			continue
		}
		return res
	}
}

// Replayable reports whether a request given whole may be sent again after a
// stale connection failed it, by the rule of RoundTrip: its method is safe to
// repeat (RFC 9110 section 9.2.2), or it carries an idempotency key.
func Replayable(method string, hasIdempotencyKey bool) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return hasIdempotencyKey
}

// forwardRaw makes one raw exchange on cc, up to the final response head. On
// failure the connection is closed. body is set when req carries a body, whose
// write may wait on a backend that does not read: the request's context is watched
// from before the write then, as for RoundTrip's bodies.
func (cc *clientConn) forwardRaw(ctx context.Context, req []byte, head, body bool, sink RawSink) RawResult {
	cc.nothingRead = true
	cc.ctx = ctx
	if cc.outgrown && len(cc.rbuf) < largeReadBuffer && cc.r == cc.w {
		// As in roundTrip: a response that did not fit the buffer moves the
		// connection to the larger one.
		cc.rbuf, cc.r, cc.w = make([]byte, largeReadBuffer), 0, 0
	}
	cc.outgrown = false
	if body {
		cc.watch(true)
	}
	var res RawResult
	var err error
	if cc.rawConn != nil {
		_, err = cc.rawConn.Write(req)
	} else {
		_, err = cc.conn.Write(req)
	}
	if err != nil {
		res.Err = cc.fail(ctx, err)
		return res
	}
	if d := cc.t.opts.ResponseHeaderTimeout; d > 0 {
		cc.headerDeadline = time.Now().Add(d)
		_ = cc.conn.SetReadDeadline(earliest(cc.ctxDeadline, cc.headerDeadline))
	}
	if cc.yieldFirst {
		// As in roundTrip: the answer cannot be there yet.
		runtime.Gosched()
	}
	for {
		end, err := cc.readHead()
		if err != nil {
			res.Err = cc.fail(ctx, err)
			return res
		}
		b := cc.rbuf[cc.r : cc.r+end]
		if isInterim(b) {
			if err := cc.relayInterim(end, sink, &res); err != nil {
				res.Err = cc.fail(ctx, err)
				return res
			}
			continue
		}
		rh, err := scanRawHead(b, head)
		if err == errNotRelayable {
			return cc.fallBack(ctx, end, head, res)
		}
		if err != nil {
			res.Err = cc.fail(ctx, err)
			return res
		}
		cc.headArrived()
		res.Status, res.cc, res.headLen, res.rh = rh.status, cc, end, rh
		return res
	}
}

// Relay sends the final response Forward read, head and body, to sink, and gives
// the connection back to the pool, or closes it. fields, header fields in their wire
// form, go on the head ahead of the backend's. It is called once, for a result with a
// Status and neither Response nor Err, unless Discard is. It returns how many bytes
// of the body reached sink, the first error, and whether it was the client's
// (clientFailed).
func (r *RawResult) Relay(sink RawSink, fields []byte) (written int64, clientFailed bool, err error) {
	return r.RelayEdited(sink, fields, nil)
}

// clientHead is appendClientHead into cc's write buffer. An editor is a plugin's
// code: should it panic, the connection, which belongs to no pool and no result
// any more, is closed as the panic goes on.
func (cc *clientConn) clientHead(b []byte, rh *rawHead, fields []byte, sink RawSink, edit HeadEditor) []byte {
	if edit == nil {
		return appendClientHead(cc.wbuf[:0], b, rh, fields, sink, edit)
	}
	done := false
	defer func() {
		if !done {
			_ = cc.fail(cc.ctx, errEditorPanicked)
		}
	}()
	out := appendClientHead(cc.wbuf[:0], b, rh, fields, sink, edit)
	done = true
	return out
}

// errEditorPanicked is why a connection whose response editor panicked is closed.
var errEditorPanicked = errors.New("response editor panicked")

// HeadEditor edits the field lines of a response head (see
// plugins.RawResponseEditor).
type HeadEditor interface {
	// AppendEditedResponse appends to b the field lines of block after the edits.
	AppendEditedResponse(b, block []byte) []byte
}

// RelayEdited is Relay, with the head's fields (those of fields and the backend's
// that go on) edited by edit, when not nil.
func (r *RawResult) RelayEdited(sink RawSink, fields []byte, edit HeadEditor) (written int64, clientFailed bool, err error) {
	cc := r.cc
	r.cc = nil
	b := cc.rbuf[cc.r : cc.r+r.headLen]
	out := cc.clientHead(b, &r.rh, fields, sink, edit)
	cc.r += r.headLen
	out, written, clientFailed, err = cc.relayBody(out, r.rh.length, sink)
	cc.wbuf = out[:0]
	if err != nil {
		_ = cc.fail(cc.ctx, err)
		return written, clientFailed, err
	}
	cc.release()
	if r.rh.close || cc.r != cc.w || cc.canceled.Load() {
		_ = cc.conn.Close()
	} else {
		cc.reused = true
		cc.t.putIdle(cc)
	}
	return written, false, nil
}

// Discard drops the final response Forward read, in place of Relay, when the request
// will be tried again. As closing a response body does on the handler path, a
// connection whose buffer holds the whole response goes back to the pool; any other
// is closed, its body unread.
func (r *RawResult) Discard() {
	if r.Response != nil {
		_ = r.Response.Body.Close()
		r.Response = nil
		return
	}
	cc := r.cc
	if cc == nil {
		return
	}
	r.cc = nil
	if r.rh.close || int64(cc.w-cc.r) < int64(r.headLen)+r.rh.length {
		_ = cc.fail(cc.ctx, errDiscarded)
		return
	}
	cc.r += r.headLen + int(r.rh.length)
	cc.release()
	if cc.r != cc.w || cc.canceled.Load() {
		_ = cc.conn.Close()
		return
	}
	cc.reused = true
	cc.t.putIdle(cc)
}

// errDiscarded is why a connection whose response was discarded is closed.
var errDiscarded = errors.New("response discarded for a retry")

// isInterim reports whether a response head is an interim (1xx) one other than 101
// Switching Protocols, which the request did not ask for.
func isInterim(b []byte) bool {
	return len(b) >= 12 && string(b[:7]) == "HTTP/1." && '0' <= b[7] && b[7] <= '9' && b[8] == ' ' &&
		b[9] == '1' && string(b[9:12]) != "101"
}

// relayInterim writes the interim response of end bytes at the buffer's read
// position to sink as the server writes one a handler sends: the status line with
// the server's reason, and the fields as they came. It refuses a head the parser of
// RoundTrip would.
func (cc *clientConn) relayInterim(end int, sink RawSink, res *RawResult) error {
	b := cc.rbuf[cc.r : cc.r+end]
	code, ok := parseStatus(b[9:12])
	if !ok || (len(b) > 12 && b[12] != ' ' && b[12] != '\r' && b[12] != '\n') {
		return errMalformedResponse
	}
	out := appendStatusLine(cc.wbuf[:0], code)
	_, rest, _ := httpsyntax.CutByte(b, '\n')
	for line := range headFieldLines(rest) {
		name, _, ok := httpsyntax.CutByte(line, ':')
		if !ok || !httpsyntax.IsToken(name) {
			return errMalformedResponse
		}
		start := len(out)
		out = append(out, line...)
		for i := start; i < len(out); i++ {
			if out[i] == '\r' {
				// As the server's writer does with a value's line breaks.
				out[i] = ' '
			}
		}
		out = append(out, "\r\n"...)
	}
	out = append(out, "\r\n"...)
	cc.r += end
	res.Wrote = true
	_, err := sink.Write(out)
	cc.wbuf = out[:0]
	if err != nil {
		res.ClientFailed = true
	}
	return err
}

// appendStatusLine appends an HTTP/1.1 status line with the standard reason, or
// "status code N" for a code without one, as the server writes it. The lines of
// the codes with a standard reason are written once, at start.
func appendStatusLine(b []byte, code int) []byte {
	if code >= 0 && code < len(standardStatusLines) {
		if line := standardStatusLines[code]; line != "" {
			return append(b, line...)
		}
	}
	return formatStatusLine(b, code)
}

// standardStatusLines are the status lines of the codes with a standard reason,
// indexed by code.
var standardStatusLines = func() (lines [600]string) {
	for code := range lines {
		if http.StatusText(code) != "" {
			lines[code] = string(formatStatusLine(nil, code))
		}
	}
	return lines
}()

// formatStatusLine is appendStatusLine, formatting the line.
func formatStatusLine(b []byte, code int) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	if text := http.StatusText(code); text != "" {
		b = append(b, text...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(code), 10)
	}
	return append(b, "\r\n"...)
}

// fallBack parses the final response head of end bytes in the buffer as RoundTrip
// does, for the caller to relay: its body streams from the connection.
func (cc *clientConn) fallBack(ctx context.Context, end int, head bool, res RawResult) RawResult {
	b := cc.rbuf[cc.r : cc.r+end]
	cc.r += end
	r, err := parseResponseHead(b)
	if err == nil && r.res.StatusCode < 200 {
		// 101 switches to a protocol nobody asked for; other interim responses the
		// raw client relays only in the plain form scanRawHead takes.
		err = errMalformedResponse
	}
	if err != nil {
		res.Err = cc.fail(ctx, err)
		return res
	}
	cc.headArrived()
	if err := cc.frame(r, head, false); err != nil {
		res.Err = cc.fail(ctx, err)
		return res
	}
	res.Status, res.Response = r.res.StatusCode, &r.res
	return res
}

// relayBody writes out (the client's head) with the first n bytes of body after it,
// reading what the buffer lacks from the backend: into the connection's buffer when
// it holds the rest, else into a larger pooled one, as the handler path copies
// bodies. It never reads past the body. It returns the first error, and whether it
// was the client's (clientFailed).
func (cc *clientConn) relayBody(out []byte, n int64, sink RawSink) (_ []byte, written int64, clientFailed bool, err error) {
	take := min(int64(cc.w-cc.r), n)
	out = append(out, cc.rbuf[cc.r:cc.r+int(take)]...)
	cc.r += int(take)
	n -= take
	if _, err := sink.Write(out); err != nil {
		return out, 0, true, err
	}
	written = take
	if n == 0 {
		return out, written, false, nil
	}
	cc.outgrown = true
	cc.r, cc.w = 0, 0
	buf := cc.rbuf
	if n > int64(len(buf)) {
		pooled := relayBuffers.Get().(*[relayBufferSize]byte)
		defer relayBuffers.Put(pooled)
		buf = pooled[:]
	}
	for n > 0 {
		m, err := cc.read(buf[:min(int64(len(buf)), n)])
		if m == 0 {
			return out, written, false, eofInBody(err)
		}
		cc.nothingRead = false
		if _, err := sink.Write(buf[:m]); err != nil {
			return out, written, true, err
		}
		written += int64(m)
		n -= int64(m)
	}
	return out, written, false, nil
}

// relayBufferSize is the size of the buffers long bodies are relayed through, that
// of the handler path's copy buffers.
const relayBufferSize = 32 << 10

// relayBuffers recycles relay buffers; it stores array pointers, so that putting
// one back does not allocate.
var relayBuffers = sync.Pool{New: func() any { return new([relayBufferSize]byte) }}

// rawHead is what relaying a response needs of its head.
type rawHead struct {
	status int
	// length is the body's length; close is set when the backend's connection
	// cannot carry another request after this response; hasDate when the head has
	// a Date field.
	length  int64
	close   bool
	hasDate bool
	// connection holds the values of the first connections Connection fields,
	// which name more fields to take out.
	connection  [maxConnectionFields][]byte
	connections int
	// verbatim is set when the field lines can go to the client as they are, in
	// one copy: each ends in CRLF, and none is hop-by-hop (Connection included).
	// fieldsAt is where they start in the head, after the status line.
	verbatim bool
	fieldsAt int
}

// maxConnectionFields is how many Connection fields a relayed head may have; the
// rare head with more goes to the parser of RoundTrip.
const maxConnectionFields = 4

// errNotRelayable reports a response head the raw client leaves to the parser of
// RoundTrip: anything but the plain case.
var errNotRelayable = errors.New("backend response cannot be relayed as is")

// scanRawHead reads the status line and framing of a final response head. The raw
// client relays final responses of HTTP/1.1 framed by one valid Content-Length, or
// without a body; it leaves everything else to the parser of RoundTrip
// (errNotRelayable): chunked or close-delimited bodies, HTTP/1.0, 101, field lines
// that parser would refuse or fix, and heads whose relay the server's writer would
// change (a body without a type, which it sniffs; a 204 or 304 with a length).
func scanRawHead(b []byte, headRequest bool) (rawHead, error) {
	var rh rawHead
	line, rest, _ := httpsyntax.CutByte(b, '\n')
	rh.fieldsAt = len(line) + 1
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if len(line) < 12 || string(line[:9]) != "HTTP/1.1 " || (len(line) > 12 && line[12] != ' ') {
		return rh, errNotRelayable
	}
	code, ok := parseStatus(line[9:12])
	if !ok || code < 200 {
		return rh, errNotRelayable
	}
	rh.status = code
	clCount, hasType := 0, false
	var cl []byte
	// crlfLength is what the field lines measure if each ends in CRLF.
	crlfLength, hopByHop := 0, false
	for line := range headFieldLines(rest) {
		crlfLength += len(line) + 2
		name, value, ok := httpsyntax.CutByte(line, ':')
		if !ok || !httpsyntax.IsToken(name) {
			return rh, errNotRelayable
		}
		hopByHop = hopByHop || hopByHopName(name)
		value = trimOWS(value)
		if !httpsyntax.ValidFieldValue(value) {
			return rh, errNotRelayable
		}
		switch {
		case httpsyntax.EqualFold(name, "Content-Length"):
			clCount++
			cl = value
		case httpsyntax.EqualFold(name, "Transfer-Encoding"):
			return rh, errNotRelayable
		case httpsyntax.EqualFold(name, "Connection"):
			if namesKeptField(value) {
				// The server's writer decides what taking those out means.
				return rh, errNotRelayable
			}
			if rh.connections == maxConnectionFields {
				return rh, errNotRelayable
			}
			rh.connection[rh.connections] = value
			rh.connections++
			if tokenIn(value, "close") {
				rh.close = true
			}
		case httpsyntax.EqualFold(name, "Date"):
			rh.hasDate = true
		case httpsyntax.EqualFold(name, "Content-Type"):
			hasType = true
		}
	}
	rh.verbatim = !hopByHop && rh.connections == 0 && bytes.HasSuffix(b, []byte("\r\n")) &&
		crlfLength == len(b)-rh.fieldsAt-2
	var length int64
	if clCount == 1 {
		// The length is checked even where it frames nothing, as the parser of
		// RoundTrip does.
		if length, ok = httpsyntax.ParseContentLength(string(cl)); !ok {
			return rh, errNotRelayable
		}
	}
	noBody := code == http.StatusNoContent || code == http.StatusNotModified
	switch {
	case clCount > 1 || (noBody && clCount > 0):
		// The server's writer decides what such heads say of the length.
		return rh, errNotRelayable
	case headRequest || noBody:
		rh.length = 0
	case clCount == 0:
		return rh, errNotRelayable
	case length > 0 && !hasType:
		// The server's writer sniffs a type for a body without one.
		return rh, errNotRelayable
	default:
		rh.length = length
	}
	return rh, nil
}

// headFieldLines yields the field lines of a head after its status line, without their
// line endings (CRLF or a bare LF), up to the empty line that ends the head.
func headFieldLines(rest []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for len(rest) > 0 {
			var line []byte
			line, rest, _ = httpsyntax.CutByte(rest, '\n')
			line = bytes.TrimSuffix(line, []byte{'\r'})
			if len(line) == 0 || !yield(line) {
				return
			}
		}
	}
}

// parseStatus reads a three-digit status code.
func parseStatus(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n >= 100
}

// appendClientHead appends the head to send the client: the status line with the
// standard reason, fields (the gateway's own, in wire form), the backend's fields but
// the hop-by-hop ones and those its Connection fields name, all of them edited by
// edit when not nil, a Date when the backend's head has none, and "Connection:
// close" when the client's connection ends.
func appendClientHead(out, b []byte, rh *rawHead, fields []byte, sink RawSink, edit HeadEditor) []byte {
	out = appendStatusLine(out, rh.status)
	start := len(out)
	out = append(out, fields...)
	if rh.verbatim {
		// The usual head: its field lines, without the empty line, in one copy.
		out = append(out, b[rh.fieldsAt:len(b)-2]...)
	} else {
		_, rest, _ := httpsyntax.CutByte(b, '\n')
		for line := range headFieldLines(rest) {
			name, _, _ := httpsyntax.CutByte(line, ':')
			if rawHopByHop(name, rh.connection[:rh.connections]) {
				continue
			}
			out = append(out, line...)
			out = append(out, "\r\n"...)
		}
	}
	if edit != nil {
		out = EditFieldsInPlace(out, start, edit)
	}
	if !rh.hasDate {
		out = append(out, sink.DateLine()...)
	}
	if sink.Closing() {
		out = append(out, "Connection: close\r\n"...)
	}
	return append(out, "\r\n"...)
}

// EditFieldsInPlace replaces the field lines at the end of b, from start on, with
// what edit makes of them.
func EditFieldsInPlace(b []byte, start int, edit HeadEditor) []byte {
	end := len(b)
	// The edited lines are appended after the block, which may move b, and then
	// moved over the block.
	b = edit.AppendEditedResponse(b, b[start:end])
	n := copy(b[start:], b[end:])
	return b[:start+n]
}

// namesKeptField reports whether a Connection field names a field the relayed head
// is framed or completed by: its length, coding, type or date.
func namesKeptField(value []byte) bool {
	for _, name := range [...]string{"Content-Length", "Transfer-Encoding", "Content-Type", "Date"} {
		if tokenIn(value, name) {
			return true
		}
	}
	return false
}

// rawHopByHop reports whether a response field named name concerns one connection
// only: a hop-by-hop field, or one the Connection fields name.
func rawHopByHop(name []byte, connection [][]byte) bool {
	if hopByHopName(name) {
		return true
	}
	for _, v := range connection {
		if tokenIn(v, string(name)) {
			return true
		}
	}
	return false
}

// hopByHopName reports whether name, in any case, is one of the hop-by-hop fields.
func hopByHopName(name []byte) bool {
	// Every field of every relayed response asks: the names are told apart by
	// their length first.
	var candidates []string
	switch len(name) {
	case len("Te"):
		candidates = []string{"Te"}
	case len("Upgrade"):
		candidates = []string{"Trailer", "Upgrade"}
	case len("Connection"):
		candidates = []string{"Connection", "Keep-Alive"}
	case len("Proxy-Connection"):
		candidates = []string{"Proxy-Connection"}
	case len("Transfer-Encoding"):
		candidates = []string{"Transfer-Encoding"}
	case len("Proxy-Authenticate"):
		candidates = []string{"Proxy-Authenticate"}
	case len("Proxy-Authorization"):
		candidates = []string{"Proxy-Authorization"}
	}
	for _, h := range candidates {
		if httpsyntax.EqualFold(name, h) {
			return true
		}
	}
	return false
}

// trimOWS trims the optional white space (spaces and tabs) around a field value.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// tokenIn reports whether the comma-separated list v holds token, in any case.
func tokenIn(v []byte, token string) bool {
	for len(v) > 0 {
		var t []byte
		t, v, _ = httpsyntax.CutByte(v, ',')
		if httpsyntax.EqualFold(bytes.TrimSpace(t), token) {
			return true
		}
	}
	return false
}
