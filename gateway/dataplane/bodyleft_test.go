package dataplane

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// TestRetryBodyLeftoverIsNotASecondRequest: a rule with a retry policy gets a POST
// whose body is larger than the replay limit and cannot be forwarded (the backend
// refuses connections). The unread rest of the body must be discarded (or the
// connection closed), never parsed as the next request on the connection.
func TestRetryBodyLeftoverIsNotASecondRequest(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := dead.Addr().String()
	dead.Close() // connections to addr are refused

	snap := snapshotFor("smuggle", addr)
	snap.Listeners[0].VirtualHosts[0].Routes[0].Rules[0].Retry = &config.Retry{
		Attempts: 1, Backoff: config.Duration(time.Millisecond),
		On: []config.RetryCondition{config.RetryConnectFailure},
	}
	e := newTestEngine(t)
	mustApply(t, e, snap)

	conn, err := net.DialTimeout("tcp", e.Addr("127.0.0.1:0"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	inner := "GET /smuggled HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
	// One chunk: bufferBody reads its first 64 KiB + 1 bytes, the rest (inner)
	// stays unread when the backend cannot be reached.
	data := strings.Repeat("a", 64<<10+1) + inner
	go func() {
		_, _ = io.WriteString(conn, "POST /upload HTTP/1.1\r\nHost: app.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"+
			strconv.FormatInt(int64(len(data)), 16)+"\r\n"+data+"\r\n0\r\n\r\n")
	}()
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	t.Logf("first response: %d close=%v", res.StatusCode, res.Close)

	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	if res2, err := http.ReadResponse(br, nil); err == nil {
		b, _ := io.ReadAll(res2.Body)
		t.Fatalf("the gateway answered a second request (%d %q) it parsed from the first request's body", res2.StatusCode, b)
	}
}
