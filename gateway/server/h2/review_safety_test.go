package h2

import (
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/http2"
)

// writeRawFrame writes a frame header and payload by hand, so that the
// payload may exceed what the client Framer would allow.
func (rc *rawConn) writeRawFrame(typ http2.FrameType, flags http2.Flags, id uint32, payload []byte) {
	rc.t.Helper()
	n := len(payload)
	hdr := []byte{byte(n >> 16), byte(n >> 8), byte(n), byte(typ), byte(flags),
		byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
	if _, err := rc.nc.Write(append(hdr, payload...)); err != nil {
		rc.t.Fatal(err)
	}
}

// A DATA or HEADERS frame larger than the SETTINGS_MAX_FRAME_SIZE we allow
// (the initial 16384) is a connection error of type FRAME_SIZE_ERROR
// (RFC 9113 §4.2), and never reaches the handler.
func TestOversizedFrameIsFrameSizeError(t *testing.T) {
	for _, kind := range []string{"DATA", "HEADERS"} {
		t.Run(kind, func(t *testing.T) {
			ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil)
			rc := dialRaw(t, ts.addr)
			const big = 16384 + 1 // one byte over the initial SETTINGS_MAX_FRAME_SIZE
			if kind == "DATA" {
				rc.request(1, false, "POST", "/")
				rc.writeRawFrame(http2.FrameData, http2.FlagDataEndStream, 1, make([]byte, big))
			} else {
				// A valid header block, padded out (uncompressed) past the limit.
				block := rc.block(":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/")
				block = append(block, 0x00, 0x05) // literal, new name, 5 bytes
				block = append(block, "x-pad"...)
				block = append(block, 0x7f, 0x81, 0x80, 0x01) // raw value of 127+16384 bytes
				block = append(block, strings.Repeat("p", 127+big)...)
				rc.writeRawFrame(http2.FrameHeaders, http2.FlagHeadersEndHeaders|http2.FlagHeadersEndStream, 3, block)
			}
			ga, _ := rc.readUntilEnd()
			if ga == nil || ga.ErrCode != http2.ErrCodeFrameSize {
				t.Fatalf("GOAWAY %+v, want FRAME_SIZE_ERROR", ga)
			}
		})
	}
}
