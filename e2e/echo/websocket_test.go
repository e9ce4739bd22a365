package echo

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// wsClient is a minimal hand-rolled WebSocket client for the tests.
type wsClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

// dialWebSocket connects to addr and performs the opening handshake.
func dialWebSocket(t *testing.T, addr string) *wsClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	_, err = io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: echo\r\nUpgrade: websocket\r\n"+
		"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: "+key+"\r\nSec-WebSocket-Version: 13\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The accept value for this key is the worked example of RFC 6455 section 1.3.
	if resp.StatusCode != http.StatusSwitchingProtocols ||
		resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" ||
		!strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("handshake answer %d %v", resp.StatusCode, resp.Header)
	}
	return &wsClient{t: t, conn: conn, r: r}
}

// send writes one masked client frame.
func (c *wsClient) send(fin bool, opcode byte, payload []byte) {
	c.t.Helper()
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	header := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		header = append(header, 0x80|byte(n))
	case n <= 0xFFFF:
		header = binary.BigEndian.AppendUint16(append(header, 0x80|126), uint16(n))
	default:
		header = binary.BigEndian.AppendUint64(append(header, 0x80|127), uint64(n))
	}
	mask := [4]byte{0x12, 0x34, 0x56, 0x78}
	masked := make([]byte, len(payload))
	for i := range payload {
		masked[i] = payload[i] ^ mask[i%4]
	}
	if _, err := c.conn.Write(append(append(header, mask[:]...), masked...)); err != nil {
		c.t.Fatal(err)
	}
}

// receive reads one server frame, which must be unmasked.
func (c *wsClient) receive() (fin bool, opcode byte, payload []byte) {
	c.t.Helper()
	var head [2]byte
	if _, err := io.ReadFull(c.r, head[:]); err != nil {
		c.t.Fatal(err)
	}
	if head[1]&0x80 != 0 {
		c.t.Fatal("server frame is masked")
	}
	n := uint64(head[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		io.ReadFull(c.r, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		io.ReadFull(c.r, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.r, payload); err != nil {
		c.t.Fatal(err)
	}
	return head[0]&0x80 != 0, head[0] & 0x0F, payload
}

// expect reads a frame and checks it.
func (c *wsClient) expect(fin bool, opcode byte, payload string) {
	c.t.Helper()
	gotFin, gotOp, got := c.receive()
	if gotFin != fin || gotOp != opcode || string(got) != payload {
		c.t.Fatalf("frame fin=%v op=%d payload %.40q, want fin=%v op=%d payload %.40q",
			gotFin, gotOp, got, fin, opcode, payload)
	}
}

// expectClosed checks that the server closes the connection.
func (c *wsClient) expectClosed() {
	c.t.Helper()
	if n, err := c.r.Read(make([]byte, 1)); err != io.EOF {
		c.t.Fatalf("after close: read %d bytes, error %v; want EOF", n, err)
	}
}

func TestWebSocketEcho(t *testing.T) {
	addr, logs := startEcho(t)
	c := dialWebSocket(t, addr)

	c.send(true, opText, []byte("hello"))
	c.expect(true, opText, "hello")

	data := []byte{0, 1, 2, 0xFF}
	c.send(true, opBinary, data)
	c.expect(true, opBinary, string(data))

	long := strings.Repeat("0123456789", 700) // 16-bit length form.
	c.send(true, opText, []byte(long))
	c.expect(true, opText, long)

	huge := strings.Repeat("x", 70000) // 64-bit length form.
	c.send(true, opBinary, []byte(huge))
	c.expect(true, opBinary, huge)

	// A fragmented message with a ping between its fragments.
	c.send(false, opText, []byte("frag-"))
	c.send(true, opPing, []byte("are you there"))
	c.send(true, opContinuation, []byte("ment"))
	c.expect(false, opText, "frag-")
	c.expect(true, opPong, "are you there")
	c.expect(true, opContinuation, "ment")

	c.send(true, opPong, []byte("unsolicited"))
	c.send(true, opClose, binary16(1000, "bye"))
	c.expect(true, opClose, string(binary16(1000, "")))
	c.expectClosed()

	if !strings.Contains(logs.String(), "Echoing back request made to /ws to client (127.0.0.1:") {
		t.Errorf("the upgrade request was not logged: %s", logs)
	}
}

func TestWebSocketRejectsUnmaskedFrames(t *testing.T) {
	addr, _ := startEcho(t)
	c := dialWebSocket(t, addr)
	if _, err := c.conn.Write([]byte{0x81, 0x02, 'h', 'i'}); err != nil {
		t.Fatal(err)
	}
	c.expect(true, opClose, string(binary16(closeProtocolError, "")))
	c.expectClosed()
}

func TestWebSocketRejectsOversizedFrames(t *testing.T) {
	addr, _ := startEcho(t)
	c := dialWebSocket(t, addr)
	header := binary.BigEndian.AppendUint64([]byte{0x82, 0x80 | 127}, maxFramePayload+1)
	if _, err := c.conn.Write(header); err != nil {
		t.Fatal(err)
	}
	c.expect(true, opClose, string(binary16(closeTooBig, "")))
	c.expectClosed()
}

func TestWebSocketBadHandshake(t *testing.T) {
	addr, _ := startEcho(t)
	req, _ := http.NewRequest("GET", "http://"+addr+"/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Sec-WebSocket-Version") != "13" {
		t.Fatalf("handshake without a key: %d %v", resp.StatusCode, resp.Header)
	}
}

func binary16(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}
