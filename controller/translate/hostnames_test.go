package translate

import (
	"reflect"
	"testing"
	"time"
)

func TestIntersectHostname(t *testing.T) {
	cases := []struct {
		listener, route, want string
		ok                    bool
	}{
		{"", "a.example.com", "a.example.com", true},
		{"a.example.com", "a.example.com", "a.example.com", true},
		{"a.example.com", "b.example.com", "", false},
		{"*.example.com", "a.example.com", "a.example.com", true},
		{"*.example.com", "a.b.example.com", "a.b.example.com", true},
		{"*.example.com", "example.com", "", false},
		{"*.example.com", "aexample.com", "", false},
		{"a.example.com", "*.example.com", "a.example.com", true},
		{"*.a.example.com", "*.example.com", "*.a.example.com", true},
		{"*.example.com", "*.a.example.com", "*.a.example.com", true},
		{"*.example.com", "*.example.org", "", false},
		{"A.Example.com", "a.example.COM", "a.example.COM", true},
	}
	for _, c := range cases {
		got, ok := intersectHostname(c.listener, c.route)
		if got != c.want || ok != c.ok {
			t.Errorf("intersectHostname(%q, %q) = %q, %v; want %q, %v", c.listener, c.route, got, ok, c.want, c.ok)
		}
	}
}

func TestEffectiveHostnames(t *testing.T) {
	got, ok := effectiveHostnames("*.example.com", []string{"b.example.com", "x.org", "a.example.com", "b.example.com"})
	if !ok || !reflect.DeepEqual(got, []string{"a.example.com", "b.example.com"}) {
		t.Fatalf("got %v, %v", got, ok)
	}
	if _, ok := effectiveHostnames("a.example.com", []string{"x.org"}); ok {
		t.Fatal("disjoint hostnames intersect")
	}
	if got, ok := effectiveHostnames("a.example.com", nil); !ok || got != nil {
		t.Fatalf("route without hostnames: got %v, %v", got, ok)
	}
}

func TestParseGatewayDuration(t *testing.T) {
	good := map[string]time.Duration{"1h": time.Hour, "1h30m": 90 * time.Minute, "500ms": 500 * time.Millisecond, "0s": 0, "1m1s1ms": time.Minute + time.Second + time.Millisecond}
	for in, want := range good {
		if got, err := parseGatewayDuration(in); err != nil || got != want {
			t.Errorf("parseGatewayDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1.5s", "-1s", "1us", "123456s", "1h1m1s1ms1h", "s"} {
		if _, err := parseGatewayDuration(in); err == nil {
			t.Errorf("parseGatewayDuration(%q) accepted", in)
		}
	}
}
