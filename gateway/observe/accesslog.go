package observe

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/switchyard-dev/switchyard/gateway/reqctx"
	"github.com/switchyard-dev/switchyard/internal/httpsyntax"
)

// accessLogFlushInterval bounds how long a line waits in the buffer before it is
// written out.
const accessLogFlushInterval = time.Second

// accessLogBuffer is the size of the buffer lines are gathered in, so that a busy
// gateway writes to the file in large blocks rather than once per request.
const accessLogBuffer = 64 << 10

// AccessLog writes one JSON line per request, in the shape of log/slog's JSON
// handler: time (RFC 3339 with nanoseconds) and msg ("request") first. The lines are
// encoded by hand rather than through slog, whose JSON handler took about 5 us and
// two allocations per line of these sixteen fields where this takes about 1.3 us and
// none, buffering included (BenchmarkAccessLogLine, on two cores). Lines are
// buffered and written out at least every second and on Close.
//
// Fields: time, msg, listener, route, rule (its name, or its index), backend,
// endpoint, method, host, path (unescaped, before any rewrite, without the query,
// which may hold secrets), status, bytes (of the response body), attempts,
// duration_ms (to the end of the response), upstream_ms (of the attempt whose answer
// the client got, to its response headers), flags (see reqctx.Flags), trace_id and
// client (the TCP peer). The handler path and the raw path (LogRaw) write the same
// line.
// Strings are escaped as JSON, with invalid UTF-8 replaced by U+FFFD.
//
// Sampling: a share of the requests answered below 500 is logged; every request
// answered 500 or above (the gateway's own failures included) is.
type AccessLog struct {
	sample float64
	out    *lineWriter
	// buffers recycles the buffers lines are encoded in.
	buffers sync.Pool
}

// OpenAccessLog opens an access log: dest is "off" (or empty) for none, "stdout", or
// a file path, appended to. sample is the share of requests logged, from 0 to 1.
func OpenAccessLog(dest string, sample float64) (*AccessLog, error) {
	if sample < 0 || sample > 1 {
		return nil, fmt.Errorf("access log sample %v: want 0 to 1", sample)
	}
	switch dest {
	case "", "off":
		return nil, nil
	case "stdout":
		return NewAccessLog(os.Stdout, nil, sample), nil
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	return NewAccessLog(f, f, sample), nil
}

// NewAccessLog returns an access log writing to w; Close closes closer, if not nil.
func NewAccessLog(w io.Writer, closer io.Closer, sample float64) *AccessLog {
	out := newLineWriter(w, closer, accessLogBuffer)
	return &AccessLog{sample: sample, out: out}
}

// Flush writes out the buffered lines.
func (a *AccessLog) Flush() error { return a.out.flush() }

// Close writes out the buffered lines, stops the periodic flush and closes the
// destination file. Lines logged afterwards are dropped.
func (a *AccessLog) Close() error { return a.out.Close() }

// sampled decides whether a request is logged.
func (a *AccessLog) sampled(status int) bool {
	return status >= 500 || a.sample >= 1 || (a.sample > 0 && rand.Float64() < a.sample)
}

// lineBufferSize is the capacity of a new line buffer: a line with long names.
const lineBufferSize = 1024

// log writes the line of a request answered at now.
func (a *AccessLog) log(f *lineFields, now time.Time) {
	bp, _ := a.buffers.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, lineBufferSize)
		bp = &b
	}
	line := appendLine((*bp)[:0], f, now)
	_, _ = a.out.Write(line)
	*bp = line
	a.buffers.Put(bp)
}

// lineFields are the values of one access log line. The handler path (an
// Exchange) and the raw path (LogRaw) each fill them in from what they hold of a
// request, so that one encoder writes the lines of both and they cannot drift.
type lineFields struct {
	// listenerField and ruleFields are the listener, route and rule fields,
	// encoded once for all the lines of a listener and of a rule (see
	// listenerLogField and ruleLogFields); noRuleFields for a request no rule took.
	listenerField, ruleFields string
	// method, host and path are the request's; path is the unescaped path before
	// any rewrite, without the query.
	method, host, path string
	status             int
	// bytes is the size of the response body the client got.
	bytes   int64
	elapsed time.Duration
	// flags are the request's, with client-closed when it went away unanswered.
	flags           reqctx.Flags
	traceID, client string
	// info gives the fields the proxy filled in: backend, endpoint, attempts,
	// upstream time and caller.
	info *reqctx.Info
}

