package h2

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// bodyBufferSize is how much of a response body a writer holds before it
// sends DATA. A handler that writes less than this and returns has its
// response leave as HEADERS (with Content-Length) and DATA in one write.
const bodyBufferSize = 8 << 10

var bodyBufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, bodyBufferSize)
	return &b
}}

// responseWriter is the http.ResponseWriter of one stream.
type responseWriter struct {
	st          *stream
	header      http.Header
	status      int
	wroteHeader bool // the final status has been chosen
	sentHeader  bool // the final HEADERS frame has been written
	noBody      bool // the status or method forbids a body
	bufp        *[]byte
	headLen     int64 // bytes a HEAD handler wrote and we dropped
	trailers    []string
	fields      []hpack.HeaderField // the header, snapshotted by WriteHeader
	hasDate     bool
	noSniff     bool  // the header has a Content-Type or Content-Encoding
	declared    bool  // the header declared a valid Content-Length, declLen
	declLen     int64 // the declared Content-Length
	written     int64 // body bytes the handler wrote
	// fieldsArr backs fields for typical small headers, saving an
	// allocation per response.
	fieldsArr [8]hpack.HeaderField
}

// Header returns the response header map.
func (rw *responseWriter) Header() http.Header {
	if rw.header == nil {
		rw.header = make(http.Header)
	}
	return rw.header
}

// WriteHeader sends an informational (1xx) response at once, or records the
// final status; its HEADERS frame goes out with the first body bytes, on
// Flush, or when the handler returns.
func (rw *responseWriter) WriteHeader(code int) {
	if rw.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("h2: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 {
		if code != http.StatusSwitchingProtocols {
			rw.sendInformational(code)
		}
		return
	}
	rw.status = code
	rw.wroteHeader = true
	rw.noBody = code == http.StatusNoContent || code == http.StatusNotModified
	for _, v := range rw.header["Trailer"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				rw.trailers = append(rw.trailers, http.CanonicalHeaderKey(name))
			}
		}
	}
	rw.fields, rw.hasDate = appendFields(rw.fieldsArr[:0], rw.header, rw.trailers)
	rw.noteLength()
	_, hasType := rw.header["Content-Type"]
	rw.noSniff = hasType || rw.header.Get("Content-Encoding") != ""
}

// noteLength records the Content-Length the handler declared, which its
// writes are then held to. Like net/http, it keeps the first content-length
// field if it is valid, and drops the others.
func (rw *responseWriter) noteLength() {
	out := rw.fields[:0]
	seen := false
	for _, hf := range rw.fields {
		if hf.Name == "content-length" {
			if seen {
				continue
			}
			seen = true
			n, ok := parseContentLength(hf.Value)
			if !ok {
				continue
			}
			rw.declared, rw.declLen = true, n
		}
		out = append(out, hf)
	}
	rw.fields = out
}

// short reports whether the handler wrote less body than it declared.
func (rw *responseWriter) short() bool {
	return rw.declared && rw.written < rw.declLen && !rw.noBody &&
		rw.st.req.Method != http.MethodHead
}

// addSniffedType adds a Content-Type sniffed from the first body bytes when
// the handler set none, as net/http does; it runs just before the HEADERS
// frame is written.
func (rw *responseWriter) addSniffedType(first []byte) {
	if rw.noSniff || rw.noBody || len(first) == 0 {
		return
	}
	rw.noSniff = true
	rw.fields = append(rw.fields, hpack.HeaderField{Name: "content-type", Value: http.DetectContentType(first)})
}

// informationalSkip lists the keys a 1xx response leaves out even when the
// handler has already set them for its final response (RFC 9110 §8.6).
var informationalSkip = []string{"Content-Length"}

// sendInformational writes a 1xx HEADERS frame and flushes it.
func (rw *responseWriter) sendInformational(code int) {
	c := rw.st.c
	c.lockWrite()
	if !rw.st.wclosed && c.werr == nil {
		fields, _ := appendFields(nil, rw.header, informationalSkip)
		c.writeHeaderBlockLocked(rw.st.id, code, fields, "", false, false)
	}
	c.unlockWrite()
}

