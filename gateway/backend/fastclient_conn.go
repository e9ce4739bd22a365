package backend

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/internal/ctxhook"
	"github.com/switchyard-dev/switchyard/gateway/internal/deadline"
	"github.com/switchyard-dev/switchyard/gateway/internal/rawio"
	"github.com/switchyard-dev/switchyard/internal/httpsyntax"
)

// clientBufferSize is the read and write buffer size of a backend connection.
const clientBufferSize = 4 << 10

// largeReadBuffer is the read buffer a connection moves to once a response did not
// fit its buffer: responses of a few KB then arrive with one read instead of two
// or three, while connections to backends that answer briefly keep the small one.
const largeReadBuffer = 16 << 10

// maxResponseHead bounds a response's status line and header fields.
const maxResponseHead = 1 << 20

var (
	errMalformedResponse = errors.New("malformed HTTP response from backend")
	errResponseTooLarge  = errors.New("backend response header too large")
	errBadChunk          = errors.New("malformed chunked response body from backend")
	errBadHeaderField    = errors.New("invalid header field in request")
)

// aLongTimeAgo is a deadline in the past, which interrupts blocked reads at once.
var aLongTimeAgo = time.Unix(1, 0)

// clientConn is one connection to a backend, owned by one request at a time.
type clientConn struct {
	t    *fastTransport
	addr string
	conn net.Conn
	rbuf []byte
	r, w int
	wbuf []byte
	// fields is where appendHeader sorts a request's fields, kept for the next.
	fields []headerField
	// idleSince is when the connection last went idle.
	idleSince time.Time
	// reused is set when the connection served an earlier request; nothingRead
	// while no byte of the current response has arrived. Together they tell a stale
	// connection, on which a request may be sent again.
	reused, nothingRead bool
	// outgrown is set when a response body had to be read past the buffer; the
	// next request starts with a larger buffer (see largeReadBuffer).
	outgrown bool
	// stop ends the context watch of the current request; watched is set once the
	// watch has started (stop stays nil when the context never ends). A request
	// context that is a ctxhook.Source (the gateway's own server's) is watched with
	// hook instead, which costs no allocation: hookedTo is that context meanwhile.
	stop     func() bool
	watched  bool
	hook     ctxhook.Hook
	hookedTo ctxhook.Source
	// ctxDeadline is the deadline of the request's context while the socket
	// enforces it (see deadline.Watch), else zero; headerDeadline is that of the
	// response head (ResponseHeaderTimeout) until the head has arrived.
	ctxDeadline, headerDeadline time.Time
	// writeDeadline is set while the socket's write deadline is the context's.
	writeDeadline bool
	// ctx is the current request's context; canceled is set when its end
	// interrupted the connection, whose reads then fail with the context's error.
	ctx      context.Context
	mu       sync.Mutex
	canceled atomic.Bool
	// interruptFn is interrupt, made once; raw reads the connection where the
	// platform allows (see rawReader).
	interruptFn func()
	raw         *rawReader
	// rawConn writes the connection, where the platform allows (see rawio).
	rawConn *rawio.Conn
	// yieldFirst is set when a goroutine should let others run before reading
	// an answer (rawio.YieldPays).
	yieldFirst bool
}

func newClientConn(t *fastTransport, addr string, conn net.Conn) *clientConn {
	cc := &clientConn{t: t, addr: addr, conn: conn, rbuf: make([]byte, clientBufferSize), wbuf: make([]byte, 0, clientBufferSize)}
	cc.interruptFn = cc.interrupt
	cc.hook.Func = cc.interruptFn
	cc.rawConn = rawio.New(conn)
	cc.yieldFirst = rawio.YieldPays()
	cc.initReader()
	return cc
}

