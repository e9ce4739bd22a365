package backend

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"reflect"
	"strings"
	"testing"
)

// fieldLines returns n field lines, every third one repeating a name, so that heads
// of every size have duplicates among their names.
func fieldLines(n int) string {
	var b strings.Builder
	for i := range n {
		if i%3 == 2 {
			fmt.Fprintf(&b, "set-cookie: c%d=v\r\n", i)
		} else {
			fmt.Fprintf(&b, "x-field-%d: value %d\r\n", i, i)
		}
	}
	return b.String()
}

// parseHeads are heads the client accepts, around the sizes at which the parser
// changes how it allocates: numbers of fields and names around a small map's and
// the rooms for values of the sizes of response, and texts around their rooms for
// text.
func parseHeads() map[string]string {
	heads := map[string]string{
		"nginx":         nginxHead,
		"no fields":     "HTTP/1.1 204 No Content\r\n\r\n",
		"bare LF":       "HTTP/1.1 200 OK\ncontent-length: 0\nVary: a\nvary: b\n\n",
		"HTTP/1.0":      "HTTP/1.0 404 Not Found\r\nConnection: keep-alive\r\n\r\n",
		"blanks":        "HTTP/1.1 200 OK\r\nX-A: \t padded \t\r\nX-Empty:\r\nX-B:tight\r\n\r\n",
		"no reason":     "HTTP/1.1 200\r\nDate: Fri, 27 Nov 2026 12:00:00 GMT\r\n\r\n",
		"mixed case":    "HTTP/1.1 200 OK\r\nCONTENT-TYPE: text/plain\r\nx-ReQuEsT-iD: 1\r\netag: \"x\"\r\n\r\n",
		"one name only": "HTTP/1.1 200 OK\r\n" + strings.Repeat("Set-Cookie: a=b\r\n", 12) + "\r\n",
	}
	for _, n := range []int{3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 16, 17, 40} {
		heads[fmt.Sprintf("%d fields", n)] = "HTTP/1.1 200 OK\r\n" + fieldLines(n) + "\r\n"
	}
	for _, size := range []int{len(response416{}.text), len(response512{}.text), len(response768{}.text), len(response1024{}.text)} {
		for _, n := range []int{size - 1, size, size + 1} {
			prefix := "HTTP/1.1 200 OK\r\nX-Pad: "
			heads[fmt.Sprintf("%d bytes", n)] = prefix + strings.Repeat("p", n-len(prefix)-4) + "\r\n\r\n"
		}
	}
	return heads
}

// TestParseResponseHeadAgreesWithNetHTTP parses heads as net/http reads them: the
// status line as http.ReadResponse does, the fields as textproto does.
func TestParseResponseHeadAgreesWithNetHTTP(t *testing.T) {
	for name, head := range parseHeads() {
		t.Run(name, func(t *testing.T) {
			want, err := http.ReadResponse(bufio.NewReader(strings.NewReader(head)), nil)
			if err != nil {
				t.Fatalf("net/http refuses the head: %v", err)
			}
			tp := textproto.NewReader(bufio.NewReader(strings.NewReader(head)))
			_, _ = tp.ReadLine()
			wantHeader, err := tp.ReadMIMEHeader()
			if err != nil {
				t.Fatalf("textproto refuses the fields: %v", err)
			}
			r, err := parseResponseHead([]byte(head))
			if err != nil {
				t.Fatal(err)
			}
			got := &r.res
			if got.Status != want.Status || got.StatusCode != want.StatusCode || got.Proto != want.Proto ||
				got.ProtoMajor != want.ProtoMajor || got.ProtoMinor != want.ProtoMinor {
				t.Errorf("status %q %d %s %d.%d, net/http %q %d %s %d.%d", got.Status, got.StatusCode, got.Proto,
					got.ProtoMajor, got.ProtoMinor, want.Status, want.StatusCode, want.Proto, want.ProtoMajor, want.ProtoMinor)
			}
			if !reflect.DeepEqual(map[string][]string(got.Header), map[string][]string(wantHeader)) {
				t.Errorf("header %q, textproto %q", got.Header, wantHeader)
			}
		})
	}
}

