package main

import "bytes"

// headEnd returns the length of the head at the start of b, through its empty
// line, or 0 while b holds no whole head; the search starts at from, since the
// bytes before it were searched already.
func headEnd(b []byte, from int) int {
	i := bytes.Index(b[from:], []byte("\r\n\r\n"))
	if i < 0 {
		return 0
	}
	return from + i + 4
}

// contentLength returns the Content-Length of a head, or -1 when it has none.
// A head framed by Transfer-Encoding, or with a malformed or conflicting
// Content-Length, is an error: the floor does not forward it.
func contentLength(head []byte) (int64, error) {
	length := int64(-1)
	_, rest, _ := bytes.Cut(head, []byte("\r\n"))
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		switch {
		case bytes.EqualFold(name, []byte("transfer-encoding")):
			return 0, errUnframed
		case bytes.EqualFold(name, []byte("content-length")):
			n, err := parseLength(bytes.TrimSpace(value))
			if err != nil || (length >= 0 && n != length) {
				return 0, errBadLength
			}
			length = n
		}
	}
	return length, nil
}

// parseLength parses a run of decimal digits of at most 18.
func parseLength(b []byte) (int64, error) {
	if len(b) == 0 || len(b) > 18 {
		return 0, errBadLength
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errBadLength
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

// isHead reports whether a request head is for the HEAD method, whose answer
// has no body whatever its Content-Length says.
func isHead(head []byte) bool { return bytes.HasPrefix(head, []byte("HEAD ")) }

// statusCode returns the status code of a response head.
func statusCode(head []byte) (int, error) {
	if len(head) < 12 || !bytes.HasPrefix(head, []byte("HTTP/1.")) || head[8] != ' ' {
		return 0, errMalformed
	}
	code := 0
	for _, c := range head[9:12] {
		if c < '0' || c > '9' {
			return 0, errMalformed
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 {
		return 0, errMalformed
	}
	return code, nil
}
