package h2

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// writeRawFrame writes a frame header and payload by hand, so that the
// payload may exceed what the client Framer would allow.
func (rc *rawConn) writeRawFrame(typ http2.FrameType, flags http2.Flags, id uint32, payload []byte) {
	rc.t.Helper()
	n := len(payload)
	hdr := []byte{byte(n >> 16), byte(n >> 8), byte(n), byte(typ), byte(flags),
		byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
	if _, err := rc.nc.Write(append(hdr, payload...)); err != nil {
		rc.t.Fatal(err)
	}
}

// A DATA or HEADERS frame larger than the SETTINGS_MAX_FRAME_SIZE we allow
// (the initial 16384) is a connection error of type FRAME_SIZE_ERROR
// (RFC 9113 §4.2), and never reaches the handler.
func TestOversizedFrameIsFrameSizeError(t *testing.T) {
	for _, kind := range []string{"DATA", "HEADERS"} {
		t.Run(kind, func(t *testing.T) {
			ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil)
			rc := dialRaw(t, ts.addr)
			const big = 16384 + 1 // one byte over the initial SETTINGS_MAX_FRAME_SIZE
			if kind == "DATA" {
				rc.request(1, false, "POST", "/")
				rc.writeRawFrame(http2.FrameData, http2.FlagDataEndStream, 1, make([]byte, big))
			} else {
				// A valid header block, padded out (uncompressed) past the limit.
				block := rc.block(":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/")
				block = append(block, 0x00, 0x05) // literal, new name, 5 bytes
				block = append(block, "x-pad"...)
				block = append(block, 0x7f, 0x81, 0x80, 0x01) // raw value of 127+16384 bytes
				block = append(block, strings.Repeat("p", 127+big)...)
				rc.writeRawFrame(http2.FrameHeaders, http2.FlagHeadersEndHeaders|http2.FlagHeadersEndStream, 3, block)
			}
			ga, _ := rc.readUntilEnd()
			if ga == nil || ga.ErrCode != http2.ErrCodeFrameSize {
				t.Fatalf("GOAWAY %+v, want FRAME_SIZE_ERROR", ga)
			}
		})
	}
}

// noHalfCloseConn hides CloseWrite, like a conn wrapped by the HTTP/1
// server that hands h2c connections over, and reports its Close.
type noHalfCloseConn struct {
	net.Conn
	closed chan struct{}
	once   sync.Once
}

func (c *noHalfCloseConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// A connection ended with GOAWAY while the client still sends must not be
// closed with unread input even when it cannot half-close, or the kernel
// resets it and the client loses the GOAWAY.
func TestGoAwaySurvivesConnWithoutCloseWrite(t *testing.T) {
	srv := New(Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	wrapped := make(chan *noHalfCloseConn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		nc := &noHalfCloseConn{Conn: c, closed: make(chan struct{})}
		wrapped <- nc
		srv.ServeConn(nc)
	}()
	defer srv.Close()
	rc := dialRaw(t, ln.Addr().String())
	// WINDOW_UPDATE on an idle stream is a connection error; the bytes after
	// it stay unread, beyond what the server's read buffer takes in.
	var b bytes.Buffer
	http2.NewFramer(&b, nil).WriteWindowUpdate(7, 1)
	b.Write(make([]byte, 256<<10))
	if _, err := rc.nc.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	nc := <-wrapped
	select {
	case <-nc.closed:
	case <-time.After(ioBound):
		t.Fatal("server did not close the connection")
	}
	ga, _ := rc.readUntilEndErr()
	if ga == nil || ga.ErrCode != http2.ErrCodeProtocol {
		t.Fatalf("GOAWAY %+v, want PROTOCOL_ERROR", ga)
	}
}

// readUntilEndErr is readUntilEnd that also fails on a connection reset.
func (rc *rawConn) readUntilEndErr() (*http2.GoAwayFrame, error) {
	rc.t.Helper()
	var ga *http2.GoAwayFrame
	for i := 0; i < 100000; i++ {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				rc.t.Fatalf("connection ended with %v (GOAWAY seen: %v)", err, ga != nil)
			}
			return ga, err
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			copy := *g
			ga = &copy
		}
	}
	rc.t.Fatal("connection did not end: too many frames")
	return nil, nil
}

