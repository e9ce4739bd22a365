package distribute

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestStreamsOfOtherInstancesAreSeparateReplicas(t *testing.T) {
	ts := startServer(t, Options{})
	ts.Publish(snapshotWith("/a", "10.0.0.1:80"))
	p1, p2 := edgeParams("gw-1"), edgeParams("gw-1")
	p1.Instance, p2.Instance = "i1", "i2"
	first := ts.openStream(t, p1, testToken)
	second := ts.openStream(t, p2, testToken)
	firstFrames, secondFrames := frames(first.Body), frames(second.Body)
	nextSnapshot(t, firstFrames)
	nextSnapshot(t, secondFrames)

	// Both stay open: each gets the next push, and acks on both are accepted.
	next := snapshotWith("/b", "10.0.0.1:80")
	ts.Publish(next)
	for _, ch := range []<-chan frame{firstFrames, secondFrames} {
		if got := nextSnapshot(t, ch); got.Version != next.Version {
			t.Errorf("got %s, want %s", got.Version, next.Version)
		}
	}
	for _, resp := range []*http.Response{first, second} {
		if code := ts.ack(t, testToken, Ack{Stream: resp.Header.Get(HeaderStream)}); code != http.StatusNoContent {
			t.Errorf("ack: %d, want 204", code)
		}
	}
	reps := ts.Replicas()
	if len(reps) != 2 || !reps[0].Connected || !reps[1].Connected || reps[0].Instance != "i1" || reps[1].Instance != "i2" {
		t.Errorf("replicas %+v, want i1 and i2 connected", reps)
	}

	// The same instance reconnecting replaces its own stream only.
	again := ts.openStream(t, p1, testToken)
	_, _ = io.Copy(io.Discard, first.Body)
	if code := ts.ack(t, testToken, Ack{Stream: first.Header.Get(HeaderStream)}); code != http.StatusNotFound {
		t.Errorf("ack on the replaced stream: %d, want 404", code)
	}
	for _, resp := range []*http.Response{again, second} {
		if code := ts.ack(t, testToken, Ack{Stream: resp.Header.Get(HeaderStream)}); code != http.StatusNoContent {
			t.Errorf("ack on an open stream: %d, want 204", code)
		}
	}
	if reps := ts.Replicas(); len(reps) != 2 {
		t.Errorf("replicas %+v, want two", reps)
	}
}

func TestStreamOfAnotherIdentityDoesNotReplaceAnOpenOne(t *testing.T) {
	ts := startServer(t, Options{Authenticator: tokensFor(map[string]string{"a": "alice", "b": "bob"})})
	withInstance := edgeParams("gw-1")
	withInstance.Instance = "i1"
	for _, p := range []StreamParams{withInstance, edgeParams("gw-1")} {
		owner := ts.openStream(t, p, "a")
		intruder := ts.openStream(t, p, "b")
		var body []byte
		if intruder.StatusCode != http.StatusOK { // an accepted stream would never end
			body, _ = io.ReadAll(intruder.Body)
		}
		if intruder.StatusCode != http.StatusConflict || !strings.Contains(string(body), "another identity") {
			t.Errorf("instance %q: second identity got %d %q, want 409 explaining the conflict", p.Instance, intruder.StatusCode, body)
		}
		if code := ts.ack(t, "a", Ack{Stream: owner.Header.Get(HeaderStream)}); code != http.StatusNoContent {
			t.Errorf("instance %q: ack on the first stream: %d, want 204 (still open)", p.Instance, code)
		}
	}
}

func TestStreamRefusesAnOverlongInstance(t *testing.T) {
	ts := startServer(t, Options{})
	p := edgeParams("gw-1")
	p.Instance = strings.Repeat("x", maxInstanceLength+1)
	resp := ts.openStream(t, p, testToken)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "instance") {
		t.Errorf("got %d %q, want 400 about the instance", resp.StatusCode, body)
	}
}
