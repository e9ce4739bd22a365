package mesh

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultTunnelIdleTimeout closes a CONNECT tunnel through which no byte has moved,
// either way, for this long: long enough for database connections and other quiet
// but live protocols, short enough that abandoned tunnels do not pile up.
const DefaultTunnelIdleTimeout = time.Hour

// tunnelBufferSize is the size of the buffers tunnels copy through.
const tunnelBufferSize = 32 << 10

// tunnelBuffers recycles copy buffers. It stores array pointers, so that putting one
// back does not allocate.
var tunnelBuffers = sync.Pool{New: func() any { return new([tunnelBufferSize]byte) }}

// stream is one side of a tunnel: a connection, or an HTTP/2 CONNECT stream.
type stream interface {
	io.ReadWriteCloser
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// closeWriter is a stream that can be closed for writing only (TCP half-close).
type closeWriter interface{ CloseWrite() error }

var errHijackUnsupported = errors.New("the connection cannot be taken over for a tunnel")

// establish answers a CONNECT request with 200 and returns the client side of the
// tunnel. raw must be the connection's own ResponseWriter, or one that unwraps to
// it. An HTTP/1 connection is taken over (hijacked), and bytes the client sent after
// the request head are returned too, to be sent upstream first; an HTTP/2 stream
// stays a stream.
func establish(raw http.ResponseWriter, r *http.Request) (stream, []byte, error) {
	rc := http.NewResponseController(raw)
	if r.ProtoMajor >= 2 {
		raw.WriteHeader(http.StatusOK)
		if err := rc.Flush(); err != nil {
			return nil, nil, err
		}
		return &h2Stream{body: r.Body, w: raw, rc: rc}, nil, nil
	}
	conn, brw, err := rc.Hijack()
	if err != nil {
		return nil, nil, errors.Join(errHijackUnsupported, err)
	}
	var early []byte
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ = brw.Reader.Peek(n)
	}
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return conn, early, nil
}

// splice copies bytes both ways between client and upstream until both directions
// have ended, then closes both. A direction that reaches end of file half-closes its
// destination, so the other direction carries on (a client that has sent its whole
// request still gets the whole answer). A direction that fails closes both sides. The
// tunnel ends when nothing has moved either way for idle (no limit when idle is 0).
func splice(client, upstream stream, idle time.Duration) {
	var lastActive atomic.Int64
	lastActive.Store(time.Now().UnixNano())
	closeBoth := sync.OnceFunc(func() {
		_ = client.Close()
		_ = upstream.Close()
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if pipe(upstream, client, idle, &lastActive) != nil {
			closeBoth()
		}
	}()
	if pipe(client, upstream, idle, &lastActive) != nil {
		closeBoth()
	}
	<-done
	closeBoth()
}

// pipe copies src to dst through a pooled buffer. At src's end of file it
// half-closes dst and returns nil; a stream that cannot be half-closed is closed,
// and an error returned so that the tunnel ends. A read that times out while the
// other direction moved bytes within idle is tried again.
func pipe(dst, src stream, idle time.Duration, lastActive *atomic.Int64) error {
	buf := tunnelBuffers.Get().(*[tunnelBufferSize]byte)
	defer tunnelBuffers.Put(buf)
	for {
		if idle > 0 {
			_ = src.SetReadDeadline(time.Now().Add(idle))
		}
		n, err := src.Read(buf[:])
		if n > 0 {
			lastActive.Store(time.Now().UnixNano())
			if idle > 0 {
				_ = dst.SetWriteDeadline(time.Now().Add(idle))
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			if cw, ok := dst.(closeWriter); ok && cw.CloseWrite() == nil {
				return nil
			}
			return io.ErrUnexpectedEOF
		case idle > 0 && errors.Is(err, os.ErrDeadlineExceeded) &&
			time.Since(time.Unix(0, lastActive.Load())) < idle:
			// Quiet this way, busy the other: the tunnel is alive.
		default:
			return err
		}
	}
}

// h2Stream is the client side of an HTTP/2 CONNECT: the request body one way, the
// response body the other. It cannot be half-closed: the response ends when the
// handler returns.
type h2Stream struct {
	body io.ReadCloser
	w    http.ResponseWriter
	rc   *http.ResponseController
}

func (s *h2Stream) Read(p []byte) (int, error) { return s.body.Read(p) }

func (s *h2Stream) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err == nil {
		err = s.rc.Flush()
	}
	return n, err
}

func (s *h2Stream) Close() error                       { return s.body.Close() }
func (s *h2Stream) SetReadDeadline(t time.Time) error  { return s.rc.SetReadDeadline(t) }
func (s *h2Stream) SetWriteDeadline(t time.Time) error { return s.rc.SetWriteDeadline(t) }

// writeEarly sends the bytes a client pipelined behind its CONNECT head upstream.
func writeEarly(upstream net.Conn, early []byte, idle time.Duration) error {
	if len(early) == 0 {
		return nil
	}
	if idle > 0 {
		_ = upstream.SetWriteDeadline(time.Now().Add(idle))
	}
	_, err := upstream.Write(early)
	return err
}
