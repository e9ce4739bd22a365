package observe

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

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

func TestAccessLogLineIsJSON(t *testing.T) {
	x := benchExchange()
	x.Info.Flags = reqctx.FlagRetried | reqctx.FlagUpstreamTimeout
	var fields map[string]any
	line := appendLine(nil, x, 504, 1500*time.Microsecond)
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
	x := &Exchange{listener: &Listener{name: "default/gw/http"}, rule: &Rule{route: "default/app", name: "0"}, req: r, path: r.URL.Path}
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
		a.log(x, 200, time.Millisecond)
	}
}

// The milliseconds of the access log read as formatting the float would give them.
func TestAppendMillisMatchesFloatFormatting(t *testing.T) {
	values := []time.Duration{0, time.Microsecond, 5 * time.Microsecond, 999 * time.Microsecond, time.Millisecond,
		1200 * time.Microsecond, 1234567 * time.Microsecond, 90 * time.Minute, -1500 * time.Microsecond, 1499 * time.Nanosecond}
	for us := int64(0); us < 3000; us += 7 {
		values = append(values, time.Duration(us)*time.Microsecond)
	}
	for _, d := range values {
		want := `,"ms":` + strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', -1, 64)
		if got := string(appendMillisField(nil, "ms", d)); got != want {
			t.Fatalf("appendMillisField(%v) = %s, want %s", d, got, want)
		}
	}
}