// A handler that ends with runtime.Goexit (as t.FailNow or log.Fatal-like
// helpers do) has its stream reset and released, like one that panics;
// otherwise it stays counted against MaxConcurrentStreams forever.
func TestHandlerGoexitReleasesStream(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/exit" {
			runtime.Goexit()
		}
		io.WriteString(w, "ok")
	}), func(c *Config) { c.MaxConcurrentStreams = 1 })
	rc := dialRaw(t, ts.addr)
	rc.request(1, true, "GET", "/exit")
	f := rc.readUntil("RST_STREAM on stream 1", isRST(1)).(*http2.RSTStreamFrame)
	if f.ErrCode != http2.ErrCodeInternal {
		t.Fatalf("stream 1 reset with %v, want INTERNAL_ERROR", f.ErrCode)
	}
	rc.request(3, true, "GET", "/ok")
	g := rc.readUntil("a response or reset on stream 3", func(f http2.Frame) bool {
		return f.Header().StreamID == 3
	})
	if h, ok := g.(*http2.MetaHeadersFrame); !ok || h.PseudoValue("status") != "200" {
		t.Fatalf("stream 3 got %v, want a 200 response", g)
	}
}

// Padding counts against the stream window too (RFC 9113 §6.1), and no body
// read gives it back; unless the server returns it, a client that pads its
// DATA frames runs out of stream window and the upload stalls for good.
func TestPaddedBodyDoesNotStallStreamWindow(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	}), func(c *Config) { c.MaxReceiveBufferPerStream = 65535 })
	rc := dialRaw(t, ts.addr)
	rc.request(1, false, "POST", "/")
	const frames = 400 // 400 * 257 bytes: beyond the 65535-byte stream window
	window := int64(65535)
	pad := make([]byte, 255)
	for i := 0; i < frames; i++ {
		for window < 257 {
			f := rc.readUntil("WINDOW_UPDATE on stream 1", func(f http2.Frame) bool {
				wu, ok := f.(*http2.WindowUpdateFrame)
				return ok && wu.StreamID == 1
			})
			window += int64(f.(*http2.WindowUpdateFrame).Increment)
		}
		if err := rc.fr.WriteDataPadded(1, i == frames-1, []byte{'x'}, pad); err != nil {
			t.Fatal(err)
		}
		window -= 257
	}
	var body []byte
	rc.readUntil("end of stream 1", func(f http2.Frame) bool {
		d, ok := f.(*http2.DataFrame)
		if ok && d.StreamID == 1 {
			body = append(body, d.Data()...)
		}
		return ok && d.StreamID == 1 && d.StreamEnded()
	})
	if string(body) != strconv.Itoa(frames) {
		t.Fatalf("body %q, want %d", body, frames)
	}
}

// A handler that reads its body a little behind the client, so that the
// buffer never runs empty, must not make the request-body buffer keep every
// byte of the upload: the part already read has to be reclaimed.
func TestBodyBufferStaysBoundedWhenReaderLags(t *testing.T) {
	const chunk = 4096
	const total = 8 << 20
	maxCap := make(chan int, 1)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := r.Body.(*requestBody).st
		buf := make([]byte, chunk)
		largest := 0
		for {
			// Read only while more than a chunk is buffered, so that some
			// bytes always stay unread until the body ends.
			st.mu.Lock()
			for len(st.buf)-st.off <= chunk && st.bodyErr == nil {
				st.cond.Wait()
			}
			largest = max(largest, cap(st.buf))
			done := st.bodyErr != nil
			st.mu.Unlock()
			if done {
				io.Copy(io.Discard, r.Body)
				break
			}
			if _, err := io.ReadFull(r.Body, buf); err != nil {
				break
			}
		}
		maxCap <- largest
	}), func(c *Config) { c.MaxReceiveBufferPerStream = 65535 })
	rc := dialRaw(t, ts.addr)
	rc.request(1, false, "POST", "/")
	connWin, streamWin := int64(1<<20), int64(65535)
	frame := make([]byte, 16384)
	for sent := 0; sent < total; sent += len(frame) {
		for min(connWin, streamWin) < int64(len(frame)) {
			f := rc.readUntil("WINDOW_UPDATE", func(f http2.Frame) bool {
				_, ok := f.(*http2.WindowUpdateFrame)
				return ok
			}).(*http2.WindowUpdateFrame)
			if f.StreamID == 0 {
				connWin += int64(f.Increment)
			} else {
				streamWin += int64(f.Increment)
			}
		}
		if err := rc.fr.WriteData(1, sent+len(frame) >= total, frame); err != nil {
			t.Fatal(err)
		}
		connWin -= int64(len(frame))
		streamWin -= int64(len(frame))
	}
	select {
	case c := <-maxCap:
		if c > 1<<20 {
			t.Fatalf("body buffer grew to %d bytes for a 65535-byte window", c)
		}
	case <-time.After(ioBound):
		t.Fatal("handler did not finish")
	}
}
