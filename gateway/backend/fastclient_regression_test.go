package backend

import (
	"bufio"
	"context"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBareLFHeadEndsAtTheFirstEmptyLine: a response head with bare LF line endings
// ends at its first empty line, even when the body holds "\n\r\n".
func TestBareLFHeadEndsAtTheFirstEmptyLine(t *testing.T) {
	url := rawServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		_ = readHead(br)
		// A head with bare LF endings; the body contains "\n\r\n"
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\nContent-Length: 12\n\nEvil: yes\n\r\n")
		time.Sleep(2 * time.Second)
	})
	f := newFast(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/", nil)
	res, err := f.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	t.Logf("body %q err %v", b, err)
	if string(b) != "Evil: yes\n\r\n" {
		t.Errorf("body lost")
	}
}

// TestHostAndConnectionValuesAreChecked: the fast client refuses CR and LF in the
// Host and Connection values it writes, as it does in every other header.
func TestHostAndConnectionValuesAreChecked(t *testing.T) {
	got := make(chan string, 1)
	url := rawServer(t, func(c net.Conn) {
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		b, _ := io.ReadAll(c)
		got <- string(b)
	})
	f := newFast(t, Options{})
	req, _ := http.NewRequest("GET", url+"/", nil)
	req.Host = "a\r\nX-Injected: 1"
	req.Header["Connection"] = []string{"keep-alive\r\nX-Injected2: 1"}
	_, err := f.RoundTrip(req)
	t.Logf("err %v", err)
	s := <-got
	t.Logf("sent %q", s)
	if strings.Contains(s, "\r\nX-Injected") {
		t.Errorf("CRLF injected upstream")
	}
}

// TestHeadEndFindsTheFirstEmptyLine: wherever the reads split a response, the head
// is found to end at its first empty line, of either line ending, once that line
// has arrived, and not before.
func TestHeadEndFindsTheFirstEmptyLine(t *testing.T) {
	// firstEmptyLine is the definition, byte by byte: the end of the first LF
	// followed by LF or CRLF.
	firstEmptyLine := func(buf []byte) int {
		for p, c := range buf {
			rest := string(buf[p+1:])
			switch {
			case c != '\n':
			case strings.HasPrefix(rest, "\n"):
				return p + 2
			case strings.HasPrefix(rest, "\r\n"):
				return p + 3
			}
		}
		return 0
	}
	for _, answer := range []string{
		nginxHead + "{}",
		nginxHead + "body\n\nwith\n\r\nempty lines",
		"HTTP/1.1 200 OK\nContent-Length: 12\n\nEvil: yes\n\r\n",
		"HTTP/1.1 200 OK\r\nX-A: a\r\n\nX-B: b\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\n\n",
		"HTTP/1.1 200 OK\r\nX-A: \r\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-A: a\r\n\r",
	} {
		buf := []byte(answer)
		want := firstEmptyLine(buf)
		for step := 1; step <= len(buf); step++ {
			// As readHead does: each read adds step bytes, and the search goes on
			// from two bytes before the end of what was searched.
			got, from, have := 0, 0, 0
			for got == 0 && have < len(buf) {
				have = min(len(buf), have+step)
				got = headEnd(buf[:have], from)
				from = max(0, have-2)
			}
			if got != want || (want > 0 && have-step >= want) {
				t.Errorf("%q in reads of %d: head of %d found with %d bytes, want %d", answer, step, got, have, want)
			}
		}
	}
}

// TestRequestHeadIsTheTransports checks the head the fast client writes against the
// one http.Transport writes for the same requests: the same request line and Host,
// the same values under each name in the same order, the default User-Agent (none
// for an empty one) and Content-Length where a body is expected. Names may come in
// another order than the Transport's, but the request's own fields come sorted by
// name, as http.Header.Write sorts them, so that a head is the same every time.
func TestRequestHeadIsTheTransports(t *testing.T) {
	heads := make(chan string, 1)
	url := rawServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readHeadText(br)
			if err != nil {
				return
			}
			heads <- head
			if _, err := io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n"); err != nil {
				return
			}
		}
	})
	o := Options{}.withDefaults()
	fast, std := newFast(t, o), newHTTP1Transport(o)
	t.Cleanup(std.CloseIdleConnections)
	requests := []func() *http.Request{
		func() *http.Request {
			req, _ := http.NewRequest(http.MethodGet, url+"/a?b=c", nil)
			req.Header["Zeta"] = []string{"1", "2"}
			req.Header["Accept"] = []string{"*/*"}
			req.Header["X-Mid"] = []string{"m"}
			req.Header["B-Name"] = []string{""}
			return req
		},
		func() *http.Request {
			req, _ := http.NewRequest(http.MethodPost, url+"/", nil)
			req.Header["User-Agent"] = []string{""}
			req.Header["Connection"] = []string{"keep-alive"}
			req.Header["Accept-Encoding"] = []string{"gzip"}
			return req
		},
		func() *http.Request {
			req, _ := http.NewRequest(http.MethodPut, url+"/p", strings.NewReader("body"))
			req.Header["User-Agent"] = []string{"agent/1"}
			req.Header["Content-Type"] = []string{"text/plain"}
			return req
		},
	}
	for i, newRequest := range requests {
		var got [2]string
		for j, rt := range []http.RoundTripper{fast, std} {
			res, err := rt.RoundTrip(newRequest())
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			_ = res.Body.Close()
			got[j] = <-heads
		}
		fastLines, stdLines := strings.Split(got[0], "\r\n"), strings.Split(got[1], "\r\n")
		if fastLines[0] != stdLines[0] || fastLines[1] != stdLines[1] || !maps.EqualFunc(valuesByName(fastLines[2:]), valuesByName(stdLines[2:]), slices.Equal) {
			t.Errorf("request %d: the fast client wrote\n%q\nhttp.Transport wrote\n%q", i, got[0], got[1])
		}
		var names []string
		for _, line := range fastLines[2:] {
			name, _, _ := strings.Cut(line, ":")
			if name == "User-Agent" || name == "Content-Length" || name == "Connection" {
				break
			}
			names = append(names, name)
		}
		if !slices.IsSorted(names) {
			t.Errorf("request %d: the request's fields came in the order %v", i, names)
		}
	}
}

// valuesByName gathers the values of field lines under their names, in order.
func valuesByName(lines []string) map[string][]string {
	values := map[string][]string{}
	for _, line := range lines {
		if name, value, ok := strings.Cut(line, ": "); ok {
			values[name] = append(values[name], value)
		}
	}
	return values
}
