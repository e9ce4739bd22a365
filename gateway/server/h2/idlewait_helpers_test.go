//go:build linux

package h2

import (
	"bytes"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/switchyard-dev/switchyard/gateway/internal/rawio"
)

// idleWaitConn is a loopback connection read and written as package server's
// trackedConn is: raw reads and writes, and ReadIdle. It counts the times the
// server gave its read buffer back to wait.
type idleWaitConn struct {
	net.Conn
	raw   *rawio.Conn
	parks atomic.Int64
}

func (c *idleWaitConn) Read(p []byte) (int, error)  { return c.raw.Read(p) }
func (c *idleWaitConn) Write(p []byte) (int, error) { return c.raw.Write(p) }
func (c *idleWaitConn) CanWaitIdle() bool           { return true }
func (c *idleWaitConn) CloseWrite() error           { return c.Conn.(*net.TCPConn).CloseWrite() }

func (c *idleWaitConn) ReadIdle(p []byte, release func([]byte), acquire func() []byte) ([]byte, int, error) {
	return c.raw.ReadIdle(p, func(b []byte) {
		release(b)
		c.parks.Add(1)
	}, acquire)
}

// startIdleWaitServer serves h on 127.0.0.1 with connections that can wait
// without their buffers; mod may adjust the Config. Each server-side
// connection is sent on the returned channel (dropped when it is full).
func startIdleWaitServer(t *testing.T, h http.Handler, mod func(*Config)) (*testServer, chan *idleWaitConn) {
	t.Helper()
	conns := make(chan *idleWaitConn, 256)
	ts := startServerWrapped(t, h, mod, func(c net.Conn) net.Conn {
		raw := rawio.New(c)
		if raw == nil {
			t.Error("rawio.New returned nil for a TCP connection")
			c.Close()
			return nil
		}
		rc := &idleWaitConn{Conn: c, raw: raw}
		select {
		case conns <- rc:
		default:
		}
		return rc
	})
	return ts, conns
}

// answerOf reads stream id's response, granting flow-control window back
// for every DATA frame, and returns its status, X-Body header and body.
// Frames of other streams are skipped; a reset of stream id is reported as
// status "RST".
func (rc *rawConn) answerOf(id uint32) (status, digest string, body []byte) {
	rc.t.Helper()
	for i := 0; i < 100000; i++ {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			rc.t.Fatalf("reading stream %d's response: %v", id, err)
		}
		if d, ok := f.(*http2.DataFrame); ok && d.Length > 0 {
			rc.fr.WriteWindowUpdate(0, d.Length)
			if d.StreamID == id && !d.StreamEnded() {
				rc.fr.WriteWindowUpdate(id, d.Length)
			}
		}
		if f.Header().StreamID != id {
			continue
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if s := f.PseudoValue("status"); s != "" {
				status = s
			}
			for _, hf := range f.RegularFields() {
				if hf.Name == "x-body" {
					digest = hf.Value
				}
			}
			if f.StreamEnded() {
				return status, digest, body
			}
		case *http2.DataFrame:
			body = append(body, f.Data()...)
			if f.StreamEnded() {
				return status, digest, body
			}
		case *http2.RSTStreamFrame:
			return "RST", digest, body
		}
	}
	rc.t.Fatalf("stream %d did not end", id)
	return "", "", nil
}

// writeSlowly writes b in pieces of at most piece bytes, pausing pause
// between them, so that the server reads them apart and may wait between.
func (rc *rawConn) writeSlowly(b []byte, piece int, pause time.Duration) {
	rc.t.Helper()
	for len(b) > 0 {
		n := min(piece, len(b))
		if _, err := rc.nc.Write(b[:n]); err != nil {
			rc.t.Fatal(err)
		}
		b = b[n:]
		if len(b) > 0 && pause > 0 {
			time.Sleep(pause)
		}
	}
}

// encodeFrames returns the bytes write makes a Framer write.
func encodeFrames(write func(fr *http2.Framer)) []byte {
	var buf bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	fr.AllowIllegalWrites = true
	write(fr)
	return buf.Bytes()
}