// TestParseResponseHeadCapsValues: the values of a header share one array, so an
// append to one name's values by a caller (as the proxy's) must copy them rather
// than overwrite another name's value.
func TestParseResponseHeadCapsValues(t *testing.T) {
	for name, head := range parseHeads() {
		r, err := parseResponseHead([]byte(head))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		snapshot := r.res.Header.Clone()
		for _, vv := range r.res.Header {
			_ = append(vv, "appended")
		}
		if !reflect.DeepEqual(r.res.Header, snapshot) {
			t.Errorf("%s: appending to values changed the header: %q, was %q", name, r.res.Header, snapshot)
		}
	}
}

// TestParseResponseHeadRefuses: heads the client does not accept.
func TestParseResponseHeadRefuses(t *testing.T) {
	for _, head := range []string{
		"HTTP/1.1 200 OK\r\n folded: value\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-A: a\r\n\tcontinued\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
		"HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
		"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nBad\"Name: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\n" + fieldLines(12) + "Bad Name: x\r\n\r\n",
		"HTTP/1.2 200 OK\r\n\r\n",
		"HTTP/1.1 99 Low\r\n\r\n",
		"HTTP/1.1 2000 Long\r\n\r\n",
		"HTTP/1.1\r\n\r\n",
	} {
		if r, err := parseResponseHead([]byte(head)); err == nil {
			t.Errorf("%q: accepted, as %d %q", head, r.res.StatusCode, r.res.Header)
		}
	}
}

// FuzzParseResponseHead: whatever head the client accepts, net/http reads the same
// fields from.
func FuzzParseResponseHead(f *testing.F) {
	for _, head := range parseHeads() {
		f.Add(head)
	}
	f.Fuzz(func(t *testing.T, head string) {
		if !strings.HasSuffix(head, "\n\n") && !strings.HasSuffix(head, "\n\r\n") {
			return
		}
		r, err := parseResponseHead([]byte(head))
		if err != nil {
			return
		}
		tp := textproto.NewReader(bufio.NewReader(strings.NewReader(head)))
		_, _ = tp.ReadLine()
		want, err := tp.ReadMIMEHeader()
		if err != nil {
			// textproto is stricter about values: it refuses control characters.
			return
		}
		if !reflect.DeepEqual(map[string][]string(r.res.Header), map[string][]string(want)) {
			t.Errorf("header %q, textproto %q", r.res.Header, want)
		}
	})
}

// TestKeptResponseOutlivesTheConnectionsNextResponse: what a caller keeps of a
// response (the proxy moves header values into its own answer) stays as the backend
// sent it while the connection, back in the pool, reads the next response.
func TestKeptResponseOutlivesTheConnectionsNextResponse(t *testing.T) {
	answers := []string{
		"HTTP/1.1 200 OK\r\nX-Value: first\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n2\r\nok\r\n0\r\nX-Sum: one\r\n\r\n",
		"HTTP/1.1 201 Created\r\nX-Value: other\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n2\r\nko\r\n0\r\nx-sum: two\r\nX-SUM:  again \r\n\r\n",
	}
	url := rawServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for _, answer := range answers {
			if readHead(br) != nil {
				return
			}
			_, _ = io.WriteString(c, answer)
		}
	})
	// The server answers a connection's requests in turn, so the second answer comes
	// only on the connection the first went back to the pool on.
	f := newFast(t, Options{})
	var kept []*http.Response
	var bodies []string
	for range answers {
		res, body := do(t, f, newReq("GET", url+"/", nil))
		kept, bodies = append(kept, res), append(bodies, body)
	}
	for i, res := range kept {
		want, err := http.ReadResponse(bufio.NewReader(strings.NewReader(answers[i])), nil)
		if err != nil {
			t.Fatal(err)
		}
		if body, _ := io.ReadAll(want.Body); string(body) != bodies[i] {
			t.Errorf("body %d %q, net/http reads %q", i, bodies[i], body)
		}
		if res.StatusCode != want.StatusCode || !reflect.DeepEqual(res.Header, want.Header) ||
			!reflect.DeepEqual(res.Trailer, want.Trailer) || !reflect.DeepEqual(res.TransferEncoding, want.TransferEncoding) {
			t.Errorf("response %d became %d %q %q %q, net/http reads %d %q %q %q", i, res.StatusCode, res.Header, res.Trailer,
				res.TransferEncoding, want.StatusCode, want.Header, want.Trailer, want.TransferEncoding)
		}
	}
	kept[0].TransferEncoding[0] = "changed"
	if kept[1].TransferEncoding[0] != "chunked" {
		t.Errorf("responses share their TransferEncoding")
	}
}
