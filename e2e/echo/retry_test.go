package echo

import (
	"fmt"
	"net/http"
	"testing"
)

func TestRetrySimulatorFailsThenSucceeds(t *testing.T) {
	addr, _ := startEcho(t)
	url := func(key string, code, after int) string {
		return fmt.Sprintf("http://%s/retry/x?responseCode=%d&succeedAfter=%d&uuid=%s", addr, code, after, key)
	}
	want := []int{503, 503, 200, 200}
	for i, code := range want {
		resp, body := get(t, testClient, url("a", 503, 2), nil)
		if resp.StatusCode != code {
			t.Fatalf("request %d answered %d, want %d", i+1, resp.StatusCode, code)
		}
		if code == 200 && decodeReply(t, body).Pod != "pod-1" {
			t.Errorf("request %d: the success is not the echo reply: %s", i+1, body)
		}
	}
	// Keys are independent: a fresh key starts failing again.
	if resp, _ := get(t, testClient, url("b", 500, 1), nil); resp.StatusCode != 500 {
		t.Errorf("a new key answered %d, want 500", resp.StatusCode)
	}
	if resp, _ := get(t, testClient, url("c", 500, 0), nil); resp.StatusCode != 200 {
		t.Errorf("succeedAfter=0 answered %d, want 200", resp.StatusCode)
	}
}

func TestRetrySimulatorRejectsBadQueries(t *testing.T) {
	addr, _ := startEcho(t)
	for _, query := range []string{
		"responseCode=abc&succeedAfter=1&uuid=k",
		"responseCode=700&succeedAfter=1&uuid=k",
		"responseCode=500&succeedAfter=-1&uuid=k",
		"responseCode=500&succeedAfter=1",
	} {
		resp, _ := get(t, testClient, "http://"+addr+"/retry?"+query, nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s answered %d, want 400", query, resp.StatusCode)
		}
	}
}

func TestRetrySimulatorForgetsOldestKeys(t *testing.T) {
	s := newRetrySimulator()
	for i := 0; i < maxRetryKeys+10; i++ {
		s.count(fmt.Sprint(i))
	}
	if len(s.seen) != maxRetryKeys || len(s.order) != maxRetryKeys {
		t.Fatalf("remembers %d keys (%d in order), want %d", len(s.seen), len(s.order), maxRetryKeys)
	}
	if _, ok := s.seen["0"]; ok {
		t.Error("the oldest key was kept")
	}
	if s.count(fmt.Sprint(maxRetryKeys+9)) != 2 {
		t.Error("the newest key lost its count")
	}
}
