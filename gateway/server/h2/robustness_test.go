package h2

import (
	"encoding/binary"
	"io"
	"math/rand"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestRandomFramesNeverCrash throws seeded random frame sequences (valid
// requests mixed with random types, flags, stream ids and payloads) at the
// server. A panic on the connection goroutine would crash the test binary;
// afterwards the server must still serve a well-formed request.
func TestRandomFramesNeverCrash(t *testing.T) {
	const seed = 1
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Trailer", "X-T")
		io.WriteString(w, "ok")
		w.Header().Set("X-T", "v")
	}), func(c *Config) { c.MaxConcurrentStreams = 8 })
	rng := rand.New(rand.NewSource(seed))
	for conn := 0; conn < 200; conn++ {
		rc := dialRaw(t, ts.addr)
		for i := 0; i < 30; i++ {
			if err := writeRandomFrame(rc, rng); err != nil {
				break // the server hung up, as it may
			}
		}
		// Drain what the server says until it closes or goes quiet.
		rc.nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		io.Copy(io.Discard, rc.nc)
		rc.nc.Close()
	}
	res, err := h2cClient(t).Get("http://" + ts.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "ok" || res.Trailer.Get("X-T") != "v" {
		t.Fatalf("after random frames: %q %v", b, res.Trailer)
	}
}

// writeRandomFrame writes one frame: usually a plausible one, sometimes raw
// garbage with a random type and flags.
func writeRandomFrame(rc *rawConn, rng *rand.Rand) error {
	id := uint32(rng.Intn(12))
	switch rng.Intn(8) {
	case 0:
		rc.hbuf.Reset()
		return rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: rng.Intn(2) == 0,
			BlockFragment: rc.block(":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/")})
	case 1:
		return rc.fr.WriteData(id, rng.Intn(2) == 0, make([]byte, rng.Intn(20000)))
	case 2:
		return rc.fr.WriteRSTStream(id, http2.ErrCode(rng.Intn(14)))
	case 3:
		return rc.fr.WriteWindowUpdate(id, uint32(rng.Int31()))
	case 4:
		return rc.fr.WriteSettings(http2.Setting{ID: http2.SettingID(rng.Intn(8)), Val: rng.Uint32()})
	case 5:
		return rc.fr.WriteContinuation(id, rng.Intn(2) == 0, randomBytes(rng, 50))
	default:
		// A raw frame: random length (within the default maximum), type,
		// flags and payload.
		payload := randomBytes(rng, rng.Intn(64))
		hdr := make([]byte, 9)
		hdr[0], hdr[1], hdr[2] = 0, 0, byte(len(payload))
		hdr[3] = byte(rng.Intn(12))
		hdr[4] = byte(rng.Intn(256))
		binary.BigEndian.PutUint32(hdr[5:], id)
		_, err := rc.nc.Write(append(hdr, payload...))
		return err
	}
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	rng.Read(b)
	return b
}
