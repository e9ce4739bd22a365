package observe

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
)

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	cases := map[string]string{
		"plain":                     "plain",
		`quote " and \ backslash`:   `quote " and \ backslash`,
		"new\nline\ttab\rreturn":    "new\nline\ttab\rreturn",
		"nul\x00 and \x1f":          "nul\x00 and \x1f",
		"ünïcödé ✓ 日本":              "ünïcödé ✓ 日本",
		"bad \xff utf8 \xc3":        "bad \ufffd utf8 \ufffd",
		"separators \u2028\u2029 x": "separators \u2028\u2029 x",
		"":                          "",
	}
	for in, want := range cases {
		out := appendJSONString(nil, in)
		var got string
		if err := json.Unmarshal(out, &got); err != nil || got != want {
			t.Errorf("appendJSONString(%q) = %s, decoding to %q (%v); want %q", in, out, got, err, want)
		}
	}
}

// TestAppendJSONStringMatchesByteByByte checks the escaping of strings with every
// kind of byte at every position against referenceJSONString, which looks at each
// byte: words of eight plain bytes are copied at once, and a byte that needs a look
// anywhere in a word must get it.
func TestAppendJSONStringMatchesByteByByte(t *testing.T) {
	special := []string{"\"", "\\", "\n", "\x00", "\x1f", "\x7f", " ", "~", "é", "\xff", "\u2028", "\u2029", "日", "\xe2\x80"}
	rng := rand.New(rand.NewPCG(3, 4))
	for n := range 40 {
		for range 50 {
			var b strings.Builder
			for b.Len() < n {
				if rng.IntN(6) == 0 {
					b.WriteString(special[rng.IntN(len(special))])
				} else {
					b.WriteByte(byte(' ' + rng.IntN(95)))
				}
			}
			in := b.String()
			if got, want := appendJSONString(nil, in), referenceJSONString(nil, in); string(got) != string(want) {
				t.Fatalf("appendJSONString(%q) = %s, want %s", in, got, want)
			}
		}
	}
	// Every byte at every place of strings up to 20 bytes long: in a whole word, and
	// among the last bytes, which are read as the word that ends the string.
	for c := range 256 {
		for n := 1; n <= 20; n++ {
			for pos := range n {
				in := strings.Repeat("a", pos) + string([]byte{byte(c)}) + strings.Repeat("b", n-pos-1)
				if got, want := appendJSONString(nil, in), referenceJSONString(nil, in); string(got) != string(want) {
					t.Fatalf("appendJSONString(%q) = %s, want %s", in, got, want)
				}
			}
		}
	}
}

// referenceJSONString is appendJSONString looking at each byte, as it did before it
// learnt to skip words of plain bytes.
func referenceJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c >= 0x20 && c != '"' && c != '\\':
				b = append(b, c)
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// TestAccessLogLineFields checks a whole line, field by field in their order, as the
// access log documents it.
func TestAccessLogLineFields(t *testing.T) {
	x := benchExchange()
	x.Info.Flags = reqctx.FlagRetried
	x.Info.Caller = reqctx.Caller{Namespace: "shop", Name: "web-1", Workload: "web"}
	x.writer.bytes = 1234
	x.req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	now := time.Now()
	elapsed := 2500 * time.Microsecond
	str := func(s string) string { return string(referenceJSONString(nil, s)) }
	want := `{"time":"` + now.Format(time.RFC3339Nano) + `","msg":"request"` +
		`,"listener":` + str(x.listener.name) + `,"route":` + str(x.rule.route) + `,"rule":` + str(x.rule.name) +
		`,"backend":` + str(x.Info.Backend) + `,"endpoint":` + str(x.Info.Endpoint) + `,"method":` + str(x.req.Method) +
		`,"host":` + str(x.req.Host) + `,"path":` + str(x.path) + `,"status":200,"bytes":1234` +
		`,"attempts":` + strconv.Itoa(x.Info.Attempts) +
		`,"duration_ms":` + strconv.FormatFloat(float64(elapsed.Microseconds())/1000, 'f', -1, 64) +
		`,"upstream_ms":` + strconv.FormatFloat(float64(x.Info.UpstreamTime.Microseconds())/1000, 'f', -1, 64) +
		`,"flags":` + str(x.Info.Flags.String()) + `,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"` +
		`,"client":` + str(x.req.RemoteAddr) + `,"caller_namespace":"shop","caller_pod":"web-1","caller_workload":"web"}` + "\n"
	f := x.lineFields(http.StatusOK, elapsed)
	if got := string(appendLine(nil, &f, now)); got != want {
		t.Fatalf("line\n%s\nwant\n%s", got, want)
	}
}

