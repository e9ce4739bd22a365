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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
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
