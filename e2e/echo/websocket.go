package echo

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// This file is a minimal RFC 6455 WebSocket server: enough to echo messages back
// through a gateway, without extensions or subprotocols.

// websocketGUID is the fixed string RFC 6455 appends to the client's key.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// maxFramePayload bounds one frame, so that a peer cannot make the server allocate
// without limit.
const maxFramePayload = 1 << 20

// websocketIdleTimeout closes a WebSocket connection that has been silent this long.
const websocketIdleTimeout = 2 * time.Minute

// Frame opcodes (RFC 6455 section 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// Close status codes (RFC 6455 section 7.4.1).
const (
	closeProtocolError = 1002
	closeTooBig        = 1009
)

// isWebSocketUpgrade reports whether r asks for a WebSocket over HTTP/1.1.
func isWebSocketUpgrade(r *http.Request) bool {
	return r.ProtoMajor == 1 && headerHasToken(r.Header, "Connection", "upgrade") &&
		headerHasToken(r.Header, "Upgrade", "websocket")
}

// headerHasToken reports whether a comma-separated header lists token,
// case-insensitively.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// AcceptKey computes Sec-WebSocket-Accept for a Sec-WebSocket-Key.
func AcceptKey(key string) string {
	sum := sha1.Sum([]byte(key + websocketGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// serveWebSocket completes the handshake and echoes frames until the peer closes.
func serveWebSocket(w http.ResponseWriter, r *http.Request, logger *slog.Logger) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if r.Method != http.MethodGet || key == "" || r.Header.Get("Sec-WebSocket-Version") != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		writeError(w, http.StatusBadRequest, "a WebSocket handshake needs GET, Sec-WebSocket-Key and Sec-WebSocket-Version: 13")
		return
	}
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "cannot take over the connection: "+err.Error())
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Time{})
	fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: %s\r\n\r\n", AcceptKey(key))
	if err := rw.Flush(); err != nil {
		return
	}
	for {
		_ = conn.SetReadDeadline(time.Now().Add(websocketIdleTimeout))
		done, err := echoFrame(rw.Reader, rw.Writer)
		if err == nil {
			err = rw.Flush()
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				logger.Debug("websocket connection ended", "remote", r.RemoteAddr, "error", err)
			}
			return
		}
		if done {
			return
		}
	}
}

// frame is one decoded WebSocket frame.
type frame struct {
	fin     bool
	opcode  byte
	payload []byte
}

// echoFrame reads one client frame and writes the answer: data frames come back as
// they were sent (so fragmented messages come back fragmented), a ping gets a pong, a
// close gets a close and ends the connection (done).
func echoFrame(r *bufio.Reader, w *bufio.Writer) (done bool, err error) {
	f, closeCode, err := readFrame(r)
	if err != nil {
		if closeCode != 0 {
			// A protocol violation: say why before hanging up.
			payload := binary.BigEndian.AppendUint16(nil, closeCode)
			_ = writeFrame(w, frame{fin: true, opcode: opClose, payload: payload})
			_ = w.Flush()
		}
		return true, err
	}
	switch f.opcode {
	case opContinuation, opText, opBinary:
		return false, writeFrame(w, f)
	case opPing:
		return false, writeFrame(w, frame{fin: true, opcode: opPong, payload: f.payload})
	case opPong:
		return false, nil
	case opClose:
		// Echo the status code (first two bytes), as RFC 6455 section 5.5.1 suggests.
		payload := f.payload
		if len(payload) > 2 {
			payload = payload[:2]
		}
		return true, writeFrame(w, frame{fin: true, opcode: opClose, payload: payload})
	}
	return true, writeFrame(w, frame{fin: true, opcode: opClose,
		payload: binary.BigEndian.AppendUint16(nil, closeProtocolError)})
}

// readFrame reads one frame from a client. Client frames must be masked. On a
// protocol violation it returns the close code to send.
func readFrame(r *bufio.Reader) (frame, uint16, error) {
	var head [2]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return frame{}, 0, err
	}
	f := frame{fin: head[0]&0x80 != 0, opcode: head[0] & 0x0F}
	if head[0]&0x70 != 0 {
		return f, closeProtocolError, errors.New("reserved bits set without a negotiated extension")
	}
	if head[1]&0x80 == 0 {
		return f, closeProtocolError, errors.New("client frame is not masked")
	}
	length, err := readLength(r, head[1]&0x7F)
	if err != nil {
		return f, 0, err
	}
	isControl := f.opcode&0x8 != 0
	if isControl && (length > 125 || !f.fin) {
		return f, closeProtocolError, errors.New("control frame fragmented or longer than 125 bytes")
	}
	if length > maxFramePayload {
		return f, closeTooBig, fmt.Errorf("frame of %d bytes exceeds the %d byte limit", length, maxFramePayload)
	}
	var mask [4]byte
	if _, err := io.ReadFull(r, mask[:]); err != nil {
		return f, 0, err
	}
	f.payload = make([]byte, length)
	if _, err := io.ReadFull(r, f.payload); err != nil {
		return f, 0, err
	}
	for i := range f.payload {
		f.payload[i] ^= mask[i%4]
	}
	return f, 0, nil
}

// readLength decodes the payload length from its 7-bit field and the extended bytes.
func readLength(r *bufio.Reader, short byte) (uint64, error) {
	switch short {
	case 126:
		var b [2]byte
		_, err := io.ReadFull(r, b[:])
		return uint64(binary.BigEndian.Uint16(b[:])), err
	case 127:
		var b [8]byte
		_, err := io.ReadFull(r, b[:])
		return binary.BigEndian.Uint64(b[:]), err
	}
	return uint64(short), nil
}

// writeFrame writes an unmasked server frame.
func writeFrame(w *bufio.Writer, f frame) error {
	b0 := f.opcode
	if f.fin {
		b0 |= 0x80
	}
	header := []byte{b0}
	switch n := len(f.payload); {
	case n <= 125:
		header = append(header, byte(n))
	case n <= 0xFFFF:
		header = binary.BigEndian.AppendUint16(append(header, 126), uint16(n))
	default:
		header = binary.BigEndian.AppendUint64(append(header, 127), uint64(n))
	}
	if _, err := w.Write(header); err != nil {
		return err
	}
	_, err := w.Write(f.payload)
	return err
}
