package h2

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestLargeHeaderBlocksAreSplitIntoContinuations checks the header blocks
// encoded straight into the output buffer: one larger than a frame is sent as
// HEADERS and CONTINUATION frames, for the response head and its trailers, and
// small ones around it are intact.
func TestLargeHeaderBlocksAreSplitIntoContinuations(t *testing.T) {
	big := strings.Repeat("h", 40000)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Trailer")
		w.Header().Set("X-Big", big)
		w.Header().Set("X-Small", "s")
		io.WriteString(w, "body")
		w.Header().Set("X-Trailer", big+"t")
	}), nil)
	client := h2cClient(t)
	for i := range 3 {
		res, err := client.Get("http://" + ts.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || string(body) != "body" {
			t.Fatalf("request %d: body %q, %v", i, body, err)
		}
		if res.Header.Get("X-Big") != big || res.Header.Get("X-Small") != "s" || res.Trailer.Get("X-Trailer") != big+"t" {
			t.Fatalf("request %d: X-Big %d bytes, X-Small %q, X-Trailer %d bytes; want %d, s, %d",
				i, len(res.Header.Get("X-Big")), res.Header.Get("X-Small"), len(res.Trailer.Get("X-Trailer")), len(big), len(big)+1)
		}
	}
}
