package headers

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/plugins"
)

var responseModifier = &config.HeaderModifier{
	Set:    []config.Header{{Name: "x-header-set", Value: "set-overwrites-values"}},
	Add:    []config.Header{{Name: "X-Header-Add", Value: "add-appends-values"}, {Name: "set-cookie", Value: "b=2"}},
	Remove: []string{"x-header-remove"},
}

func responseChain(t testing.TB, final http.Handler) http.Handler {
	t.Helper()
	h, err := plugins.Chain(plugins.Context{}, []config.Filter{{
		Type: config.FilterResponseHeaderModifier, ResponseHeaderModifier: responseModifier,
	}}, final)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func backendHeaders(h http.Header) {
	h.Set("X-Header-Set", "backend")
	h.Set("X-Header-Add", "backend")
	h.Set("X-Header-Remove", "backend")
	h.Set("Set-Cookie", "a=1")
}

func checkEdited(t *testing.T, h http.Header) {
	t.Helper()
	want := http.Header{
		"X-Header-Set": {"set-overwrites-values"},
		"X-Header-Add": {"backend,add-appends-values"},
		"Set-Cookie":   {"a=1", "b=2"},
	}
	for name, values := range want {
		if got := h[name]; !reflect.DeepEqual(got, values) {
			t.Errorf("%s = %q, want %q", name, got, values)
		}
	}
	if v, ok := h["X-Header-Remove"]; ok {
		t.Errorf("X-Header-Remove = %q, should be removed", v)
	}
}

func TestResponseModifierOnWriteHeader(t *testing.T) {
	h := responseChain(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		backendHeaders(w.Header())
		w.WriteHeader(http.StatusTeapot)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusTeapot {
		t.Errorf("status %d", rec.Code)
	}
	checkEdited(t, rec.Result().Header)
}

func TestResponseModifierOnImplicitStatus(t *testing.T) {
	for name, final := range map[string]http.HandlerFunc{
		"write": func(w http.ResponseWriter, r *http.Request) {
			backendHeaders(w.Header())
			_, _ = w.Write([]byte("body"))
		},
		"write string": func(w http.ResponseWriter, r *http.Request) {
			backendHeaders(w.Header())
			_, _ = io.WriteString(w, "body")
		},
		"no write at all": func(w http.ResponseWriter, r *http.Request) {
			backendHeaders(w.Header())
		},
		"flush first": func(w http.ResponseWriter, r *http.Request) {
			backendHeaders(w.Header())
			_ = http.NewResponseController(w).Flush()
		},
	} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			responseChain(t, final).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			if rec.Code != http.StatusOK {
				t.Errorf("status %d", rec.Code)
			}
			checkEdited(t, rec.Result().Header)
		})
	}
}

func TestResponseModifierSkipsInformational(t *testing.T) {
	srv := httptest.NewServer(responseChain(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		backendHeaders(w.Header())
		w.WriteHeader(http.StatusOK)
	})))
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	res.Header.Del("Date")
	res.Header.Del("Content-Length")
	checkEdited(t, res.Header)
}

// Server-sent events must reach the client while the handler is still running.
func TestResponseModifierStreamsThroughFlush(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(responseChain(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		fmt.Fprint(w, "data: second\n\n")
	})))
	defer srv.Close()
	defer close(release)

	res, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("X-Header-Set") != "set-overwrites-values" {
		t.Errorf("headers not edited on a streamed response: %v", res.Header)
	}
	line, err := readLineWithin(bufio.NewReader(res.Body), 2*time.Second)
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event not streamed: %q, %v", line, err)
	}
}

func readLineWithin(r *bufio.Reader, d time.Duration) (string, error) {
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := r.ReadString('\n')
		ch <- result{line, err}
	}()
	select {
	case res := <-ch:
		return res.line, res.err
	case <-time.After(d):
		return "", fmt.Errorf("nothing read within %v", d)
	}
}

// A WebSocket-style upgrade hijacks the connection through the wrapper; the 101 the
// handler writes itself is not edited, and data flows both ways afterwards.
func TestResponseModifierAllowsHijack(t *testing.T) {
	srv := httptest.NewServer(responseChain(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Errorf("SetWriteDeadline through the wrapper: %v", err)
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		_ = rw.Flush()
		msg, _ := rw.ReadString('\n')
		_, _ = rw.WriteString("echo: " + msg)
		_ = rw.Flush()
	})))
	defer srv.Close()

	conn, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols || res.Header.Get("X-Header-Set") != "" {
		t.Fatalf("got %d with headers %v", res.StatusCode, res.Header)
	}
	fmt.Fprint(conn, "hello\n")
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "echo: hello") {
		t.Fatalf("after upgrade read %q, %v", line, err)
	}
}

func BenchmarkResponseHeaderModifier(b *testing.B) {
	h := responseChain(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}

// discardWriter is a ResponseWriter that keeps no body, so the benchmark measures
// the filter rather than a recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}
