package backend

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
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
