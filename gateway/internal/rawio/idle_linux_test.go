//go:build linux

package rawio

import (
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

func TestWaitReadableThenTryRead(t *testing.T) {
	rc, raw, peer := pair(t)
	buf := make([]byte, 16)
	if n, ok, err := rc.TryRead(buf); ok || n != 0 || err != nil {
		t.Fatalf("TryRead on an empty socket = %d, %v, %v; want 0, false, nil", n, ok, err)
	}
	_ = raw.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if err := rc.WaitReadable(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WaitReadable past the deadline = %v, want a deadline error", err)
	}
	_ = raw.SetReadDeadline(time.Time{})

	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = peer.Write([]byte("hello"))
	}()
	if err := rc.WaitReadable(); err != nil {
		t.Fatal(err)
	}
	// Waiting took nothing: the bytes are all there for the read.
	if err := rc.WaitReadable(); err != nil {
		t.Fatal(err)
	}
	if n, ok, err := rc.TryRead(buf); !ok || err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("TryRead = %q, %v, %v; want hello", buf[:n], ok, err)
	}

	peer.Close()
	if err := rc.WaitReadable(); err != nil {
		t.Fatalf("WaitReadable on a closed peer = %v, want nil (the read reports it)", err)
	}
	if n, ok, err := rc.TryRead(buf); !ok || n != 0 || err != io.EOF {
		t.Fatalf("TryRead after the peer closed = %d, %v, %v; want 0, true, EOF", n, ok, err)
	}
}
