package backend

import (
	"bufio"
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/httpsyntax"
)

// hopByHopNames are the fields rawHopByHop takes out of every relayed response.
var hopByHopNames = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// TestRawHopByHopKnowsEachName checks every hop-by-hop name in several cases, names
// of the same lengths that are not hop-by-hop, and random names against a plain
// comparison with each name.
func TestRawHopByHopKnowsEachName(t *testing.T) {
	for _, name := range hopByHopNames {
		for _, form := range []string{name, strings.ToLower(name), strings.ToUpper(name)} {
			if !rawHopByHop([]byte(form), nil) {
				t.Errorf("%q is not taken out", form)
			}
		}
	}
	for _, name := range []string{"Tx", "Trailed", "Content-Ty", "Proxy-Connectiom", "Transfer-Encodinf", "X", ""} {
		if rawHopByHop([]byte(name), nil) {
			t.Errorf("%q is taken out", name)
		}
	}
	if !rawHopByHop([]byte("x-private"), [][]byte{[]byte("close, X-Private")}) {
		t.Error("a field the Connection field names is kept")
	}
	rng := rand.New(rand.NewPCG(26, 11))
	const alphabet = "aceiknoprtuxy-TCAEKPU"
	for range 20000 {
		var name []byte
		if rng.IntN(3) == 0 {
			name = []byte(hopByHopNames[rng.IntN(len(hopByHopNames))])
			name[rng.IntN(len(name))] = alphabet[rng.IntN(len(alphabet))]
		} else {
			name = make([]byte, rng.IntN(20))
			for i := range name {
				name[i] = alphabet[rng.IntN(len(alphabet))]
			}
		}
		want := false
		for _, h := range hopByHopNames {
			want = want || httpsyntax.EqualFold(name, h)
		}
		if got := rawHopByHop(name, nil); got != want {
			t.Fatalf("rawHopByHop(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestTrimOWSTrimsSpacesAndTabs(t *testing.T) {
	rng := rand.New(rand.NewPCG(26, 12))
	const alphabet = " \t a\x0bb\r"
	for range 20000 {
		v := make([]byte, rng.IntN(12))
		for i := range v {
			v[i] = alphabet[rng.IntN(len(alphabet))]
		}
		if got, want := trimOWS(v), bytes.Trim(v, " \t"); !bytes.Equal(got, want) {
			t.Fatalf("trimOWS(%q) = %q, want %q", v, got, want)
		}
	}
}

// TestAppendClientHeadVerbatimIsThePerLineHead builds random relayable response
// heads, with line endings of CRLF or LF, hop-by-hop fields, Connection fields and
// fields they name, and checks that the head sent to the client is the same whether
// the field lines are copied whole (when scanRawHead found that they can be) or
// line by line; and that the common head is copied whole.
func TestAppendClientHeadVerbatimIsThePerLineHead(t *testing.T) {
	rng := rand.New(rand.NewPCG(26, 13))
	fieldsPool := []string{"Content-Type: text/plain", "X-Trace: a b", "Cache-Control: no-store", "Date: Sat, 28 Nov 2026 12:00:00 GMT",
		"Keep-Alive: timeout=5", "Connection: x-private", "X-Private: 1", "Upgrade: h2c", "Te: trailers", "Set-Cookie: a=b",
		"Proxy-Authenticate: Basic", "Trailer: X-Sum", "connection: keep-alive", "X-Empty:", "X-Ows:  \tpadded \t"}
	verbatimSeen := 0
	for range 5000 {
		var b strings.Builder
		eol := func() string {
			if rng.IntN(10) == 0 {
				return "\n"
			}
			return "\r\n"
		}
		b.WriteString("HTTP/1.1 200 OK" + eol())
		b.WriteString("Content-Length: 2" + eol())
		for range rng.IntN(5) {
			b.WriteString(fieldsPool[rng.IntN(len(fieldsPool))] + eol())
		}
		b.WriteString(eol())
		head := []byte(b.String())
		rh, err := scanRawHead(head, false)
		if err != nil {
			continue
		}
		sink := &fakeSink{closing: rng.IntN(4) == 0}
		got := appendClientHead(nil, head, &rh, []byte("X-Gateway: 1\r\n"), sink, nil)
		perLine := rh
		perLine.verbatim = false
		want := appendClientHead(nil, head, &perLine, []byte("X-Gateway: 1\r\n"), sink, nil)
		if !bytes.Equal(got, want) {
			t.Fatalf("head %q:\n%q\ncopied whole, and\n%q\nline by line", head, got, want)
		}
		if rh.verbatim {
			verbatimSeen++
		}
	}
	if verbatimSeen == 0 {
		t.Fatal("no head was copied whole")
	}
	common := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\nDate: X\r\n\r\n")
	if rh, err := scanRawHead(common, false); err != nil || !rh.verbatim {
		t.Fatalf("the common head is not copied whole: %v, verbatim %v", err, rh.verbatim)
	}
}

// panickingEditor is a response editor that panics, as a faulty plugin's might.
type panickingEditor struct{}

func (panickingEditor) AppendEditedResponse(b, _ []byte) []byte { panic("editor fault") }

// TestRawRelayClosesTheConnectionOfAPanickingEditor relays a response through an
// editor that panics: the panic goes on to the caller, and the backend connection,
// which no pool holds, is closed rather than left open.
func TestRawRelayClosesTheConnectionOfAPanickingEditor(t *testing.T) {
	closed := make(chan struct{})
	addr, _ := scriptedBackend(t, func(c net.Conn, br *bufio.Reader) {
		answers(okRelayed)(c, br)
		close(closed)
	})
	rc := newRawClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), rawWait)
	defer cancel()
	sink := &fakeSink{}
	res := rc.Forward(ctx, addr, []byte(rawGet), false, true, false, sink)
	if res.Status != 200 || res.Err != nil {
		t.Fatalf("Forward: status %d, %v", res.Status, res.Err)
	}
	func() {
		defer func() {
			if v := recover(); v != "editor fault" {
				t.Errorf("recovered %v, want the editor's panic", v)
			}
		}()
		_, _, _ = res.RelayEdited(sink, nil, panickingEditor{})
	}()
	select {
	case <-closed:
	case <-time.After(rawWait):
		t.Fatal("the backend connection was left open")
	}
}

// TestStatusLinesAreTheServersStatusLines checks the status line of every code,
// those written once at start and the others, against the line the server writes:
// the code, and its standard reason or "status code N".
func TestStatusLinesAreTheServersStatusLines(t *testing.T) {
	for code := -1; code < 1000; code++ {
		reason := http.StatusText(code)
		if reason == "" {
			reason = "status code " + strconv.Itoa(code)
		}
		want := "HTTP/1.1 " + strconv.Itoa(code) + " " + reason + "\r\n"
		if got := string(appendStatusLine([]byte("x"), code)); got != "x"+want {
			t.Fatalf("appendStatusLine(%d) = %q, want %q", code, got, "x"+want)
		}
	}
}
