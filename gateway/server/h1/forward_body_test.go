package h1

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// bodyForwarder answers every request it is offered with "fwd <method> <target>
// <body>",
// the body as Exchange.Body has it, and counts the offers.
func bodyForwarder(offers *atomic.Int64) Forwarder {
	return forwarderFunc(func(x *Exchange) bool {
		offers.Add(1)
		rawAnswer(x, "fwd "+x.Method()+" "+x.Target()+" "+string(x.Body()))
		return true
	})
}

// TestBufferedBodiesAreOffered: requests whose Content-Length body arrived with
// their head go to the forwarder, which finds the body in Exchange.Body; the
// server then counts the body as read, so that pipelined requests after it, with
// and without bodies, are read from where it ends.
func TestBufferedBodiesAreOffered(t *testing.T) {
	var offers, calls atomic.Int64
	addr, _ := serve(t, Config{Forwarder: bodyForwarder(&offers), Handler: handlerBody(&calls)})
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"+
		"PUT /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nGET"+
		"GET /c HTTP/1.1\r\nHost: h\r\n\r\n"+
		"POST /d HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
	for _, want := range []struct{ method, body string }{
		{"POST", "fwd POST /a hello"}, {"PUT", "fwd PUT /b GET"}, {"GET", "fwd GET /c "}, {"POST", "fwd POST /d "},
	} {
		if res, body := read(t, br, want.method); res.StatusCode != 200 || body != want.body {
			t.Fatalf("got %d %q, want 200 %q", res.StatusCode, body, want.body)
		}
	}
	if offers.Load() != 4 || calls.Load() != 0 {
		t.Fatalf("%d offers and %d handler calls, want 4 and 0", offers.Load(), calls.Load())
	}
}

// TestBodyStillArrivingGoesToTheHandler: a body not yet whole when its head has been
// read is not waited for; the handler reads it as it comes, and the connection
// serves the next request after it.
func TestBodyStillArrivingGoesToTheHandler(t *testing.T) {
	var offers, calls atomic.Int64
	addr, _ := serve(t, Config{Forwarder: bodyForwarder(&offers), Handler: handlerBody(&calls)})
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, "POST /slow HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nfirst")
	time.Sleep(50 * time.Millisecond)
	_, _ = io.WriteString(c, "-last")
	if res, body := read(t, br, "POST"); res.StatusCode != 200 || body != "handler POST /slow first-last" {
		t.Fatalf("slow body: %d %q", res.StatusCode, body)
	}
	_, _ = io.WriteString(c, "POST /next HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok")
	if res, body := read(t, br, "POST"); res.StatusCode != 200 || body != "fwd POST /next ok" {
		t.Fatalf("next request: %d %q", res.StatusCode, body)
	}
	if offers.Load() != 1 || calls.Load() != 1 {
		t.Fatalf("%d offers and %d handler calls, want 1 and 1", offers.Load(), calls.Load())
	}
}

// TestDeclinedBodyReachesTheHandler: a forwarder that looks at a body and declines
// the request leaves the body whole for the handler.
func TestDeclinedBodyReachesTheHandler(t *testing.T) {
	var calls atomic.Int64
	var mu sync.Mutex
	var looked []string
	fwd := forwarderFunc(func(x *Exchange) bool {
		mu.Lock()
		looked = append(looked, string(x.Body()))
		mu.Unlock()
		return false
	})
	addr, _ := serve(t, Config{Forwarder: fwd, Handler: handlerBody(&calls)})
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbodyGET /b HTTP/1.1\r\nHost: h\r\n\r\n")
	if res, body := read(t, br, "POST"); res.StatusCode != 200 || body != "handler POST /a body" {
		t.Fatalf("declined request: %d %q", res.StatusCode, body)
	}
	if res, body := read(t, br, "GET"); res.StatusCode != 200 || body != "handler GET /b " {
		t.Fatalf("request after it: %d %q", res.StatusCode, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(looked) != 2 || looked[0] != "body" || looked[1] != "" {
		t.Fatalf("the forwarder saw bodies %q, want the POST's and the GET's empty one", looked)
	}
	if calls.Load() != 2 {
		t.Fatalf("%d handler calls, want 2", calls.Load())
	}
}

// TestBodyTakenThroughTheResponseWriter: a forwarder that answers a request with a
// body through the ResponseWriter (as the raw path does for responses it does not
// relay itself) leaves the connection in step: the body is counted as read once,
// not again by the writer's end.
func TestBodyTakenThroughTheResponseWriter(t *testing.T) {
	fwd := forwarderFunc(func(x *Exchange) bool {
		w := x.ResponseWriter()
		_, _ = io.WriteString(w, "writer "+x.Target()+" "+string(x.Body()))
		w.(http.Flusher).Flush()
		return true
	})
	var calls atomic.Int64
	addr, _ := serve(t, Config{Forwarder: fwd, Handler: handlerBody(&calls)})
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"+
		"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\ndefGET /c HTTP/1.1\r\nHost: h\r\n\r\n")
	for _, want := range []struct{ method, body string }{
		{"POST", "writer /a abc"}, {"POST", "writer /b def"}, {"GET", "writer /c "},
	} {
		if res, body := read(t, br, want.method); res.StatusCode != 200 || body != want.body || res.Close {
			t.Fatalf("got %d %q (close %v), want 200 %q on a kept connection", res.StatusCode, body, res.Close, want.body)
		}
	}
}

// TestForwarderWritesThenDeclinesABody: a forwarder that answers and then declines
// has taken the request all the same, body included, so that the body is not read
// as the next request.
func TestForwarderWritesThenDeclinesABody(t *testing.T) {
	var calls atomic.Int64
	fwd := forwarderFunc(func(x *Exchange) bool {
		rawAnswer(x, "fwd "+x.Target()+" "+string(x.Body()))
		return false
	})
	addr, _ := serve(t, Config{Forwarder: fwd, Handler: handlerBody(&calls)})
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 32\r\n\r\nGET /smuggled HTTP/1.1\r\nX: y\r\n\r\n"+
		"GET /b HTTP/1.1\r\nHost: h\r\n\r\n")
	for _, want := range []string{"fwd /a GET /smuggled HTTP/1.1\r\nX: y\r\n\r\n", "fwd /b "} {
		if _, body := read(t, br, "GET"); body != want {
			t.Fatalf("got %q, want %q", body, want)
		}
	}
	if calls.Load() != 0 {
		t.Fatalf("%d handler calls, want none", calls.Load())
	}
}

// TestAppendingToTheBodyLeavesTheNextRequest: the body's slice ends at its
// capacity, so that a forwarder appending to it gets a copy rather than writing
// over a pipelined request that follows it in the connection's buffer.
func TestAppendingToTheBodyLeavesTheNextRequest(t *testing.T) {
	var calls atomic.Int64
	fwd := forwarderFunc(func(x *Exchange) bool {
		b := append(x.Body(), '!')
		rawAnswer(x, "fwd "+x.Target()+" "+string(b))
		return true
	})
	addr, _ := serve(t, Config{Forwarder: fwd, Handler: handlerBody(&calls)})
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhiGET /b HTTP/1.1\r\nHost: h\r\n\r\n")
	for _, want := range []struct{ method, body string }{{"POST", "fwd /a hi!"}, {"GET", "fwd /b !"}} {
		if res, body := read(t, br, want.method); res.StatusCode != 200 || body != want.body {
			t.Fatalf("got %d %q, want 200 %q", res.StatusCode, body, want.body)
		}
	}
}
