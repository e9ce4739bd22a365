package server

import (
	"net/http"
	"testing"
)

// TestCleartextListenerTakesH2CPriorKnowledge: a client that speaks HTTP/2 from the
// first byte (h2c prior knowledge) is served over HTTP/2, and HTTP/1.1 clients on the
// same socket still get HTTP/1.1.
func TestCleartextListenerTakesH2CPriorKnowledge(t *testing.T) {
	m := newTestManager(t, DefaultLimits())
	h := &recordingHandler{}
	addr := serveOne(t, m, Spec{Port: 0, Handler: h})

	h2c := &http.Transport{Protocols: new(http.Protocols)}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	defer h2c.CloseIdleConnections()
	for _, c := range []struct {
		transport *http.Transport
		wantMajor int
	}{{h2c, 2}, {&http.Transport{}, 1}} {
		resp, err := (&http.Client{Transport: c.transport, Timeout: testTimeout}).Get("http://" + addr + "/x")
		if err != nil {
			t.Fatalf("HTTP/%d client: %v", c.wantMajor, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != c.wantMajor {
			t.Errorf("HTTP/%d client: status %d over %s", c.wantMajor, resp.StatusCode, resp.Proto)
		}
	}
}