// appendLine encodes the access log line of a request answered at now. Each key
// comes with its punctuation in one constant, so that a field costs one copy for
// its key and one for its value.
func appendLine(b []byte, f *lineFields, now time.Time) []byte {
	info := f.info
	b = append(b, `{"time":"`...)
	b = appendTime(b, now)
	b = append(b, `","msg":"request"`...)
	b = append(b, f.listenerField...)
	b = append(b, f.ruleFields...)
	b = appendStringField(b, `,"backend":`, info.Backend)
	b = appendStringField(b, `,"endpoint":`, info.Endpoint)
	b = appendStringField(b, `,"method":`, f.method)
	b = appendStringField(b, `,"host":`, f.host)
	b = appendStringField(b, `,"path":`, f.path)
	b = appendIntField(b, `,"status":`, int64(f.status))
	b = appendIntField(b, `,"bytes":`, f.bytes)
	b = appendIntField(b, `,"attempts":`, int64(info.Attempts))
	b = appendMillisField(b, `,"duration_ms":`, f.elapsed)
	b = appendMillisField(b, `,"upstream_ms":`, info.UpstreamTime)
	b = appendStringField(b, `,"flags":`, f.flags.String())
	b = appendStringField(b, `,"trace_id":`, f.traceID)
	b = appendStringField(b, `,"client":`, f.client)
	if c := &info.Caller; c.Known() {
		// East-west requests name the Pod that sent them and its workload.
		b = appendStringField(b, `,"caller_namespace":`, c.Namespace)
		b = appendStringField(b, `,"caller_pod":`, c.Name)
		b = appendStringField(b, `,"caller_workload":`, c.Workload)
	}
	return append(b, '}', '\n')
}

// listenerLogField encodes the listener field of access log lines, which the
// listener's lines share: the names of listeners, routes and rules are encoded once,
// not for every request.
func listenerLogField(name string) string {
	return string(appendStringField(nil, `,"listener":`, name))
}

// noRuleFields are the route and rule fields of a request no rule took.
const noRuleFields = `,"route":"","rule":""`

// ruleLogFields encodes the route and rule fields of access log lines.
func ruleLogFields(route, rule string) string {
	return string(appendStringField(appendStringField(nil, `,"route":`, route), `,"rule":`, rule))
}

// appendStringField appends a field: key is its name with the comma before it, the
// quotes and the colon (`,"name":`).
func appendStringField(b []byte, key, value string) []byte {
	return appendJSONString(append(b, key...), value)
}

// appendIntField appends a number field; key is as for appendStringField.
func appendIntField(b []byte, key string, value int64) []byte {
	return strconv.AppendInt(append(b, key...), value, 10)
}

// appendMillisField appends d in milliseconds with microsecond resolution, as the
// shortest decimal (1.2, 0.005, 17), which is what formatting the float would give,
// without formatting a float on every request. key is as for appendStringField.
func appendMillisField(b []byte, key string, d time.Duration) []byte {
	b = append(b, key...)
	us := d.Microseconds()
	if us < 0 {
		b = append(b, '-')
		us = -us
	}
	if ms := us / 1000; ms < 10 {
		// Most requests take less than ten milliseconds: one digit.
		b = append(b, byte('0'+ms))
	} else {
		b = strconv.AppendInt(b, ms, 10)
	}
	frac := int(us % 1000)
	if frac == 0 {
		return b
	}
	b = append(b, '.')
	return append(b, thousandths(frac)...)
}

