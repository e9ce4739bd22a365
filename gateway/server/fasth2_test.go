package server

import (
	"net/http"
	"runtime"
	"strings"
	"testing"
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
		if own := <-servedByH2; own != (mode == HTTP2Fast) || res.ProtoMajor != 2 {
			t.Errorf("mode %s: served by package h2 %v, over %s", mode, own, res.Proto)
		}
	}
}
