package proxy

import (
	"net/url"
	"testing"
)

// handlerPathTarget is the request target the handler path sends for a client's
// target: the URL the server parses, its escaped path and cleaned query, as the
// backend client writes them.
func handlerPathTarget(target string) (string, bool) {
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return "", false
	}
	out := u.EscapedPath()
	if out == "" {
		out = "/"
	}
	if u.ForceQuery || u.RawQuery != "" {
		out += "?" + cleanQuery(u.RawQuery)
	}
	return out, true
}

var rawTargets = map[string]bool{
	"/":                         true,
	"/a/b%2Fc?x=1&y=%20":        true,
	"/a%41b":                    true,
	"/~user/x.y-z_w":            true,
	"/p;v=1/q":                  true,
	"/at@colon:!$&'()*+,=":      true,
	"/a?":                       true,
	"/a?b=c/d:e@f":              true,
	"/a?x=1;y=2":                false,
	"/a?x=%zz":                  false,
	"/a%zz":                     false,
	"/a%4":                      false,
	"/a?b?c":                    false,
	"//double":                  false,
	"*":                         false,
	"http://example.com/a":      false,
	"/a{b}":                     false,
	"/a\"b":                     false,
	"/a#frag":                   false,
	"/a?q=[1]":                  false,
	"":                          false,
	"/%E2%82%AC?%E2%82%AC=euro": true,
}

func TestRawTargetOK(t *testing.T) {
	for target, want := range rawTargets {
		if got := rawTargetOK(target); got != want {
			t.Errorf("rawTargetOK(%q) = %v, want %v", target, got, want)
		}
		if !want {
			continue
		}
		if sent, ok := handlerPathTarget(target); !ok || sent != target {
			t.Errorf("the handler path sends %q for %q, which the raw path sends as is", sent, target)
		}
	}
}

// FuzzRawTarget checks that every target the raw path sends as is, the handler
// path sends unchanged too.
func FuzzRawTarget(f *testing.F) {
	for target := range rawTargets {
		f.Add(target)
	}
	f.Fuzz(func(t *testing.T, target string) {
		if !rawTargetOK(target) {
			return
		}
		if sent, ok := handlerPathTarget(target); !ok || sent != target {
			t.Errorf("the handler path sends %q for %q, which the raw path sends as is", sent, target)
		}
	})
}

// TestRecycledCallsKeepNoLargeBuffer: a call whose head buffer grew for a large body
// goes back to the pool with a small one, so that the pool holds neither the memory
// nor the bytes of clients' bodies.
func TestRecycledCallsKeepNoLargeBuffer(t *testing.T) {
	for _, size := range []int{4 << 10, maxPooledHead, 64 << 10} {
		e := &rawCall{head: append(make([]byte, 0, size), "body"...)}
		e.recycle()
		if len(e.head) != 0 || cap(e.head) > maxPooledHead || (size <= maxPooledHead && cap(e.head) != size) {
			t.Errorf("a %d-byte buffer came back with length %d and capacity %d", size, len(e.head), cap(e.head))
		}
	}
}