// watch starts, once per request, the watch that interrupts the connection when the
// request's context ends. Reads start it only when they have to wait; requests with
// a body start it before writing, since a write may wait too. writing is set for
// the latter: a read waits only once the request is written, so a watch started by
// a read leaves the socket's write deadline alone, which spares a timer.
//
// A request context bounded by a deadline.Context is not waited on: the socket's
// deadlines enforce its deadline, which arms no timer, and only the context above
// it (the client's request) is watched. That context, when it is a ctxhook.Source
// (as the gateway's own HTTP/1 server's are), runs the connection's hook when it
// ends; any other is watched with context.AfterFunc.
func (cc *clientConn) watch(writing bool) {
	if cc.watched || cc.ctx == nil {
		return
	}
	cc.watched = true
	ctx := cc.ctx
	if at, source, ok := deadline.Watch(ctx); ok {
		cc.ctxDeadline = at
		if writing {
			cc.writeDeadline = true
			_ = cc.conn.SetWriteDeadline(at)
		}
		_ = cc.conn.SetReadDeadline(earliest(at, cc.headerDeadline))
		ctx = source
	}
	if source := ctxhook.Find(ctx); source != nil {
		if source.Hook(&cc.hook) {
			cc.hookedTo = source
		} else {
			cc.interrupt()
		}
		return
	}
	if ctx.Done() != nil {
		cc.stop = context.AfterFunc(ctx, cc.interruptFn)
	}
}

// earliest returns the earlier of two deadlines, zero standing for none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// roundTrip writes req and reads the response head. On error the connection is
// closed.
func (cc *clientConn) roundTrip(ctx context.Context, req *http.Request, headerTimeout time.Duration) (*http.Response, error) {
	cc.nothingRead = true
	cc.ctx = ctx
	if cc.outgrown && len(cc.rbuf) < largeReadBuffer && cc.r == cc.w {
		cc.rbuf, cc.r, cc.w = make([]byte, largeReadBuffer), 0, 0
	}
	cc.outgrown = false
	if req.Body != nil && req.Body != http.NoBody {
		cc.watch(true)
	}
	err := cc.writeRequest(req)
	if err != nil {
		return nil, cc.fail(ctx, err)
	}
	if headerTimeout > 0 {
		cc.headerDeadline = time.Now().Add(headerTimeout)
		_ = cc.conn.SetReadDeadline(earliest(cc.ctxDeadline, cc.headerDeadline))
	}
	// The answer cannot be there yet: reading now would cost a system call that
	// finds nothing. Other goroutines' work runs first where that pays (see
	// rawio.YieldPays), giving the backend time.
	if cc.yieldFirst {
		runtime.Gosched()
	}
	res, err := cc.readResponse(ctx, req)
	if err != nil {
		return nil, cc.fail(ctx, err)
	}
	return res, nil
}

// interrupt makes a blocked read or write return, once the request's context ended.
func (cc *clientConn) interrupt() {
	cc.mu.Lock()
	cc.canceled.Store(true)
	_ = cc.conn.SetDeadline(aLongTimeAgo)
	cc.mu.Unlock()
}

