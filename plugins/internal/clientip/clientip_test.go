package clientip

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestFrom(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	cases := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"untrusted peer ignores the header", "192.0.2.7:5000", []string{"198.51.100.1"}, "192.0.2.7"},
		{"trusted peer: right-most untrusted hop", "127.0.0.1:5000", []string{"203.0.113.9, 198.51.100.1"}, "198.51.100.1"},
		{"trusted hops are skipped", "127.0.0.1:5000", []string{"198.51.100.1", "127.0.0.2"}, "198.51.100.1"},
		{"a spoofed left part does not count", "127.0.0.1:5000", []string{"1.2.3.4, 198.51.100.1"}, "198.51.100.1"},
		{"malformed hop stops the walk", "127.0.0.1:5000", []string{"198.51.100.1, garbage"}, "127.0.0.1"},
		{"no header: the trusted peer itself", "[::1]:80", nil, "::1"},
		{"IPv4-mapped peers are unmapped", "[::ffff:192.0.2.7]:80", nil, "192.0.2.7"},
		{"unparsable peer is returned as is", "pipe", nil, "pipe"},
	}
	for _, tc := range cases {
		r := &http.Request{RemoteAddr: tc.peer, Header: http.Header{}}
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := From(r, trusted); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}
