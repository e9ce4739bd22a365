package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

func TestParseHTTP2Mode(t *testing.T) {
	t.Setenv(HTTP2ModeEnv, "")
	for in, want := range map[string]HTTP2Mode{"": DefaultHTTP2Mode, "fast": HTTP2Fast, "std": HTTP2Std} {
		if got, err := ParseHTTP2Mode(in); err != nil || got != want {
			t.Errorf("ParseHTTP2Mode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseHTTP2Mode("h2"); err == nil {
		t.Error("an unknown mode is accepted")
	}
	t.Setenv(HTTP2ModeEnv, "std")
	if got, _ := ParseHTTP2Mode(""); got != HTTP2Std {
		t.Errorf("the environment's choice is ignored: %q", got)
	}
	if got, _ := ParseHTTP2Mode("fast"); got != HTTP2Fast {
		t.Errorf("an explicit choice loses to the environment: %q", got)
	}
	if got := (Limits{HTTP2: "bogus"}).withDefaults().HTTP2; got != DefaultHTTP2Mode {
		t.Errorf("an unknown Limits.HTTP2 becomes %q, want the default", got)
	}
}

// TestHTTP2ModeChoosesTheServer sends an h2c request to a socket in each mode and
// checks, from the handler's call stack, which server called it.
func TestHTTP2ModeChoosesTheServer(t *testing.T) {
	for _, mode := range []HTTP2Mode{HTTP2Fast, HTTP2Std} {
		limits := DefaultLimits()
		limits.HTTP1, limits.HTTP2 = HTTP1Fast, mode
		m := newTestManager(t, limits)
		servedByH2 := make(chan bool, 1)
		addr := serveOne(t, m, Spec{Port: 0, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			pcs := make([]uintptr, 64)
			frames := runtime.CallersFrames(pcs[:runtime.Callers(1, pcs)])
			own := false
			for {
				f, more := frames.Next()
				own = own || strings.Contains(f.Function, "/gateway/server/h2.")
				if !more {
					break
				}
			}
			servedByH2 <- own
		})})
		h2c := &http.Transport{Protocols: new(http.Protocols)}
		h2c.Protocols.SetUnencryptedHTTP2(true)
		res, err := (&http.Client{Transport: h2c, Timeout: testTimeout}).Get("http://" + addr + "/")
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		res.Body.Close()
		h2c.CloseIdleConnections()
		select {
		case own := <-servedByH2:
			if own != (mode == HTTP2Fast) || res.ProtoMajor != 2 {
				t.Errorf("mode %s: served by package h2 %v, over %s", mode, own, res.Proto)
			}
		case <-time.After(testTimeout):
			t.Fatalf("mode %s: answered %d without calling the handler", mode, res.StatusCode)
		}
	}
}

// TestDrainTellsHTTP2ClientsAtOnce: while an HTTP/1.1 request keeps a socket
// draining, an idle HTTP/2 connection still gets GOAWAY right away, whichever
// HTTP/2 server the socket runs.
func TestDrainTellsHTTP2ClientsAtOnce(t *testing.T) {
	for _, mode := range []HTTP2Mode{HTTP2Fast, HTTP2Std} {
		limits := DefaultLimits()
		limits.HTTP1, limits.HTTP2 = HTTP1Fast, mode
		m := newTestManager(t, limits)
		started, release := make(chan struct{}), make(chan struct{})
		addr := serveOne(t, m, Spec{Port: 0, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/block" {
				close(started)
				select {
				case <-release:
				case <-time.After(testTimeout):
				}
			}
		})})
		go func() {
			if res, err := (&http.Client{Timeout: testTimeout}).Get("http://" + addr + "/block"); err == nil {
				res.Body.Close()
			}
		}()
		<-started
		h2 := dialH2C(t, addr)
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		shutdown := make(chan error, 1)
		go func() { shutdown <- m.Shutdown(ctx) }()
		got := awaitGoAway(h2, 2*time.Second)
		close(release)
		if err := <-shutdown; err != nil {
			t.Errorf("%s: Shutdown: %v", mode, err)
		}
		cancel()
		h2.Close()
		if got != nil {
			t.Errorf("%s: no GOAWAY while an HTTP/1.1 request drains: %v", mode, got)
		}
	}
}

// dialH2C opens an h2c connection to addr with the client preface and SETTINGS.
func dialH2C(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := http2.NewFramer(c, c).WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return c
}

// awaitGoAway reads frames from c until a GOAWAY, for at most wait; it returns
// why it saw none, or nil.
func awaitGoAway(c net.Conn, wait time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	fr := http2.NewFramer(c, c)
	for range 100 {
		f, err := fr.ReadFrame()
		if err != nil {
			return err
		}
		if _, ok := f.(*http2.GoAwayFrame); ok {
			return nil
		}
	}
	return errors.New("no GOAWAY in 100 frames")
}
