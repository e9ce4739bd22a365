package backend

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"unsafe"

	"github.com/switchyard-dev/switchyard/internal/httpsyntax"
)

// response is a response and the client's state for it: the state of its body and
// the backing of its TransferEncoding. It is allocated with room for the values
// and the text of its head where they fit (see newResponse). Each response has its
// own, never reused, so that whatever of it a caller keeps (header value slices
// outlive the response in the proxy) stays as the backend sent it.
type response struct {
	res     http.Response
	body    clientBody
	chunked [1]string
}

// A response with the values and text of its head, in one of four sizes that each
// fill an allocator size class on 64-bit platforms, where objects with pointers
// above 512 bytes carry an 8-byte header of their type, which counts (elsewhere
// they fit less snugly, and work the same). Each holds a few more fields than the
// last, of about 30 bytes each. The text comes last: the collector does not scan
// it.
const (
	responseSize = unsafe.Sizeof(response{})
	stringSize   = unsafe.Sizeof("")
	mallocHeader = 8
)

type (
	response416 struct {
		response
		values [4]string
		text   [416 - responseSize - 4*stringSize]byte
	}
	response512 struct {
		response
		values [6]string
		text   [512 - responseSize - 6*stringSize]byte
	}
	response768 struct {
		response
		values [10]string
		text   [768 - mallocHeader - responseSize - 10*stringSize]byte
	}
	response1024 struct {
		response
		values [16]string
		text   [1024 - mallocHeader - responseSize - 16*stringSize]byte
	}
)

// newResponse returns a new response, an array for the values of its fields, and a
// copy of head as a string, allocated together when they fit. The copy's bytes are
// written once, here, and never again, as unsafe.String requires.
func newResponse(head []byte, fields int) (*response, []string, string) {
	var r *response
	var values []string
	var text []byte
	switch n := len(head); {
	case fields <= len(response416{}.values) && n <= len(response416{}.text):
		b := new(response416)
		r, values, text = &b.response, b.values[:fields], b.text[:n]
	case fields <= len(response512{}.values) && n <= len(response512{}.text):
		b := new(response512)
		r, values, text = &b.response, b.values[:fields], b.text[:n]
	case fields <= len(response768{}.values) && n <= len(response768{}.text):
		b := new(response768)
		r, values, text = &b.response, b.values[:fields], b.text[:n]
	case fields <= len(response1024{}.values) && n <= len(response1024{}.text):
		b := new(response1024)
		r, values, text = &b.response, b.values[:fields], b.text[:n]
	default:
		return new(response), make([]string, fields), string(head)
	}
	copy(text, head)
	return r, values, unsafe.String(unsafe.SliceData(text), len(text))
}

// parseResponseHead parses a status line and header fields. Header names are put in
// canonical form in head itself, before its text is copied once into the strings of
// the result.
func parseResponseHead(head []byte) (*response, error) {
	start := len(head)
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		start = i + 1
	}
	var lay fieldLayout
	if err := scanFields(head[start:], &lay); err != nil {
		return nil, err
	}
	r, values, text := newResponse(head, lay.fields)
	line := strings.TrimSuffix(strings.TrimSuffix(text[:start], "\n"), "\r")
	proto, status, ok := strings.Cut(line, " ")
	if !ok {
		return nil, errMalformedResponse
	}
	proto, major, minor, ok := parseVersion(proto)
	if !ok {
		return nil, errMalformedResponse
	}
	codeText, _, _ := strings.Cut(status, " ")
	code, err := strconv.Atoi(codeText)
	if err != nil || len(codeText) != 3 || code < 100 {
		return nil, errMalformedResponse
	}
	r.res = http.Response{Status: status, StatusCode: code, Proto: proto, ProtoMajor: major, ProtoMinor: minor}
	if lay.distinct < 0 {
		r.res.Header = make(http.Header, lay.fields)
		fillFields(text[start:], r.res.Header, values[:0])
	} else {
		r.res.Header = make(http.Header, lay.distinct)
		fillCounted(text[start:], r.res.Header, values, &lay)
	}
	return r, nil
}

// parseVersion reads "HTTP/1.0" or "HTTP/1.1", returned as a constant.
func parseVersion(proto string) (string, int, int, bool) {
	switch proto {
	case "HTTP/1.1":
		return "HTTP/1.1", 1, 1, true
	case "HTTP/1.0":
		return "HTTP/1.0", 1, 0, true
	}
	return "", 0, 0, false
}

// maxCounted is the most fields whose names scanFields tells apart, comparing them,
// which costs less than hashing each twice. The header map is then made for the
// distinct names, not the fields: a map made for more than 8 costs several
// allocations more than one whose names fit its first group. And each name goes
// into the map once, with all its values.
const maxCounted = 16

// fieldLayout describes the fields of a head, as scanFields finds them.
type fieldLayout struct {
	fields int
	// distinct counts the distinct names among up to maxCounted fields; it is -1
	// for more.
	distinct int
	// group holds, for each field, the index of the first field of its name, and
	// spans where its line lies, so that the lines need not be found again.
	group [maxCounted]uint8
	spans [maxCounted]fieldSpan
}

// fieldSpan locates a field line: its name is [start, colon), its value with the
// blanks around it (colon, end).
type fieldSpan struct{ start, colon, end int32 }

