package router

import (
	"strings"
	"sync"
)

// The query string is scanned in place rather than parsed into url.Values, so that
// matching allocates nothing and requests whose candidates have no query conditions
// never look at it. The scan follows url.ParseQuery: pairs are separated by "&",
// pairs containing ";" and pairs whose name or value is not validly percent-encoded
// are ignored, an empty pair is skipped, and "+" decodes to a space. Unlike
// url.ParseQuery it imposes no limit on the number of pairs; the request line size
// limit bounds the scan.

// matchesQuery reports whether the first value of the condition's parameter matches.
func matchesQuery(c *valueCond, rawQuery string) bool {
	raw, ok := firstQueryValue(rawQuery, c.name)
	if !ok {
		return false
	}
	if c.re == nil {
		return unescapedEquals(raw, c.value)
	}
	if strings.IndexByte(raw, '%') < 0 && strings.IndexByte(raw, '+') < 0 {
		return c.re.MatchString(raw)
	}
	// Only an escaped value needs a decoded copy; firstQueryValue checked it decodes.
	// The copy goes into a pooled buffer, so that matching still allocates nothing.
	bp := decodeBuffers.Get().(*[]byte)
	decoded := appendUnescaped((*bp)[:0], raw)
	matched := c.re.Match(decoded)
	if cap(decoded) <= maxPooledDecodeBuffer {
		*bp = decoded
		decodeBuffers.Put(bp)
	}
	return matched
}

// maxPooledDecodeBuffer bounds the buffers kept for decoding query values, so that
// one huge value does not pin its buffer.
const maxPooledDecodeBuffer = 4 << 10

// decodeBuffers holds *[]byte buffers that escaped query values are decoded into.
var decodeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 128); return &b }}

// appendUnescaped appends the query-decoded form of s, which validEscapes accepted,
// to dst: the decoding of url.QueryUnescape.
func appendUnescaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '%' && i+2 < len(s):
			dst = append(dst, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		case c == '+':
			dst = append(dst, ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// firstQueryValue returns the still-encoded value of the first well-formed pair whose
// decoded name is name.
func firstQueryValue(rawQuery, name string) (string, bool) {
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		if pair == "" || strings.IndexByte(pair, ';') >= 0 {
			continue
		}
		key, value, _ := strings.Cut(pair, "=")
		if unescapedEquals(key, name) && validEscapes(value) {
			return value, true
		}
	}
	return "", false
}

// unescapedEquals reports whether the query-encoded s decodes to want, without
// decoding into a new string. A malformed escape never equals anything.
func unescapedEquals(s, want string) bool {
	j := 0
	for i := 0; i < len(s); {
		var b byte
		switch s[i] {
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			b = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 3
		case '+':
			b = ' '
			i++
		default:
			b = s[i]
			i++
		}
		if j >= len(want) || want[j] != b {
			return false
		}
		j++
	}
	return j == len(want)
}

// validEscapes reports whether every "%" in s starts a two-digit hex escape.
func validEscapes(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
