// Package testtcp has TCP servers for tests of tunnels and proxies.
package testtcp

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// ReplyAfterEOF serves TCP on addr ("ip:port", port 0 for any): it reads everything
// a client sends until the client half-closes, then answers "got:" and what it read,
// and closes. Only a tunnel that passes half-closes on in both directions gets the
// answer through. It returns the bound address; the server stops with the test.
func ReplyAfterEOF(t testing.TB, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				got, _ := io.ReadAll(c)
				_, _ = c.Write(append([]byte("got:"), got...))
			})
		}
	})
	return ln.Addr().String()
}
