//go:build linux

package h2

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/switchyard-dev/switchyard/gateway/internal/rawio"
)

// idleTestConn is a loopback connection that can wait without a buffer, as
// package server's are. Each time the server gives its buffer back to wait,
// it notes, on the reading goroutine and so without racing it, what the
// server's connection still holds.
type idleTestConn struct {
	net.Conn
	raw *rawio.Conn
	srv *Server

	mu    sync.Mutex
	parks int
	// heldRead and heldFramer are what the server held at the last park: a
	// read buffer, and a read Framer; heldBlock is set when the last header
	// block was still held (its frame points into the Framer's buffer).
	heldRead, heldFramer, heldBlock bool
}

func (c *idleTestConn) Read(p []byte) (int, error) { return c.raw.Read(p) }
func (c *idleTestConn) CanWaitIdle() bool          { return true }

func (c *idleTestConn) ReadIdle(p []byte, release func([]byte), acquire func() []byte) ([]byte, int, error) {
	return c.raw.ReadIdle(p, func(b []byte) {
		release(b)
		c.noteParked()
	}, acquire)
}

// noteParked records the server connection's buffers; it runs on that
// connection's reading goroutine, inside its wait.
func (c *idleTestConn) noteParked() {
	c.srv.mu.Lock()
	var cc *conn
	for x := range c.srv.conns {
		if x.nc == c {
			cc = x
		}
	}
	c.srv.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.parks++
	c.heldRead = cc.rd.buf != nil
	c.heldFramer = cc.fr != nil
	c.heldBlock = cc.hblock.frame.HeadersFrame != nil || cc.hblock.fieldsBox != nil
}

// parked returns the park count and what was held at the last park.
func (c *idleTestConn) parked() (parks int, heldRead, heldFramer bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.parks, c.heldRead, c.heldFramer || c.heldBlock
}

// startIdleServer serves h on 127.0.0.1 with connections that can wait
// without a buffer; the server side of each connection is sent on the channel.
func startIdleServer(t *testing.T, h http.Handler) (*testServer, chan *idleTestConn) {
	t.Helper()
	conns := make(chan *idleTestConn, 16)
	// The conns need the server, which exists once startServerWrapped returns.
	var ts *testServer
	started := make(chan struct{})
	ts = startServerWrapped(t, h, func(cfg *Config) { cfg.HTTPServer = nil }, func(c net.Conn) net.Conn {
		<-started
		raw := rawio.New(c)
		if raw == nil {
			t.Error("rawio.New returned nil for a TCP connection")
			c.Close()
			return nil
		}
		ic := &idleTestConn{Conn: c, raw: raw, srv: ts.srv}
		conns <- ic
		return ic
	})
	close(started)
	return ts, conns
}

// bodyDigest answers with the length and SHA-256 of the request body, and
// with a body of the size the "size" query parameter asks for.
var bodyDigest = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("X-Body", strconv.FormatInt(n, 10)+" "+hex.EncodeToString(h.Sum(nil)))
	size, _ := strconv.Atoi(r.URL.Query().Get("size"))
	w.Write(bytes.Repeat([]byte("x"), size))
})

// answer reads stream id's response and returns its X-Body header and body.
func (rc *rawConn) answer(id uint32) (string, []byte) {
	rc.t.Helper()
	var digest string
	var body []byte
	for i := 0; i < 10000; i++ {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			rc.t.Fatalf("reading stream %d's response: %v", id, err)
		}
		if f.Header().StreamID != id {
			continue
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if s := f.PseudoValue("status"); s != "200" {
				rc.t.Fatalf("stream %d: status %s", id, s)
			}
			for _, hf := range f.RegularFields() {
				if hf.Name == "x-body" {
					digest = hf.Value
				}
			}
			if f.StreamEnded() {
				return digest, body
			}
		case *http2.DataFrame:
			body = append(body, f.Data()...)
			if f.StreamEnded() {
				return digest, body
			}
		case *http2.RSTStreamFrame:
			rc.t.Fatalf("stream %d reset: %v", id, f.ErrCode)
		}
	}
	rc.t.Fatalf("stream %d did not end", id)
	return "", nil
}