// threeDigits holds the three decimal digits of each number below a thousand, "000"
// to "999", for fractions written a group of three digits at a time.
var threeDigits = func() (t [3000]byte) {
	for n := range 1000 {
		t[3*n], t[3*n+1], t[3*n+2] = byte('0'+n/100), byte('0'+n/10%10), byte('0'+n%10)
	}
	return t
}()

// significantDigits holds, for each number below a thousand written with three
// digits, how many are left once trailing zeros are dropped (zero for zero).
var significantDigits = func() (t [1000]uint8) {
	for n := 1; n < 1000; n++ {
		k := uint8(3)
		for m := n; m%10 == 0; m /= 10 {
			k--
		}
		t[n] = k
	}
	return t
}()

// thousandths returns the digits of n thousandths (n below a thousand, above zero)
// after the decimal point, without trailing zeros: "5" for 500, "005" for 5.
func thousandths(n int) []byte {
	end := 3*n + int(significantDigits[n])
	// Capped at its end, so that an append to it copies rather than writing over
	// the table.
	return threeDigits[3*n : end : end]
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a quoted JSON string. Quotes, backslashes, control
// characters and U+2028/U+2029 are escaped; invalid UTF-8 becomes U+FFFD.
//
// A line has a dozen such fields, nearly always plain ASCII with nothing to escape:
// those are checked eight bytes at a time (see plainJSON) and copied whole.
func appendJSONString(b []byte, s string) []byte {
	if !plainJSON(s) {
		return appendEscapedJSONString(b, s)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plainJSON reports whether appendJSONString can copy s as it is: whether every byte
// is printable ASCII other than a quote and a backslash. A string of eight bytes or
// more is read a word at a time, its last few bytes as the word that ends it, which
// overlaps bytes read already and so needs no byte-by-byte tail.
func plainJSON(s string) bool {
	if len(s) < 8 {
		for i := 0; i < len(s); i++ {
			if !jsonPlain[s[i]] {
				return false
			}
		}
		return true
	}
	last := len(s) - 8
	for i := 0; i < last; i += 8 {
		if !plainWord(httpsyntax.Load64(s, i)) {
			return false
		}
	}
	return plainWord(httpsyntax.Load64(s, last))
}

// jsonPlain tells the bytes appendJSONString copies as they are: printable ASCII
// other than a quote and a backslash.
var jsonPlain = func() (plain [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		plain[c] = c != '"' && c != '\\'
	}
	return plain
}()

// appendEscapedJSONString is appendJSONString for a string that may need escapes.
func appendEscapedJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time while none needs a look of its own: names,
		// addresses and paths are mostly plain ASCII. The last few bytes are
		// looked at one by one.
		if i+8 <= len(s) {
			if i = skipPlainWords(s, i); i == len(s) {
				break
			}
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			switch r {
			case utf8.RuneError:
				b = append(b, `\ufffd`...)
			default:
				b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			}
			start = i + size
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Bytes repeated in every byte of a word, for plainWord.
const (
	eachByte = 0x0101010101010101
	highBits = 0x8080808080808080
)

// skipPlainWords returns the index of the first word of eight bytes of s, from i,
// that holds a byte appendJSONString cannot copy as it is (anything but printable
// ASCII other than a quote and a backslash), or of the last bytes too few to make a
// word. The tests are the usual ones for a byte below n in a word, exact for whether
// any is ("Bit Twiddling Hacks", hasless and haszero); the bytes are read as the
// compiler reads a little-endian word, in one load.
func skipPlainWords(s string, i int) int {
	for ; i+8 <= len(s); i += 8 {
		if !plainWord(httpsyntax.Load64(s, i)) {
			break
		}
	}
	return i
}

// plainWord reports whether none of the eight bytes of the word v (read by
// httpsyntax.Load64) needs a look of its own from appendEscapedJSONString (see
// skipPlainWords).
func plainWord(v uint64) bool {
	q := v ^ (eachByte * '"')
	bs := v ^ (eachByte * '\\')
	return ((v-eachByte*0x20)&^v|(q-eachByte)&^q|(bs-eachByte)&^bs|v)&highBits == 0
}
