// Package httpsyntax holds the small pieces of HTTP/1.1 syntax (RFC 9110, RFC 9112)
// that the gateway's parsers and the filters that edit heads share: the framing
// guard, the HTTP/1.1 server and the backend client must read tokens, lists and
// chunk sizes the same way.
package httpsyntax

import (
	"bytes"
	"net/http"
	"strings"
)

// tokenChars marks the characters of an RFC 9110 token.
var tokenChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// IsTokenChar reports whether c may appear in a token (a method or a field name).
func IsTokenChar(c byte) bool { return tokenChars[c] }

// IsToken reports whether b is a non-empty token.
func IsToken[S ~string | ~[]byte](b S) bool {
	if len(b) == 0 {
		return false
	}
	for i := 0; i < len(b); i++ {
		if !tokenChars[b[i]] {
			return false
		}
	}
	return true
}

// ValidFieldValue reports whether a field value holds no control characters other
// than horizontal tab (so no CR or LF that could split a message).
//
// Every field of every message passes through it, so it looks at eight bytes at a
// time: a word with no byte below a space and no DEL is valid whole, which is what
// nearly every word of a real value is. A word that may hold one (a tab, or an
// invalid byte) is judged byte by byte.
func ValidFieldValue[S ~string | ~[]byte](v S) bool {
	i := 0
	for ; i+8 <= len(v); i += 8 {
		if mayHoldControl(Load64(v, i)) && !validFieldBytes(v[i:i+8]) {
			return false
		}
	}
	return validFieldBytes(v[i:])
}

// validFieldBytes is ValidFieldValue one byte at a time.
func validFieldBytes[S ~string | ~[]byte](v S) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// Constants of the word-at-a-time tests: a one and a high bit in every byte.
const (
	bytesOf1    = 0x0101010101010101
	bytesOfHigh = 0x8080808080808080
)

// mayHoldControl reports whether some byte of x is below a space or is DEL. It
// never misses one; it may report one that is not there (after a byte that is),
// which only sends the word to the byte loop. The test is the classic one for a
// byte below n, (x - n per byte) &^ x & high bits, which is exact for n up to 128
// about whether any byte matches; DEL is a zero byte of x XOR DEL.
func mayHoldControl(x uint64) bool {
	const space, del = ' ' * bytesOf1, 0x7f * bytesOf1
	y := x ^ del
	return ((x-space)&^x|(y-bytesOf1)&^y)&bytesOfHigh != 0
}

// Load64 reads the eight bytes of v at i as a little-endian word; the compiler makes
// it one load. Indexing a slice of constant length eight, rather than v at i and
// after, leaves one bounds check instead of eight.
func Load64[S ~string | ~[]byte](v S, i int) uint64 {
	w := v[i : i+8]
	return uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
		uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
}

// Canonicalize rewrites a field name in place in the canonical form of
// http.CanonicalHeaderKey: upper case at the start and after each hyphen, lower case
// elsewhere. Callers check that it is a token first.
func Canonicalize(name []byte) {
	upper := true
	for i, c := range name {
		switch {
		case upper && 'a' <= c && c <= 'z':
			name[i] = c - ('a' - 'A')
		case !upper && 'A' <= c && c <= 'Z':
			name[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
}

// EqualFold reports whether a and b are equal but for the case of ASCII letters, as
// field names and tokens compare; other bytes must match exactly.
//
// Names nearly always arrive in the case they are compared with, so bytes that are
// equal are passed over first, and only a pair that differs is compared by case.
func EqualFold[S ~string | ~[]byte](a S, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		// x and y differ: they are the same letter only if they differ in the
		// case bit alone and that makes a lower-case letter of both.
		if x|0x20 != y|0x20 || x|0x20 < 'a' || x|0x20 > 'z' {
			return false
		}
	}
	return true
}

// HasToken reports whether a comma-separated field (such as Connection) holds
// token, ignoring ASCII case.
func HasToken(values []string, token string) bool {
	for _, v := range values {
		if ValueHasToken(v, token) {
			return true
		}
	}
	return false
}

// ValueHasToken is HasToken for one field value.
func ValueHasToken(value, token string) bool {
	for part := range strings.SplitSeq(value, ",") {
		if strings.EqualFold(strings.TrimSpace(part), token) {
			return true
		}
	}
	return false
}

// ParseHex parses 1 to 16 hexadecimal digits, as a chunk size.
func ParseHex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | uint64(c)
	}
	return n, true
}

// ParseContentLength parses 1 to 18 decimal digits, without sign or spaces.
func ParseContentLength(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// CutByte is bytes.Cut for a separator of one byte: it slices s around the first
// instance of sep. Heads are cut into lines and fields many times per request, and
// going to the byte search directly costs less than half of what bytes.Cut's
// general search does for a one-byte separator.
func CutByte(s []byte, sep byte) (before, after []byte, found bool) {
	i := bytes.IndexByte(s, sep)
	if i < 0 {
		return s, nil, false
	}
	return s[:i], s[i+1:], true
}

// CanonicalHeaderKey returns http.CanonicalHeaderKey(s). Names nearly always arrive
// in canonical form already, and telling so takes a few instructions a byte here
// against several times that in net/textproto's own check: only a name with a
// letter in the wrong case goes to http.CanonicalHeaderKey. A name whose letters
// are all in canonical case is its own canonical form, whatever its other bytes,
// since the standard function returns a name with a byte that cannot be in a field
// name as it is.
func CanonicalHeaderKey(s string) string {
	upper := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if upper {
			if c-'a' < 26 {
				return http.CanonicalHeaderKey(s)
			}
		} else if c-'A' < 26 {
			return http.CanonicalHeaderKey(s)
		}
		upper = c == '-'
	}
	return s
}
