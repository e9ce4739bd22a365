// Package httpsyntax holds the small pieces of HTTP/1.1 syntax (RFC 9110, RFC 9112)
// that the gateway's parsers and the filters that edit heads share: the framing
// guard, the HTTP/1.1 server and the backend client must read tokens, lists and
// chunk sizes the same way.
package httpsyntax

import "strings"

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
func ValidFieldValue[S ~string | ~[]byte](v S) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
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
func EqualFold[S ~string | ~[]byte](a S, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
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
