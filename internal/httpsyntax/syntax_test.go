package httpsyntax

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
)

func TestParseHex(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "a": 10, "FF": 255, "7fffffffffffffff": 1<<63 - 1, "": -1, "g": -1,
		"10000000000000000": -1, " 1": -1, "-1": -1} {
		n, ok := ParseHex([]byte(in))
		if (want < 0) == ok || (ok && int64(n) != want) {
			t.Errorf("ParseHex(%q) = %d, %v; want %d", in, n, ok, want)
		}
	}
}

func TestParseContentLength(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "42": 42, "999999999999999999": 999999999999999999, "": -1, "+1": -1,
		"-1": -1, "1 ": -1, "1,1": -1, "1000000000000000000": -1} {
		n, ok := ParseContentLength(in)
		if (want < 0) == ok || (ok && n != want) {
			t.Errorf("ParseContentLength(%q) = %d, %v; want %d", in, n, ok, want)
		}
	}
}

func TestCanonicalizeMatchesNetHTTP(t *testing.T) {
	for _, name := range []string{"content-length", "X-FORWARDED-FOR", "x", "a-b-c", "Www-Authenticate", "te", "sec-websocket-key", "x--y"} {
		b := []byte(name)
		Canonicalize(b)
		if want := http.CanonicalHeaderKey(name); string(b) != want {
			t.Errorf("Canonicalize(%q) = %q, want %q", name, b, want)
		}
	}
}

func TestTokensAndValues(t *testing.T) {
	if !IsToken("X-Good_1!") || IsToken("") || IsToken("a b") || IsToken("a:b") || IsToken([]byte("é")) {
		t.Error("IsToken misjudges")
	}
	if !ValidFieldValue("a\tb c") || ValidFieldValue("a\rb") || ValidFieldValue("a\nb") || ValidFieldValue("\x7f") {
		t.Error("ValidFieldValue misjudges")
	}
	if !HasToken([]string{"keep-alive, Close"}, "close") || HasToken([]string{"closed"}, "close") || HasToken(nil, "close") {
		t.Error("HasToken misjudges")
	}
}

