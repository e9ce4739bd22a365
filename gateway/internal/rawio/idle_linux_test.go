//go:build linux

package rawio

import (
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

// idleBuffers hands out and takes back buffers for ReadIdle, counting both.
type idleBuffers struct {
	released, acquired int
}

func (b *idleBuffers) release([]byte)  { b.released++ }
func (b *idleBuffers) acquire() []byte { b.acquired++; return make([]byte, 16) }

func TestReadIdleGivesTheBufferBackOnlyToWait(t *testing.T) {
	rc, raw, peer := pair(t)
	var bufs idleBuffers
	held := make([]byte, 16)

	// Bytes already there: read into the buffer held, which is kept.
	if _, err := peer.Write([]byte("first")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	buf, n, err := rc.ReadIdle(held, bufs.release, bufs.acquire)
	if err != nil || string(buf[:n]) != "first" || &buf[0] != &held[0] || bufs.released+bufs.acquired != 0 {
		t.Fatalf("ReadIdle with bytes there = %q, %v (released %d, acquired %d); want first in the held buffer",
			buf[:n], err, bufs.released, bufs.acquired)
	}

	// Nothing until after a pause: the buffer goes back, and a new one is read into.
	go func() {
		time.Sleep(30 * time.Millisecond)
		_, _ = peer.Write([]byte("second"))
	}()
	buf, n, err = rc.ReadIdle(held, bufs.release, bufs.acquire)
	if err != nil || string(buf[:n]) != "second" || &buf[0] == &held[0] || bufs.released != 1 || bufs.acquired != 1 {
		t.Fatalf("ReadIdle after a wait = %q, %v (released %d, acquired %d); want second in an acquired buffer",
			buf[:n], err, bufs.released, bufs.acquired)
	}

	// A deadline that passes while waiting: no buffer is held on return.
	_ = raw.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	buf, _, err = rc.ReadIdle(held, bufs.release, bufs.acquire)
	if !errors.Is(err, os.ErrDeadlineExceeded) || buf != nil || bufs.released != 2 {
		t.Fatalf("ReadIdle past its deadline = %v, buffer held %v, released %d; want a deadline error and none held",
			err, buf != nil, bufs.released)
	}
	_ = raw.SetReadDeadline(time.Time{})

	peer.Close()
	if _, n, err := rc.ReadIdle(held, bufs.release, bufs.acquire); n != 0 || err != io.EOF {
		t.Fatalf("ReadIdle after the peer closed = %d, %v; want 0, EOF", n, err)
	}
}
