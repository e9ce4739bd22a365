package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"testing"
)

// TestOutboundRequestCarriesTheAttemptsTrace checks that the transport finds the
// attempt's ClientTrace in the outbound request's context, which the attempt
// answers itself, and that a trace set above the attempt still sees the events.
func TestOutboundRequestCarriesTheAttemptsTrace(t *testing.T) {
	if clientTraceKey == nil {
		t.Fatal("package httptrace's key was not learnt")
	}
	in := httptest.NewRequest(http.MethodGet, "http://app.example.com/", nil)
	a := &attempt{Context: in.Context()}
	out := a.outbound(in)
	if got := httptrace.ContextClientTrace(out.Context()); got != &a.trace {
		t.Fatalf("the outbound context's trace is %p, want the attempt's %p", got, &a.trace)
	}

	var above int
	traced := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(int, textproto.MIMEHeader) error { above++; return nil },
	})
	in = in.WithContext(traced)
	w := httptest.NewRecorder()
	a = &attempt{Context: in.Context(), w: w}
	out = a.outbound(in)
	trace := httptrace.ContextClientTrace(out.Context())
	if trace == nil || trace.Got1xxResponse == nil {
		t.Fatal("no trace in the outbound context")
	}
	if err := trace.Got1xxResponse(http.StatusEarlyHints, textproto.MIMEHeader{"Link": {"</a.css>"}}); err != nil {
		t.Fatal(err)
	}
	if above != 1 || w.Code != http.StatusEarlyHints {
		t.Fatalf("the trace above saw %d events and the client got %d; want 1 and 103", above, w.Code)
	}
}
