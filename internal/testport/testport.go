// Package testport picks free TCP ports for tests that hand a port to another
// process.
package testport

import (
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
)

// The range ports are picked from: below Linux's default ephemeral range
// (32768-60999). A port the kernel hands out for ":0" is in that range, so while it
// waits for the process meant to bind it, any outgoing connection on the machine may
// take it as its source port; under a loaded CI run that happens. Ports below the
// range are never given out that way.
const (
	lowest  = 20000
	highest = 32767
)

// Free returns a port that is free on 127.0.0.1 now. The caller's process should
// bind it soon; a test that needs many uses Free for each.
func Free(t testing.TB) int {
	t.Helper()
	for range 200 {
		port := lowest + rand.IntN(highest-lowest+1)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatal("no free port found in 200 tries")
	return 0
}