// scanFields checks the field lines of b up to its empty line (a last line may lack
// its LF), puts their names in place in the canonical form of
// http.CanonicalHeaderKey, and describes them in lay. Folded lines, lines without
// a colon and names that are not tokens are refused.
func scanFields(b []byte, lay *fieldLayout) error {
	fields, at := 0, 0
	for at < len(b) {
		end := len(b)
		if i := bytes.IndexByte(b[at:], '\n'); i >= 0 {
			end = at + i
		}
		line := b[at:end]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			break
		}
		colon := canonicalName(line)
		if colon < 0 {
			return errMalformedResponse
		}
		if fields < maxCounted {
			lay.spans[fields] = fieldSpan{int32(at), int32(at + colon), int32(at + len(line))}
		}
		fields++
		at = end + 1
	}
	lay.fields, lay.distinct = fields, -1
	if fields <= maxCounted {
		lay.distinct = groupNames(b, lay)
	}
	return nil
}

// canonicalName returns the index of the colon that ends the name line starts
// with, having put the name in canonical form on the way, or -1 when the name is
// empty or not a token. One pass over the name does what finding the colon,
// checking the name and rewriting it would do in three.
func canonicalName(line []byte) int {
	upper := true
	for i, c := range line {
		switch {
		case c == ':':
			if i == 0 {
				return -1
			}
			return i
		case !httpsyntax.IsTokenChar(c):
			return -1
		case upper && 'a' <= c && c <= 'z':
			line[i] = c - ('a' - 'A')
		case !upper && 'A' <= c && c <= 'Z':
			line[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
	return -1
}

// groupNames sets lay.group from the names of the fields in b, which lay.spans
// locate, and returns how many are distinct.
func groupNames(b []byte, lay *fieldLayout) int {
	distinct := 0
	for i, sp := range lay.spans[:lay.fields] {
		name := b[sp.start:sp.colon]
		lay.group[i] = uint8(i)
		for j, earlier := range lay.spans[:i] {
			if lay.group[j] == uint8(j) && bytes.Equal(name, b[earlier.start:earlier.colon]) {
				lay.group[i] = uint8(j)
				break
			}
		}
		if lay.group[i] == uint8(i) {
			distinct++
		}
	}
	return distinct
}

// nextField returns the name and trimmed value of the first field line of text,
// which scanFields checked, and the text after it; ok is false at the empty line.
func nextField(text string) (name, value, rest string, ok bool) {
	line, rest, _ := strings.Cut(text, "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", "", "", false
	}
	colon := strings.IndexByte(line, ':')
	return line[:colon], trimBlanks(line[colon+1:]), rest, true
}

// fillFields adds the field lines of text, which scanFields checked, to header up to
// the empty line. Values are slices of text, appended to values, whose capacity
// should hold them all: a name's values are a capped slice of it, so that a later
// append by anyone copies them.
func fillFields(text string, header http.Header, values []string) {
	for {
		name, value, rest, ok := nextField(text)
		if !ok {
			return
		}
		text = rest
		name = internName(name)
		values = append(values, value)
		if vv, ok := header[name]; ok {
			header[name] = append(vv, value)
		} else {
			header[name] = values[len(values)-1 : len(values) : len(values)]
		}
	}
}

// fillCounted adds the fields of text, which scanFields laid out in lay, to header,
// whose map is new. The values of each name are placed together in values, which
// holds one for each field, so that each name is put in the map once, with a
// capped slice of its values: no append grows a slice, no lookup precedes an
// assignment, and a map made for exactly as many names as a small map holds is
// never assigned to when full, which would grow it.
func fillCounted(text string, header http.Header, values []string, lay *fieldLayout) {
	var count, start, next [maxCounted]uint8
	for _, g := range lay.group[:lay.fields] {
		count[g]++
	}
	at := uint8(0)
	for i, g := range lay.group[:lay.fields] {
		if g == uint8(i) {
			start[i] = at
			at += count[i]
		}
	}
	for i, sp := range lay.spans[:lay.fields] {
		g := lay.group[i]
		values[start[g]+next[g]] = trimBlanks(text[sp.colon+1 : sp.end])
		next[g]++
		if g == uint8(i) {
			end := start[g] + count[g]
			header[internName(text[sp.start:sp.colon])] = values[start[g]:end:end]
		}
	}
}

// trimBlanks removes the spaces and tabs around a field value.
func trimBlanks(v string) string {
	i, j := 0, len(v)
	for i < j && (v[i] == ' ' || v[i] == '\t') {
		i++
	}
	for j > i && (v[j-1] == ' ' || v[j-1] == '\t') {
		j--
	}
	return v[i:j]
}

// internName returns the constant for the header names most responses carry, else
// name: lookups of those names (by the framing here, the proxy, the server writing
// the answer) then find keys that share their bytes, which compare at once.
func internName(name string) string {
	switch name {
	case "Accept-Ranges":
		return "Accept-Ranges"
	case "Age":
		return "Age"
	case "Cache-Control":
		return "Cache-Control"
	case "Connection":
		return "Connection"
	case "Content-Encoding":
		return "Content-Encoding"
	case "Content-Length":
		return "Content-Length"
	case "Content-Type":
		return "Content-Type"
	case "Date":
		return "Date"
	case "Etag":
		return "Etag"
	case "Expires":
		return "Expires"
	case "Keep-Alive":
		return "Keep-Alive"
	case "Last-Modified":
		return "Last-Modified"
	case "Location":
		return "Location"
	case "Server":
		return "Server"
	case "Set-Cookie":
		return "Set-Cookie"
	case "Trailer":
		return "Trailer"
	case "Transfer-Encoding":
		return "Transfer-Encoding"
	case "Vary":
		return "Vary"
	case "X-Content-Type-Options":
		return "X-Content-Type-Options"
	case "X-Request-Id":
		return "X-Request-Id"
	}
	return name
}
