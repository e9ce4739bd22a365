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
	// More than a socket buffer holds, so that the write waits for the reader.
	big := bytes.Repeat([]byte("switchyard"), 1<<20)
	got := make(chan []byte, 1)
	go func() {
		data, _ := io.ReadAll(io.LimitReader(peer, int64(len(big))))
		got <- data
	}()
	if n, err := rc.Write(big); err != nil || n != len(big) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if data := <-got; !bytes.Equal(data, big) {
		t.Fatalf("peer read %d bytes, not what was written", len(data))
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