// frames encodes frames with rc's HPACK encoder, for writing in pieces.
func (rc *rawConn) frames(write func(fr *http2.Framer)) []byte {
	var buf bytes.Buffer
	write(http2.NewFramer(&buf, nil))
	return buf.Bytes()
}

// headersFrame encodes a HEADERS frame opening stream id.
func (rc *rawConn) headersFrame(id uint32, end bool, method, path string) []byte {
	block := rc.block(":method", method, ":scheme", "http", ":authority", "example.com", ":path", path)
	return rc.frames(func(fr *http2.Framer) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: end, EndHeaders: true})
	})
}

// writePieces writes b cut at the given offsets, pausing between pieces so
// that the server reads each apart and waits in between.
func (rc *rawConn) writePieces(b []byte, cuts ...int) {
	rc.t.Helper()
	from := 0
	for _, cut := range append(cuts, len(b)) {
		if _, err := rc.nc.Write(b[from:cut]); err != nil {
			rc.t.Fatal(err)
		}
		from = cut
		time.Sleep(20 * time.Millisecond)
	}
}

// digestOf is what bodyDigest answers for body.
func digestOf(body []byte) string {
	sum := sha256.Sum256(body)
	return strconv.Itoa(len(body)) + " " + hex.EncodeToString(sum[:])
}

// waitParked waits until the server's connection has waited for input more
// than after times, and returns the new count.
func waitParked(t *testing.T, ic *idleTestConn, after int) int {
	t.Helper()
	var parks int
	waitFor(t, "the connection to wait for input", func() bool {
		parks, _, _ = ic.parked()
		return parks > after
	})
	return parks
}

// TestIdleConnectionGivesBuffersBack checks that a connection waiting for its
// client with nothing open holds no read buffer, no output buffer, and no
// read Framer grown by a large frame, and that it serves requests afterwards.
func TestIdleConnectionGivesBuffersBack(t *testing.T) {
	ts, conns := startIdleServer(t, bodyDigest)
	rc := dialRaw(t, ts.addr)
	ic := <-conns
	// A large response, whose output needs the large buffer, and a large
	// upload, whose DATA frame grows the read Framer's buffer.
	rc.request(1, true, "GET", "/?size=60000")
	if _, body := rc.answer(1); len(body) != 60000 {
		t.Fatalf("stream 1: %d bytes, want 60000", len(body))
	}
	upload := bytes.Repeat([]byte("u"), maxFrameRead)
	rc.request(3, false, "POST", "/")
	if err := rc.fr.WriteData(3, true, upload); err != nil {
		t.Fatal(err)
	}
	if digest, _ := rc.answer(3); digest != digestOf(upload) {
		t.Fatalf("stream 3: body digest %q, want %q", digest, digestOf(upload))
	}
	waitGaveBack(t, ic, serverConn(t, ts.srv))
	// The connection takes buffers and a Framer again for the next request.
	rc.request(5, false, "POST", "/?size=10")
	if err := rc.fr.WriteData(5, true, upload[:5000]); err != nil {
		t.Fatal(err)
	}
	if digest, body := rc.answer(5); digest != digestOf(upload[:5000]) || len(body) != 10 {
		t.Fatalf("stream 5 after idling: digest %q and %d bytes, want %q and 10", digest, len(body), digestOf(upload[:5000]))
	}
}

