package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// pair returns the two ends of a loopback TCP connection, the first wrapped.
func pair(t *testing.T) (*Conn, net.Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	rc := New(client)
	if rc == nil {
		if runtime.GOOS == "linux" {
			t.Fatal("no raw access to a TCP connection on Linux")
		}
		t.Log("raw I/O is Linux-only; this platform reads through net.Conn")
	}
	return rc, client, server
}

func TestReadAndWrite(t *testing.T) {
	rc, _, peer := pair(t)
	if rc == nil {
		return
	}
	// More than a socket buffer holds, in writes small enough to be raw ones, with
	// the reader starting late: the writes wait for room.
	chunk := bytes.Repeat([]byte("switchyard"), 6000)
	const chunks = 64
	got := make(chan []byte, 1)
	go func() {
		time.Sleep(50 * time.Millisecond)
		data, _ := io.ReadAll(io.LimitReader(peer, int64(len(chunk)*chunks)))
		got <- data
	}()
	for range chunks {
		if n, err := rc.Write(chunk); err != nil || n != len(chunk) {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	// And one larger than a raw write takes, which goes through net.Conn.
	big := bytes.Repeat([]byte("x"), 3*maxRawWrite)
	if data := <-got; !bytes.Equal(data, bytes.Repeat(chunk, chunks)) {
		t.Fatalf("peer read %d bytes, not what was written", len(data))
	}
	drained := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, io.LimitReader(peer, int64(len(big))))
		drained <- n
	}()
	if n, err := rc.Write(big); err != nil || n != len(big) {
		t.Fatalf("large Write = %d, %v", n, err)
	}
	if n := <-drained; n != int64(len(big)) {
		t.Fatalf("peer read %d of the large write's %d bytes", n, len(big))
	}
	if _, err := peer.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := rc.Read(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	peer.Close()
	if _, err := rc.Read(buf); err != io.EOF {
		t.Fatalf("Read after the peer closed = %v, want io.EOF", err)
	}
}

func TestErrorsAreTheNetPackages(t *testing.T) {
	rc, conn, peer := pair(t)
	if rc == nil {
		return
	}
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := rc.Read(make([]byte, 8))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read past the deadline = %v, want a timeout", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("error %#v is not a read OpError", err)
	}
	_ = conn.SetReadDeadline(time.Time{})

	// A reset from the peer: it closes with unread data and a zero linger.
	if tcp, ok := peer.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	peer.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err = rc.Write([]byte("x"))
		if err != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Write to a reset connection = %v", err)
	}
	conn.Close()
	if _, err := rc.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read of a closed connection = %v, want net.ErrClosed", err)
	}
}

func TestNewRefusesOtherConns(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if New(a) != nil {
		t.Fatal("New wrapped a net.Pipe")
	}
}

// A socket in blocking mode (as File leaves it) is not read raw: a raw read could
// wait with the scheduler unaware.
func TestNewRefusesBlockingSockets(t *testing.T) {
	_, conn, _ := pair(t)
	f, err := conn.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_ = f.Fd() // Fd puts the shared file description in blocking mode.
	if New(conn) != nil {
		t.Fatal("New wrapped a socket in blocking mode")
	}
}

func TestWriteBuffers(t *testing.T) {
	rc, _, peer := pair(t)
	if rc == nil {
		return
	}
	head := []byte("HTTP/1.1 200 OK\r\nContent-Length: 60000\r\n\r\n")
	body := bytes.Repeat([]byte("b"), 60000)
	const rounds = 40
	got := make(chan []byte, 1)
	go func() {
		// Late, so that the socket's buffer fills and writes resume part way.
		time.Sleep(50 * time.Millisecond)
		data, _ := io.ReadAll(io.LimitReader(peer, int64(rounds*(len(head)+len(body)))))
		got <- data
	}()
	var want []byte
	for range rounds {
		bufs := net.Buffers{head, nil, body}
		n, err := rc.WriteBuffers(&bufs)
		if err != nil || n != int64(len(head)+len(body)) || len(bufs) != 0 {
			t.Fatalf("WriteBuffers = %d, %v, %d buffers left", n, err, len(bufs))
		}
		want = append(append(want, head...), body...)
	}
	if data := <-got; !bytes.Equal(data, want) {
		t.Fatalf("peer read %d bytes, not the %d written", len(data), len(want))
	}
}
