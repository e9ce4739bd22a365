package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// trackerResult is what a tracker concluded about a stream.
type trackerResult struct {
	badIndex int
	reason   string
	heads    []int64
	index    int
}

// track feeds stream to a fresh tracker in pieces of at most step bytes.
func track(stream []byte, step int) trackerResult {
	var res trackerResult
	tr := newFramingTracker(1 << 10)
	tr.onHeadEnd = func(end int64) { res.heads = append(res.heads, end) }
	for len(stream) > 0 {
		n := min(step, len(stream))
		tr.feed(stream[:n])
		stream = stream[n:]
	}
	res.badIndex, res.reason, res.index = tr.badIndex, tr.reason, tr.index
	return res
}

func TestFramingTracker(t *testing.T) {
	const good = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	cases := []struct {
		name   string
		stream string
		bad    int // -1 for none
		index  int // requests completed when not flagged
	}{
		{"plain requests", good + good, -1, 2},
		{"bare LF heads", "GET / HTTP/1.1\nHost: a\n\n" + good, -1, 2},
		{"content-length body", "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789" + good, -1, 2},
		{"body that looks like a request", "POST / HTTP/1.1\r\ncontent-length: 27\r\n\r\n" + good + good, -1, 2},
		{"chunked with extension and trailers", "POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n" +
			"a;x=\"y\"\r\n0123456789\r\n0\r\nA: b\r\nC: d\r\n\r\n" + good, -1, 2},
		{"CL and TE", good + "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 1, 0},
		{"TE and CL", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 0, 0},
		{"conflicting CL", "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 03\r\n\r\n", 0, 0},
		{"invalid CL", "POST / HTTP/1.1\r\nContent-Length: -3\r\n\r\n", 0, 0},
		{"CL list", "POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\n", 0, 0},
		{"TE gzip", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 0, 0},
		{"TE gzip, chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 0, 0},
		{"two TE headers", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 0},
		{"TE on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 0},
		{"space before colon", "POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n", 0, 0},
		{"folded header", "POST / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", 0, 0},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0, 0},
		{"bare LF in chunk line", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", 0, 0},
		{"missing CRLF after chunk", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", 0, 0},
		{"space in chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3 ;x\r\nabc\r\n0\r\n\r\n", 0, 0},
		{"oversized chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", 0, 0},
		{"oversized head", "GET / HTTP/1.1\r\nX: " + strings.Repeat("x", 10<<10) + "\r\n\r\n", 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, step := range []int{1, 3, 7, len(tc.stream)} {
				res := track([]byte(tc.stream), step)
				if res.badIndex != tc.bad {
					t.Fatalf("step %d: badIndex = %d (%s), want %d", step, res.badIndex, res.reason, tc.bad)
				}
				if tc.bad < 0 && res.index != tc.index {
					t.Fatalf("step %d: completed %d requests, want %d", step, res.index, tc.index)
				}
			}
		})
	}
}

// netHTTPHeads parses stream with net/http's request reader and returns the offset
// just past each request head it accepted, stopping at the first error.
func netHTTPHeads(stream []byte) []int64 {
	counter := &countingReader{r: bytes.NewReader(stream)}
	br := bufio.NewReader(counter)
	var heads []int64
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return heads
		}
		heads = append(heads, counter.n-int64(br.Buffered()))
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return heads
		}
		if req.Method == "PRI" {
			return heads
		}
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// buildRequests turns recipe bytes into a stream of well-formed pipelined requests:
// every request is one net/http accepts and frames unambiguously.
func buildRequests(recipe []byte) ([]byte, int) {
	var b bytes.Buffer
	n := 0
	for i := 0; i+2 < len(recipe) && n < 20; i += 3 {
		kind, size, extra := recipe[i], int(recipe[i+1]), recipe[i+2]
		body := strings.Repeat(string(rune('a'+extra%26)), size)
		eol := "\r\n"
		if extra&1 == 1 {
			eol = "\n" // bare LF is allowed in heads and trailers
		}
		fmt.Fprintf(&b, "POST /r%d HTTP/1.1%sHost: h%sX-Pad: %s%s", n, eol, eol, strings.Repeat("p", int(extra)), eol)
		switch kind % 3 {
		case 0:
			fmt.Fprintf(&b, "Content-Length: %d%s%s%s", size, eol, eol, body)
		case 1:
			fmt.Fprintf(&b, "Transfer-Encoding: chunked%s%s", eol, eol)
			for len(body) > 0 {
				c := min(len(body), 1+int(extra%7))
				fmt.Fprintf(&b, "%x;ext=%d\r\n%s\r\n", c, c, body[:c])
				body = body[c:]
			}
			fmt.Fprintf(&b, "0\r\nX-Trailer: %d%s%s", size, eol, eol)
		default:
			b.WriteString(eol)
		}
		n++
	}
	return b.Bytes(), n
}

func FuzzFramingTracker(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), uint8(1))
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n"), uint8(2))
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nA: b\r\n\r\n"), uint8(5))
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), uint8(0))
	f.Add([]byte{0, 5, 1, 1, 9, 2, 2, 0, 3}, uint8(4))
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length:\t3 \r\n\r\nabcPOST / HTTP/1.1\r\nTransfer-Encoding:  chunked\t\r\n\r\n"+
		"3 ;a=b\r\nabc\r\n3;x \r\nabc\r\n0\r\n\nGET / HTTP/1.0\n\n"), uint8(3))
	f.Add([]byte("GET / HTTP/1.1\r\nX: y\r\n z\r\nContent-Length: 1\r\n\r\nxGET / HTTP/1.1\r\n\r\n"), uint8(6))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		checkTrackerAgainstNetHTTP(t, data, int(step)+1)
		stream, n := buildRequests(data)
		whole := checkTrackerAgainstNetHTTP(t, stream, int(step)+1)
		if whole.badIndex >= 0 || whole.index != n {
			t.Fatalf("well-formed stream of %d requests: badIndex %d (%s), completed %d\n%q",
				n, whole.badIndex, whole.reason, whole.index, stream)
		}
	})
}

// checkTrackerAgainstNetHTTP checks that splitting the stream does not change the
// tracker's verdict, and that every head net/http accepts before the flagged request
// ends exactly where the tracker says.
func checkTrackerAgainstNetHTTP(t *testing.T, stream []byte, step int) trackerResult {
	t.Helper()
	whole := track(stream, len(stream)+1)
	split := track(stream, step)
	if whole.badIndex != split.badIndex || whole.index != split.index || len(whole.heads) != len(split.heads) {
		t.Fatalf("split by %d changed the verdict: %+v vs %+v", step, whole, split)
	}
	want := netHTTPHeads(stream)
	for k, end := range want {
		if whole.badIndex >= 0 && k >= whole.badIndex {
			break
		}
		if k >= len(whole.heads) || whole.heads[k] != end {
			t.Fatalf("request %d: net/http head ends at %d, tracker heads %v (bad %d: %s)\n%q",
				k, end, whole.heads, whole.badIndex, whole.reason, stream)
		}
	}
	return whole
}
