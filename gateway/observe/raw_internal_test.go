package observe

import (
	"io"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
)

// TestTargetPathMatchesURLParsing checks targetPath against the path url.URL's
// parser gives, which is what the handler path logs, for targets made of the
// characters the raw path lets through, escapes of every byte among them.
func TestTargetPathMatchesURLParsing(t *testing.T) {
	targets := []string{"/", "/a", "/a?", "/a?b=%20", "/a%20b", "/%2F%2f", "/%25", "/%2525", "/+", "/%2B", "/%00%ff%FE",
		"/%e6%97%a5", "/a;b=c", "/a?b?c", "/%41%4a%4A"}
	pieces := []string{"a", "Z", "9", "/", "-", ".", "_", "~", "!", "$", "&", "'", "(", ")", "*", "+", ",", "=", ":", "@", ";", "?"}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		var b strings.Builder
		b.WriteByte('/')
		for range rng.IntN(20) {
			if rng.IntN(4) == 0 {
				const hex = "0123456789abcdefABCDEF"
				b.WriteString("%" + string(hex[rng.IntN(len(hex))]) + string(hex[rng.IntN(len(hex))]))
			} else {
				b.WriteString(pieces[rng.IntN(len(pieces))])
			}
		}
		targets = append(targets, b.String())
	}
	for _, target := range targets {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			t.Fatalf("%q: %v", target, err)
		}
		if got := targetPath(target); got != u.Path {
			t.Fatalf("targetPath(%q) = %q, want %q", target, got, u.Path)
		}
	}
	// Escapes the parser refuses are kept as they came.
	if got := targetPath("/a%zz%4"); got != "/a%zz%4" {
		t.Errorf("targetPath of bad escapes = %q", got)
	}
}

// TestLogRawDoesNotAllocate checks that the raw path's line, like the handler
// path's (BenchmarkAccessLogLine), costs no allocation when its target has nothing
// to unescape.
func TestLogRawDoesNotAllocate(t *testing.T) {
	a := NewAccessLog(io.Discard, nil, 1)
	defer a.Close()
	o, err := New(Options{AccessLog: a})
	if err != nil {
		t.Fatal(err)
	}
	l := o.Listener("default/gw/http")
	rule := o.Rule("default/app", 0, &config.Rule{})
	req := RawRequest{Method: "GET", Host: "app.example.com", Target: "/a/b?secret=1", RemoteAddr: "10.0.0.7:51234"}
	info := &reqctx.Info{Start: time.Now(), Backend: "default/app:80", Endpoint: "10.244.1.7:8080", Attempts: 1,
		UpstreamTime: 900 * time.Microsecond, Flags: reqctx.FlagRetried}
	if n := testing.AllocsPerRun(1000, func() { l.LogRaw(rule, req, info, 200, 1234) }); n != 0 {
		t.Fatalf("LogRaw allocates %v times per line", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _ = targetPath(req.Target) }); n != 0 {
		t.Fatalf("targetPath allocates %v times for a path without escapes", n)
	}
}