// fail closes the connection after a failed exchange and returns the error to
// report.
func (cc *clientConn) fail(ctx context.Context, err error) error {
	endedByContext := cc.endedByContext(err)
	cc.release()
	_ = cc.conn.Close()
	if endedByContext && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// endedByContext reports whether err, from the connection, came of the end of the
// request's context: the watch interrupted the connection, or the socket deadline
// that stands for the context's deadline passed.
func (cc *clientConn) endedByContext(err error) bool {
	if cc.canceled.Load() {
		return true
	}
	return !cc.ctxDeadline.IsZero() && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(cc.ctxDeadline)
}

// release ends the context watch, and the connection's tie to the request.
func (cc *clientConn) release() {
	if cc.stop != nil {
		if !cc.stop() {
			// The interrupt has run or is about to: the connection must not be
			// pooled, whatever it did to the deadlines.
			cc.canceled.Store(true)
		}
		cc.stop = nil
	}
	if cc.hookedTo != nil {
		if !cc.hookedTo.Unhook(&cc.hook) {
			cc.canceled.Store(true)
		}
		cc.hookedTo = nil
	}
	cc.watched = false
	if !cc.ctxDeadline.IsZero() || !cc.headerDeadline.IsZero() {
		cc.ctxDeadline, cc.headerDeadline = time.Time{}, time.Time{}
		// An interrupted connection keeps its deadline in the past: it is closed,
		// never pooled.
		cc.mu.Lock()
		if !cc.canceled.Load() {
			if cc.writeDeadline {
				_ = cc.conn.SetDeadline(time.Time{})
			} else {
				_ = cc.conn.SetReadDeadline(time.Time{})
			}
		}
		cc.mu.Unlock()
	}
	cc.writeDeadline = false
	cc.ctx = nil
}

// headArrived ends the wait for the response head: the read deadline goes back to
// the context's, if the socket enforces one, else to none.
func (cc *clientConn) headArrived() {
	if cc.headerDeadline.IsZero() {
		return
	}
	cc.headerDeadline = time.Time{}
	cc.mu.Lock()
	if !cc.canceled.Load() {
		_ = cc.conn.SetReadDeadline(cc.ctxDeadline)
	}
	cc.mu.Unlock()
}

// writeRequest sends the request head and body in one write where they fit.
func (cc *clientConn) writeRequest(req *http.Request) error {
	b := cc.wbuf[:0]
	b = append(b, req.Method...)
	b = append(b, ' ')
	b = appendRequestURI(b, req.URL)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if !httpsyntax.ValidFieldValue(host) {
		return errBadHeaderField
	}
	b = append(b, host...)
	b = append(b, "\r\n"...)
	b, err := cc.appendHeader(b, req)
	if err != nil {
		return err
	}
	if req.Body != nil && req.Body != http.NoBody {
		b, err = copyBody(b, req.Body, req.ContentLength)
		_ = req.Body.Close()
		if err != nil {
			return err
		}
	}
	cc.wbuf = b[:0]
	if cc.rawConn != nil {
		_, err = cc.rawConn.Write(b)
	} else {
		_, err = cc.conn.Write(b)
	}
	return err
}

// appendRequestURI appends the escaped path and query, as URL.RequestURI does,
// without building a string.
func appendRequestURI(b []byte, u *url.URL) []byte {
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	b = append(b, path...)
	if u.ForceQuery || u.RawQuery != "" {
		b = append(b, '?')
		b = append(b, u.RawQuery...)
	}
	return b
}

// appendHeader appends the header fields and the framing of the body, as
// http.Transport writes them: a default User-Agent unless one is set (an empty one
// means none), Content-Length for a body and for methods that expect one.
func (cc *clientConn) appendHeader(b []byte, req *http.Request) ([]byte, error) {
	b, err := cc.appendSortedFields(b, req.Header)
	// The connection keeps the slice, not the request's values.
	clear(cc.fields)
	if err != nil {
		return b, err
	}
	if _, ok := req.Header["User-Agent"]; !ok {
		b = append(b, "User-Agent: Go-http-client/1.1\r\n"...)
	}
	if req.ContentLength > 0 || (req.ContentLength == 0 && BodyExpected(req.Method)) {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, req.ContentLength, 10)
		b = append(b, "\r\n"...)
	}
	if req.Close {
		b = append(b, "Connection: close\r\n"...)
	} else {
		for _, v := range req.Header["Connection"] {
			if !httpsyntax.ValidFieldValue(v) {
				return b, errBadHeaderField
			}
			b = append(b, "Connection: "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	return append(b, "\r\n"...), nil
}

// headerField is a field name and its values, as an http.Header holds them.
type headerField struct {
	name   string
	values []string
}

// appendSortedFields appends the fields of h but those appendHeader writes itself,
// in the order of their names, as http.Header.Write writes them. Each name's values
// are gathered with it as the map is walked, so that the map is not looked up again.
func (cc *clientConn) appendSortedFields(b []byte, h http.Header) ([]byte, error) {
	cc.fields = cc.fields[:0]
	for k, vv := range h {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer", "Connection":
			continue
		}
		cc.fields = append(cc.fields, headerField{k, vv})
	}
	slices.SortFunc(cc.fields, func(a, b headerField) int { return strings.Compare(a.name, b.name) })
	for _, f := range cc.fields {
		if !httpsyntax.IsToken(f.name) {
			return b, errBadHeaderField
		}
		for _, v := range f.values {
			if f.name == "User-Agent" && v == "" {
				continue
			}
			if !httpsyntax.ValidFieldValue(v) {
				return b, errBadHeaderField
			}
			b = append(b, f.name...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	return b, nil
}

// BodyExpected reports whether a request of this method without a body is sent
// with "Content-Length: 0", as http.Transport sends it.
func BodyExpected(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
}

// readResponse reads the head of the final response, passing 1xx responses to the
// request's trace.
func (cc *clientConn) readResponse(ctx context.Context, req *http.Request) (*http.Response, error) {
	for {
		end, err := cc.readHead()
		if err != nil {
			return nil, err
		}
		head := cc.rbuf[cc.r : cc.r+end]
		cc.r += end
		r, err := parseResponseHead(head)
		if err != nil {
			return nil, err
		}
		res := &r.res
		if res.StatusCode >= 100 && res.StatusCode < 200 {
			if res.StatusCode == http.StatusSwitchingProtocols {
				return nil, errMalformedResponse
			}
			if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
				if err := trace.Got1xxResponse(res.StatusCode, textproto.MIMEHeader(res.Header)); err != nil {
					return nil, err
				}
			}
			continue
		}
		res.Request = req
		// Before framing, which may already give the connection back to the pool.
		cc.headArrived()
		if err := cc.frame(r, req.Method == http.MethodHead, req.Close); err != nil {
			return nil, err
		}
		return res, nil
	}
}

// readHead reads until the buffer holds a whole response head.
func (cc *clientConn) readHead() (int, error) {
	from := 0
	for {
		buf := cc.rbuf[cc.r:cc.w]
		if end := headEnd(buf, from); end > 0 {
			return end, nil
		}
		from = max(0, len(buf)-2)
		if len(buf) >= maxResponseHead {
			return 0, errResponseTooLarge
		}
		if err := cc.fill(); err != nil {
			return 0, err
		}
	}
}

// headEnd returns the length of the head buf starts with, looking from from on, or
// 0 when buf holds no whole head. The head ends at the first empty line, whichever
// line ending it uses: a later "\n\r\n" may be in the body of a response with bare
// LF endings. Going from line end to line end, rather than searching buf for
// each ending, leaves alone a body that arrived with the head.
func headEnd(buf []byte, from int) int {
	for i := from; ; {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return 0
		}
		i += j + 1
		switch rest := buf[i:]; {
		case len(rest) >= 1 && rest[0] == '\n':
			return i + 1
		case len(rest) >= 2 && rest[0] == '\r' && rest[1] == '\n':
			return i + 2
		}
	}
}

// fill reads more into the buffer, compacting or growing it first when full.
func (cc *clientConn) fill() error {
	if cc.r == cc.w {
		cc.r, cc.w = 0, 0
	}
	if cc.w == len(cc.rbuf) {
		if cc.r > 0 {
			cc.w = copy(cc.rbuf, cc.rbuf[cc.r:cc.w])
			cc.r = 0
		} else {
			grown := make([]byte, 2*len(cc.rbuf))
			copy(grown, cc.rbuf[:cc.w])
			cc.rbuf = grown
		}
	}
	n, err := cc.read(cc.rbuf[cc.w:])
	if n > 0 {
		cc.nothingRead = false
		cc.w += n
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}