// TestAccessLogNamesEncodedOnceReadAsEncodedPerLine checks that the listener,
// route and rule fields a Listener and a Rule encode once, when they are made, are
// what the reference encoder makes of the names: for names that need escaping too.
func TestAccessLogNamesEncodedOnceReadAsEncodedPerLine(t *testing.T) {
	o := &Observer{}
	for _, names := range [][3]string{
		{"default/gw/http", "default/app", "checkout"},
		{"ns/gw/l\"1", "ns/r\\oute", "ru\u2028le\x01"},
		{"\xff\xfe", "caf\u00e9", ""},
	} {
		x := benchExchange()
		x.listener, x.rule = o.Listener(names[0]), o.Rule(names[1], 3, &config.Rule{Name: names[2]})
		f := x.lineFields(http.StatusOK, time.Millisecond)
		rule := names[2]
		if rule == "" {
			rule = "3"
		}
		str := func(s string) string { return string(referenceJSONString(nil, s)) }
		encodedOnce := string(appendLine(nil, &f, time.Now()))
		if want := `,"listener":` + str(names[0]) + `,"route":` + str(names[1]) + `,"rule":` + str(rule) + `,"backend":`; !strings.Contains(encodedOnce, want) {
			t.Fatalf("names %q: line\n%s\nlacks\n%s", names, encodedOnce, want)
		}
		var fields map[string]any
		if err := json.Unmarshal([]byte(encodedOnce), &fields); err != nil || fields["route"] != names[1] {
			t.Fatalf("names %q: line %q reads as %v (%v)", names, encodedOnce, fields, err)
		}
	}
}

func TestAccessLogLineIsJSON(t *testing.T) {
	x := benchExchange()
	x.Info.Flags = reqctx.FlagRetried | reqctx.FlagUpstreamTimeout
	var fields map[string]any
	f := x.lineFields(504, 1500*time.Microsecond)
	line := appendLine(nil, &f, time.Now())
	if err := json.Unmarshal(line, &fields); err != nil || line[len(line)-1] != '\n' {
		t.Fatalf("line %q: %v", line, err)
	}
	if fields["status"] != 504.0 || fields["duration_ms"] != 1.5 || fields["flags"] != "upstream-timeout,retried" ||
		fields["path"] != "/a\"b" || fields["msg"] != "request" {
		t.Fatalf("fields %v", fields)
	}
}

func benchExchange() *Exchange {
	r := httptest.NewRequest("GET", "http://app.example.com/a%22b?secret=1", nil)
	o := &Observer{}
	x := &Exchange{listener: o.Listener("default/gw/http"), rule: o.Rule("default/app", 0, &config.Rule{}), req: r, path: r.URL.Path}
	x.Info.Backend, x.Info.Endpoint, x.Info.Attempts = "default/app:80", "10.244.1.7:8080", 1
	x.Info.UpstreamTime = 900 * time.Microsecond
	return x
}

// BenchmarkAccessLogLine is the cost of one access log line, buffered.
func BenchmarkAccessLogLine(b *testing.B) {
	a := NewAccessLog(io.Discard, nil, 1)
	defer a.Close()
	x := benchExchange()
	b.ReportAllocs()
	for b.Loop() {
		f := x.lineFields(200, time.Millisecond)
		a.log(&f, time.Now())
	}
}

// The milliseconds of the access log read as formatting the float would give them.
func TestAppendMillisMatchesFloatFormatting(t *testing.T) {
	values := []time.Duration{0, time.Microsecond, 5 * time.Microsecond, 999 * time.Microsecond, time.Millisecond,
		1200 * time.Microsecond, 1234567 * time.Microsecond, 90 * time.Minute, -1500 * time.Microsecond, 1499 * time.Nanosecond}
	// Every microsecond within 20 ms either way: one digit of milliseconds and
	// two, with every fraction.
	for us := int64(-20000); us <= 20000; us++ {
		values = append(values, time.Duration(us)*time.Microsecond)
	}
	for _, d := range values {
		want := `,"ms":` + strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', -1, 64)
		if got := string(appendMillisField(nil, `,"ms":`, d)); got != want {
			t.Fatalf("appendMillisField(%v) = %s, want %s", d, got, want)
		}
	}
}