// Write buffers p, sending DATA when the buffer is full.
func (rw *responseWriter) Write(p []byte) (int, error) {
	if rw.st.reset.Load() {
		return 0, errStreamClosed
	}
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.noBody {
		return 0, http.ErrBodyNotAllowed
	}
	if rw.declared && rw.written+int64(len(p)) > rw.declLen {
		return 0, http.ErrContentLength
	}
	rw.written += int64(len(p))
	if rw.st.req.Method == http.MethodHead {
		if rw.headLen == 0 && !rw.sentHeader {
			// The body is dropped, but its type is sniffed as for GET.
			rw.addSniffedType(p)
		}
		rw.headLen += int64(len(p))
		return len(p), nil
	}
	if rw.bufp == nil {
		rw.bufp = bodyBufPool.Get().(*[]byte)
	}
	buf := *rw.bufp
	if len(buf)+len(p) <= cap(buf) {
		*rw.bufp = append(buf, p...)
		return len(p), nil
	}
	if err := rw.send(p, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// WriteString is Write for strings.
func (rw *responseWriter) WriteString(s string) (int, error) {
	return rw.Write([]byte(s))
}

// send writes the HEADERS frame if not yet written, the buffered body, and
// then p, all as one batch that the last writer out flushes.
func (rw *responseWriter) send(p []byte, flush bool) error {
	st := rw.st
	c := st.c
	c.lockWrite()
	err := c.writableLocked(st)
	if err == nil && !rw.sentHeader {
		rw.sentHeader = true
		if rw.bufp != nil && len(*rw.bufp) > 0 {
			rw.addSniffedType(*rw.bufp)
		} else {
			rw.addSniffedType(p)
		}
		c.writeHeaderBlockLocked(st.id, rw.status, rw.fields, "", !rw.hasDate, false)
	}
	if err == nil && rw.bufp != nil && len(*rw.bufp) > 0 {
		err = c.writeDataLocked(st, *rw.bufp, false)
		*rw.bufp = (*rw.bufp)[:0]
	}
	if err == nil && len(p) > 0 {
		err = c.writeDataLocked(st, p, false)
	}
	if err == errWindowStalled {
		// As in finishStream, the stream leaves the table before its reset
		// is flushed, so that a client that sees the reset and opens another
		// stream is not refused for this one; this goroutine stays announced
		// as a writer meanwhile, so the flush waits for it.
		c.wmu.Unlock()
		c.closeStalled(st)
		c.leftTable(st)
		c.wmu.Lock()
	}
	c.unlockWrite()
	return err
}

// Flush sends the headers and buffered body now; it implements http.Flusher.
func (rw *responseWriter) Flush() { rw.FlushError() }

// FlushError is Flush reporting failure, for http.ResponseController.
func (rw *responseWriter) FlushError() error {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	return rw.send(nil, true)
}

// EnableFullDuplex succeeds: HTTP/2 streams are always full duplex.
func (rw *responseWriter) EnableFullDuplex() error { return nil }

// writableLocked returns why st can take no more frames, or nil; wmu is held.
func (c *conn) writableLocked(st *stream) error {
	if c.werr != nil {
		return errConnClosed
	}
	if st.wclosed {
		return errStreamClosed
	}
	return nil
}

// writeDataLocked appends p as DATA frames, waiting for send window and for
// room in the output buffer. The caller is an announced writer holding wmu.
// When the client grants no window for WriteByteTimeout, the stream is reset
// and errWindowStalled returned (see waitWindowLocked).
func (c *conn) writeDataLocked(st *stream, p []byte, end bool) error {
	var stalled time.Time // since when we have been waiting for window
	for {
		if err := c.writableLocked(st); err != nil {
			return err
		}
		if len(p) == 0 {
			if end {
				c.out.writeFrame(http2.FrameData, http2.FlagDataEndStream, st.id, nil)
			}
			return nil
		}
		if c.flushing && len(c.out.b) >= highWater {
			c.waitLocked()
			continue
		}
		n := min(int64(len(p)), st.sendWindow, c.sendWindow, int64(c.peerFrame))
		if n <= 0 {
			if !c.waitWindowLocked(&stalled) {
				return c.resetStalledLocked(st)
			}
			continue
		}
		stalled = time.Time{}
		st.sendWindow -= n
		c.sendWindow -= n
		last := int(n) == len(p)
		var flags http2.Flags
		if end && last {
			flags = http2.FlagDataEndStream
		}
		c.out.writeFrame(http2.FrameData, flags, st.id, p[:n])
		if last {
			return nil
		}
		p = p[n:]
	}
}

// writeHeaderBlockLocked HPACK-encodes a header block and appends it as a
// HEADERS frame and as many CONTINUATION frames as needed. With status zero
// it is a trailer block. A Date field is added when date is set, and a
// content-length field when clen is not empty.
func (c *conn) writeHeaderBlockLocked(id uint32, status int, fields []hpack.HeaderField, clen string, date bool, end bool) {
	// The block is encoded into the output buffer behind room for its
	// HEADERS frame's header, which is filled in once its length is known.
	var room [frameHeaderLen]byte
	c.out.Write(room[:])
	start := len(c.out.b)
	if status > 0 {
		c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText(status)})
	}
	for _, hf := range fields {
		c.henc.WriteField(hf)
	}
	if date {
		c.henc.WriteField(hpack.HeaderField{Name: "date", Value: httpDate()})
	}
	if clen != "" {
		c.henc.WriteField(hpack.HeaderField{Name: "content-length", Value: clen})
	}
	block := c.out.b[start:]
	if len(block) <= int(c.peerFrame) {
		flags := http2.FlagHeadersEndHeaders
		if end {
			flags |= http2.FlagHeadersEndStream
		}
		appendFrameHeader(c.out.b[start-frameHeaderLen:start-frameHeaderLen], http2.FrameHeaders, flags, id, len(block))
		return
	}
	// A block too large for one frame, which is rare: it is taken out and
	// appended again, split into frames.
	block = append([]byte(nil), block...)
	c.out.b = c.out.b[:start-frameHeaderLen]
	c.writeBlockLocked(id, block, end)
}