func TestEqualFold(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"Content-Length", "content-length", true},
		{"CHUNKED", "chunked", true},
		{"keep-alive", "Keep-Alive", true},
		{"chunked", "chunke", false},
		{"chunkes", "chunked", false},
		{"a-b", "a_b", false},
		{"\xc3\x89", "\xc3\xa9", false},
	} {
		if got := EqualFold(tc.a, tc.b); got != tc.want {
			t.Errorf("EqualFold(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := EqualFold([]byte(tc.a), tc.b); got != tc.want {
			t.Errorf("EqualFold([]byte(%q), %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestValidFieldValueMatchesByteLoop checks the word-at-a-time test against the byte
// loop on every single byte at every place of a value, and on random values.
func TestValidFieldValueMatchesByteLoop(t *testing.T) {
	for length := 1; length <= 24; length++ {
		for pos := 0; pos < length; pos++ {
			for c := 0; c < 256; c++ {
				v := []byte(strings.Repeat("v", length))
				v[pos] = byte(c)
				if got, want := ValidFieldValue(v), validFieldBytes(v); got != want {
					t.Fatalf("ValidFieldValue(%q) = %v, want %v", v, got, want)
				}
				if got, want := ValidFieldValue(string(v)), validFieldBytes(v); got != want {
					t.Fatalf("ValidFieldValue(string %q) = %v, want %v", v, got, want)
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("aZ09 \t\r\n\x00\x1f\x7f\x80\xff\x20\x7e,;=")
	for range 200000 {
		v := make([]byte, rng.IntN(40))
		for i := range v {
			if rng.IntN(4) == 0 {
				v[i] = alphabet[rng.IntN(len(alphabet))]
			} else {
				v[i] = byte(rng.IntN(256))
			}
		}
		if got, want := ValidFieldValue(v), validFieldBytes(v); got != want {
			t.Fatalf("ValidFieldValue(%q) = %v, want %v", v, got, want)
		}
	}
}

func BenchmarkValidFieldValue(b *testing.B) {
	value := []byte("text/plain; charset=utf-8, Mon, 02 Jan 2006 15:04:05 GMT")
	b.SetBytes(int64(len(value)))
	for b.Loop() {
		if !ValidFieldValue(value) {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkValidFieldBytes(b *testing.B) {
	value := []byte("text/plain; charset=utf-8, Mon, 02 Jan 2006 15:04:05 GMT")
	b.SetBytes(int64(len(value)))
	for b.Loop() {
		if !validFieldBytes(value) {
			b.Fatal("invalid")
		}
	}
}

// TestEqualFoldMatchesByteLoop compares EqualFold with a plain case-folding loop on
// every pair of bytes, and on random strings of letters, digits and symbols.
func TestEqualFoldMatchesByteLoop(t *testing.T) {
	fold := func(c byte) byte {
		if 'A' <= c && c <= 'Z' {
			return c + 'a' - 'A'
		}
		return c
	}
	plain := func(a, b string) bool {
		if len(a) != len(b) {
			return false
		}
		for i := 0; i < len(a); i++ {
			if fold(a[i]) != fold(b[i]) {
				return false
			}
		}
		return true
	}
	for x := 0; x < 256; x++ {
		for y := 0; y < 256; y++ {
			a, b := string([]byte{'k', byte(x)}), string([]byte{'K', byte(y)})
			if got, want := EqualFold(a, b), plain(a, b); got != want {
				t.Fatalf("EqualFold(%q, %q) = %v, want %v", a, b, got, want)
			}
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := "aAzZ@[`{-_09\x00\x7f\xff\xc0\xe0"
	for range 100000 {
		n := rng.IntN(6)
		a, b := make([]byte, n), make([]byte, n)
		for i := range a {
			a[i] = alphabet[rng.IntN(len(alphabet))]
			b[i] = alphabet[rng.IntN(len(alphabet))]
			if rng.IntN(2) == 0 {
				b[i] = a[i] ^ 0x20
			}
		}
		if got, want := EqualFold(a, string(b)), plain(string(a), string(b)); got != want {
			t.Fatalf("EqualFold(%q, %q) = %v, want %v", a, b, got, want)
		}
	}
}

// TestCutByteMatchesBytesCut checks CutByte against bytes.Cut on strings with the
// separator nowhere, once and several times, at either end, and on nil.
func TestCutByteMatchesBytesCut(t *testing.T) {
	inputs := []string{"", ":", "a:", ":a", "a:b", "a:b:c", "::", "abc", "name: value", "\n", "line\nrest\n"}
	for _, in := range inputs {
		for _, sep := range []byte{':', '\n', ' ', 'x'} {
			s := []byte(in)
			before, after, found := CutByte(s, sep)
			wantBefore, wantAfter, wantFound := bytes.Cut(s, []byte{sep})
			if string(before) != string(wantBefore) || string(after) != string(wantAfter) || found != wantFound ||
				(after == nil) != (wantAfter == nil) {
				t.Fatalf("CutByte(%q, %q) = %q, %q, %v; bytes.Cut gives %q, %q, %v",
					in, sep, before, after, found, wantBefore, wantAfter, wantFound)
			}
		}
	}
	if before, after, found := CutByte(nil, ':'); before != nil || after != nil || found {
		t.Fatalf("CutByte(nil) = %q, %q, %v", before, after, found)
	}
}

// TestCanonicalHeaderKeyMatchesNetHTTP checks the quick check against
// http.CanonicalHeaderKey: every byte at every place of names up to eight bytes
// long around letters of both cases and hyphens, and random names of header
// characters and others.
func TestCanonicalHeaderKeyMatchesNetHTTP(t *testing.T) {
	check := func(s string) {
		if got, want := CanonicalHeaderKey(s), http.CanonicalHeaderKey(s); got != want {
			t.Fatalf("CanonicalHeaderKey(%q) = %q, http.CanonicalHeaderKey gives %q", s, got, want)
		}
	}
	for _, base := range []string{"Content-Type", "content-type", "X-A-B", "Ab", "a", "A-", "-a"} {
		for pos := 0; pos <= len(base); pos++ {
			for c := range 256 {
				check(base[:pos] + string([]byte{byte(c)}) + base[pos:])
			}
		}
	}
	rng := rand.New(rand.NewPCG(5, 9))
	const alphabet = "aAzZbB-_09 :\x00\xff\x7f@[`{"
	for range 100000 {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		check(string(b))
	}
	check("")
}