// waitGaveBack waits until the server's connection has waited for input and
// holds neither a read buffer, nor a read Framer (nor the last header block,
// which points into the Framer's buffer), nor output buffers.
func waitGaveBack(t *testing.T, ic *idleTestConn, cc *conn) {
	t.Helper()
	deadline := time.Now().Add(ioBound)
	for {
		parks, heldRead, heldFramer := ic.parked()
		cc.wmu.Lock()
		heldOut := cc.out.b != nil || cc.spare != nil
		cc.wmu.Unlock()
		if parks > 0 && !heldRead && !heldFramer && !heldOut {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("idle connection (waited %d times) still holds: read buffer %v, read Framer %v, output buffers %v",
				parks, heldRead, heldFramer, heldOut)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// serverConn returns the server's only connection.
func serverConn(t *testing.T, s *Server) *conn {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.conns) != 1 {
		t.Fatalf("server has %d connections, want 1", len(s.conns))
	}
	for c := range s.conns {
		return c
	}
	return nil
}

// TestIdleConnectionReadsFramesSplitAcrossWaits checks that frames arriving in
// pieces, with the server waiting for input between them, are read whole: a
// frame header cut short, a large DATA frame cut in three, and a frame whose
// first bytes came with the previous frame, which the buffer must keep while
// the connection waits for the rest.
func TestIdleConnectionReadsFramesSplitAcrossWaits(t *testing.T) {
	ts, conns := startIdleServer(t, bodyDigest)
	rc := dialRaw(t, ts.addr)
	ic := <-conns
	rc.request(1, true, "GET", "/")
	rc.answer(1)
	parks := waitParked(t, ic, 0)

	// A HEADERS frame whose 9-byte header comes in two pieces.
	rc.writePieces(rc.headersFrame(3, true, "GET", "/?size=3"), 4)
	if _, body := rc.answer(3); string(body) != "xxx" {
		t.Fatalf("stream 3: body %q, want xxx", body)
	}
	parks = waitParked(t, ic, parks)

	// A full DATA frame in three pieces: the header with a few bytes, most of
	// the payload, and the rest.
	body := make([]byte, maxFrameRead)
	for i := range body {
		body[i] = byte(i * 7)
	}
	req := append(rc.headersFrame(5, false, "POST", "/"), rc.frames(func(fr *http2.Framer) { fr.WriteData(5, true, body) })...)
	head := len(req) - len(body) - frameHeaderLen
	rc.writePieces(req, head+frameHeaderLen+3, head+frameHeaderLen+9000)
	if digest, _ := rc.answer(5); digest != digestOf(body) {
		t.Fatalf("stream 5: body digest %q, want %q", digest, digestOf(body))
	}
	waitParked(t, ic, parks)

	// A whole HEADERS frame, with the first bytes of a DATA frame after it,
	// then the rest of the DATA frame after a pause.
	small := body[:3000]
	req = append(rc.headersFrame(7, false, "POST", "/"), rc.frames(func(fr *http2.Framer) { fr.WriteData(7, true, small) })...)
	head = len(req) - len(small) - frameHeaderLen
	rc.writePieces(req, head+5, head+frameHeaderLen+100)
	if digest, _ := rc.answer(7); digest != digestOf(small) {
		t.Fatalf("stream 7: body digest %q, want %q", digest, digestOf(small))
	}
}

// TestIdleConnectionAnswersPingsBetweenWaits checks that control replies the
// reading goroutine queues just before it waits for input are written: the
// output buffer holding them is not given back while a flush is pending.
func TestIdleConnectionAnswersPingsBetweenWaits(t *testing.T) {
	ts, conns := startIdleServer(t, bodyDigest)
	rc := dialRaw(t, ts.addr)
	ic := <-conns
	rc.request(1, true, "GET", "/")
	rc.answer(1)
	parks := waitParked(t, ic, 0)
	for i := range 50 {
		data := [8]byte{byte(i), 'p', 'i', 'n', 'g'}
		if err := rc.fr.WritePing(false, data); err != nil {
			t.Fatal(err)
		}
		rc.readUntil("PING ack "+strconv.Itoa(i), func(f http2.Frame) bool {
			p, ok := f.(*http2.PingFrame)
			return ok && p.IsAck() && p.Data == data
		})
		// Each PING is read after the connection waited for it.
		parks = waitParked(t, ic, parks)
	}
	rc.request(3, true, "GET", "/?size=2")
	if _, body := rc.answer(3); string(body) != "xx" {
		t.Fatalf("stream 3 after the PINGs: body %q, want xx", body)
	}
}
