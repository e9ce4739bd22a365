package h1

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestReplayConnHalfCloses: a connection handed over with the bytes read ahead can
// still shut its write side, and the peer reads the end of the stream while the
// connection stays open for reading.
func TestReplayConnHalfCloses(t *testing.T) {
	client, server := tcpPair(t)
	rc := &replayConn{Conn: server, pending: []byte("ahead")}
	defer rc.Close()
	if err := rc.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	_ = client.SetDeadline(time.Now().Add(5 * time.Second))
	if n, err := client.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("the peer read %d bytes, %v; want the end of the stream", n, err)
	}
	if _, err := client.Write([]byte("more")); err != nil {
		t.Fatal(err)
	}
	_ = rc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 9)
	if _, err := io.ReadFull(rc, got); err != nil || string(got) != "aheadmore" {
		t.Fatalf("read %q, %v after the half-close", got, err)
	}
}

// idleFake is a connection offering ReadIdle that always waits: it gives the
// buffer back, then reads into a new one.
type idleFake struct {
	net.Conn
	calls int
}

func (f *idleFake) CanWaitIdle() bool { return true }

func (f *idleFake) ReadIdle(p []byte, release func([]byte), acquire func() []byte) ([]byte, int, error) {
	f.calls++
	release(p)
	b := acquire()
	n, err := f.Conn.Read(b)
	return b, n, err
}

// TestReplayConnReadsIdleAfterItsBytes: a connection handed over offers ReadIdle
// when the connection it wraps does; the bytes read ahead come first, without a
// wait, and are then let go; later reads are the wrapped connection's ReadIdle.
func TestReplayConnReadsIdleAfterItsBytes(t *testing.T) {
	client, server := tcpPair(t)
	_ = server.SetDeadline(time.Now().Add(5 * time.Second))
	if (&replayConn{Conn: server}).CanWaitIdle() {
		t.Fatal("CanWaitIdle over a connection without ReadIdle")
	}
	fake := &idleFake{Conn: server}
	rc := &replayConn{Conn: fake, pending: []byte("ahead")}
	if !rc.CanWaitIdle() {
		t.Fatal("no CanWaitIdle over a connection with ReadIdle")
	}
	released, acquired := 0, 0
	release := func([]byte) { released++ }
	acquire := func() []byte { acquired++; return make([]byte, 16) }
	buf, n, err := rc.ReadIdle(nil, release, acquire)
	if err != nil || string(buf[:n]) != "ahead" || fake.calls != 0 || released != 0 || acquired != 1 || rc.pending != nil {
		t.Fatalf("first ReadIdle = %q, %v (waits %d, released %d, acquired %d, pending kept %v); want the bytes read ahead at once",
			buf[:n], err, fake.calls, released, acquired, rc.pending != nil)
	}
	if _, err := client.Write([]byte("more")); err != nil {
		t.Fatal(err)
	}
	buf, n, err = rc.ReadIdle(buf, release, acquire)
	if err != nil || string(buf[:n]) != "more" || fake.calls != 1 || released != 1 {
		t.Fatalf("second ReadIdle = %q, %v (waits %d, released %d); want the connection's ReadIdle", buf[:n], err, fake.calls, released)
	}
}

// tcpPair returns both ends of a TCP connection on loopback; both are closed
// when the test ends.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}