// appendFields appends h's fields in wire form to dst, leaving out the keys
// skipResponseKey rejects and invalid values, and reports whether h has a
// Date. It is how a header map is snapshotted when the status is written:
// later changes to the map, like net/http's, do not reach the wire.
func appendFields(dst []hpack.HeaderField, h http.Header, skip []string) ([]hpack.HeaderField, bool) {
	hasDate := false
	for k, vv := range h {
		if skipResponseKey(k, skip) {
			continue
		}
		if k == "Date" {
			hasDate = true
		}
		name := lowerKey(k)
		for _, v := range vv {
			if httpguts.ValidHeaderFieldValue(v) {
				dst = append(dst, hpack.HeaderField{Name: name, Value: v})
			}
		}
	}
	return dst, hasDate
}

// writeBlockLocked splits an encoded header block into frames.
func (c *conn) writeBlockLocked(id uint32, block []byte, end bool) {
	max := int(c.peerFrame)
	first := min(len(block), max)
	var flags http2.Flags
	if end {
		flags |= http2.FlagHeadersEndStream
	}
	if first == len(block) {
		flags |= http2.FlagHeadersEndHeaders
	}
	c.out.writeFrame(http2.FrameHeaders, flags, id, block[:first])
	for rest := block[first:]; len(rest) > 0; {
		n := min(len(rest), max)
		flags = 0
		if n == len(rest) {
			flags = http2.FlagContinuationEndHeaders
		}
		c.out.writeFrame(http2.FrameContinuation, flags, id, rest[:n])
		rest = rest[n:]
	}
}

// skipResponseKey reports whether a header key stays out of a header block.
func skipResponseKey(k string, skip []string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade":
		return true
	}
	if strings.HasPrefix(k, http.TrailerPrefix) || !httpguts.ValidHeaderFieldName(k) {
		return true
	}
	for _, s := range skip {
		if s == k {
			return true
		}
	}
	return false
}

// trailerFields collects the response's trailers in wire form: declared
// keys and keys with http.TrailerPrefix, with their values.
func (rw *responseWriter) trailerFields() []hpack.HeaderField {
	var t []hpack.HeaderField
	add := func(k string, vv []string) {
		if !httpguts.ValidTrailerHeader(k) || !httpguts.ValidHeaderFieldName(k) {
			return
		}
		name := lowerKey(k)
		for _, v := range vv {
			if httpguts.ValidHeaderFieldValue(v) {
				t = append(t, hpack.HeaderField{Name: name, Value: v})
			}
		}
	}
	for _, k := range rw.trailers {
		add(k, rw.header[k])
	}
	for k, vv := range rw.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			add(http.CanonicalHeaderKey(k[len(http.TrailerPrefix):]), vv)
		}
	}
	return t
}

// statusTexts caches the decimal forms of status codes.
var statusTexts = func() (t [1000]string) {
	for i := 100; i < 1000; i++ {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

func statusText(code int) string { return statusTexts[code] }

// dateEntry caches the Date header value for one second.
type dateEntry struct {
	sec int64
	s   string
}

var dateCache atomic.Pointer[dateEntry]

// httpDate returns the current time in http.TimeFormat, formatting at most
// about once a second.
func httpDate() string {
	now := time.Now()
	sec := now.Unix()
	if e := dateCache.Load(); e != nil && e.sec == sec {
		return e.s
	}
	e := &dateEntry{sec: sec, s: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(e)
	return e.s
}
