package ratelimit

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchyard-dev/switchyard/gateway/config"
	rl "github.com/switchyard-dev/switchyard/gateway/ratelimit"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
	"github.com/switchyard-dev/switchyard/internal/testredis"
	"github.com/switchyard-dev/switchyard/plugins"
)

func filter(mode config.RateLimitMode, rules ...config.RateLimitRule) *config.Filter {
	return &config.Filter{Type: config.FilterRateLimit, RateLimit: &config.RateLimit{ID: "ns/policy", Mode: mode, Rules: rules}}
}

func perMinute(key config.RateLimitKey, n int64) config.RateLimitRule {
	return config.RateLimitRule{Key: key, Requests: n, Per: config.Duration(time.Minute)}
}

func provision(t *testing.T, ctx plugins.Context, f *config.Filter) http.Handler {
	t.Helper()
	if err := (plugin{}).Validate(f); err != nil {
		t.Fatal(err)
	}
	mw, err := (plugin{}).Provision(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	return mw(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
}

func send(h http.Handler, peer string, headers map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = peer
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestLocalLimitPerClientWithHeaders(t *testing.T) {
	h := provision(t, plugins.Context{}, filter(config.RateLimitLocal, perMinute(config.RateLimitKey{Type: config.KeyClientIP}, 3)))
	for i := range 3 {
		w := send(h, "192.0.2.1:1000", nil)
		if w.Code != http.StatusNoContent || w.Header().Get("RateLimit-Remaining") != strconv.Itoa(2-i) || w.Header().Get("RateLimit-Limit") != "3" {
			t.Fatalf("request %d: %d %v", i+1, w.Code, w.Header())
		}
	}
	w := send(h, "192.0.2.1:1001", nil)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "20" {
		t.Fatalf("4th request: %d, Retry-After %q; want 429 after 20s (3 per minute)", w.Code, w.Header().Get("Retry-After"))
	}
	if w := send(h, "192.0.2.2:1000", nil); w.Code != http.StatusNoContent {
		t.Fatalf("another client was limited: %d", w.Code)
	}
}

func TestHeaderKeyCannotBeDodged(t *testing.T) {
	h := provision(t, plugins.Context{}, filter(config.RateLimitLocal, perMinute(config.RateLimitKey{Type: config.KeyHeader, Name: "X-Tenant"}, 2)))
	for range 2 {
		send(h, "192.0.2.1:1", nil)
	}
	if w := send(h, "192.0.2.9:1", nil); w.Code != http.StatusTooManyRequests {
		t.Fatalf("a request without the header got %d; requests without it share one bucket", w.Code)
	}
	if w := send(h, "192.0.2.1:1", map[string]string{"X-Tenant": "a"}); w.Code != http.StatusNoContent {
		t.Fatalf("tenant a: %d", w.Code)
	}
}

func TestEveryRuleMustAdmit(t *testing.T) {
	h := provision(t, plugins.Context{}, filter(config.RateLimitLocal,
		perMinute(config.RateLimitKey{Type: config.KeyClientIP}, 10),
		perMinute(config.RateLimitKey{Type: config.KeyRoute}, 2)))
	send(h, "192.0.2.1:1", nil)
	send(h, "192.0.2.2:1", nil)
	if w := send(h, "192.0.2.3:1", nil); w.Code != http.StatusTooManyRequests {
		t.Fatalf("the route-wide rule did not apply: %d", w.Code)
	}
}

func TestBucketsSurviveReprovisioning(t *testing.T) {
	store := plugins.NewStore()
	ctx := plugins.Context{Store: store}
	f := filter(config.RateLimitLocal, perMinute(config.RateLimitKey{Type: config.KeyRoute}, 2))
	store.Begin()
	h := provision(t, ctx, f)
	store.Commit()
	send(h, "192.0.2.1:1", nil)
	send(h, "192.0.2.1:1", nil)
	store.Begin()
	h2 := provision(t, ctx, f)
	store.Commit()
	if w := send(h2, "192.0.2.1:1", nil); w.Code != http.StatusTooManyRequests {
		t.Fatalf("a new configuration refilled the bucket: %d", w.Code)
	}
}

func TestGlobalSharedByReplicasAndFailsOpenOrClosed(t *testing.T) {
	srv := testredis.Start(t)
	replica := func() http.Handler {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		t.Cleanup(func() { c.Close() })
		return provision(t, plugins.Context{Redis: c}, filter(config.RateLimitGlobal, perMinute(config.RateLimitKey{Type: config.KeyRoute}, 4)))
	}
	a, b := replica(), replica()
	admitted := 0
	for i := range 10 {
		h := a
		if i%2 == 1 {
			h = b
		}
		if send(h, "192.0.2.1:1", nil).Code == http.StatusNoContent {
			admitted++
		}
	}
	if admitted != 4 {
		t.Fatalf("two replicas admitted %d; want the shared 4", admitted)
	}
	srv.Stop()
	deny := filter(config.RateLimitGlobal, perMinute(config.RateLimitKey{Type: config.KeyRoute}, 4))
	deny.RateLimit.FailureMode = "Deny"
	deny.RateLimit.ID = "ns/deny"
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	h := provision(t, plugins.Context{Redis: c}, deny)
	if w := send(h, "192.0.2.1:1", nil); w.Code != http.StatusTooManyRequests {
		t.Fatalf("Deny with Redis down: %d; want 429, never a 5xx", w.Code)
	}
}

func TestValidateRejectsBadSettings(t *testing.T) {
	bad := []*config.Filter{
		{Type: config.FilterRateLimit},
		filter("Sometimes", perMinute(config.RateLimitKey{Type: config.KeyRoute}, 1)),
		filter(config.RateLimitLocal),
		filter(config.RateLimitLocal, perMinute(config.RateLimitKey{Type: config.KeyHeader, Name: "bad header"}, 1)),
		filter(config.RateLimitLocal, perMinute(config.RateLimitKey{Type: "Cookie"}, 1)),
		filter(config.RateLimitLocal, config.RateLimitRule{Key: config.RateLimitKey{Type: config.KeyRoute}, Requests: 1}),
	}
	for i, f := range bad {
		if err := (plugin{}).Validate(f); err == nil {
			t.Errorf("case %d validated", i)
		}
	}
}

func TestGlobalWithoutRedisEnforcesTheReplicaShare(t *testing.T) {
	h := provision(t, plugins.Context{Replicas: func() int { return 2 }},
		filter(config.RateLimitGlobal, perMinute(config.RateLimitKey{Type: config.KeyRoute}, 4)))
	admitted := 0
	for range 5 {
		if send(h, "192.0.2.1:1", nil).Code == http.StatusNoContent {
			admitted++
		}
	}
	if admitted != 2 {
		t.Fatalf("admitted %d without Redis; want this replica's share of 2", admitted)
	}
}

// TestGlobalWithoutRedisFollowsTheFleetSize checks that the replica share of a
// global limit without Redis follows the fleet size as the replica learns it, which
// is after its first configuration was applied: a share fixed when the filter was
// provisioned would stay the whole limit on every replica.
func TestGlobalWithoutRedisFollowsTheFleetSize(t *testing.T) {
	var replicas atomic.Int64
	replicas.Store(1)
	h := provision(t, plugins.Context{Replicas: func() int { return int(replicas.Load()) }},
		filter(config.RateLimitGlobal, perMinute(config.RateLimitKey{Type: config.KeyRoute}, 4)))
	replicas.Store(2)
	admitted := 0
	for range 5 {
		if send(h, "192.0.2.1:1", nil).Code == http.StatusNoContent {
			admitted++
		}
	}
	if admitted != 2 {
		t.Fatalf("admitted %d once the fleet had 2 replicas; want this replica's share of 2", admitted)
	}
}

func TestDecisionsAreFlaggedForMetrics(t *testing.T) {
	h := provision(t, plugins.Context{}, filter(config.RateLimitLocal, perMinute(config.RateLimitKey{Type: config.KeyRoute}, 1)))
	for _, want := range []reqctx.Flags{reqctx.FlagRateLimitPassed, reqctx.FlagRateLimited} {
		info := &reqctx.Info{}
		r := reqctx.With(httptest.NewRequest(http.MethodGet, "/", nil), info)
		h.ServeHTTP(httptest.NewRecorder(), r)
		if info.Flags != want {
			t.Fatalf("flags %#x, want %#x", uint32(info.Flags), uint32(want))
		}
	}
}

func TestCallerKeyCountsPerWorkload(t *testing.T) {
	h := provision(t, plugins.Context{}, filter(config.RateLimitLocal, perMinute(config.RateLimitKey{Type: config.KeyCaller}, 2)))
	sendAs := func(peer string, caller reqctx.Caller) int {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = peer
		w := httptest.NewRecorder()
		h.ServeHTTP(w, reqctx.With(r, &reqctx.Info{Caller: caller}))
		return w.Code
	}
	web := func(pod string) reqctx.Caller {
		return reqctx.Caller{Namespace: "shop", Name: pod, Workload: "web"}
	}
	// Two Pods of one workload, on two addresses, share the workload's bucket.
	if sendAs("10.244.1.2:1", web("web-a")) != http.StatusNoContent || sendAs("10.244.1.3:1", web("web-b")) != http.StatusNoContent {
		t.Fatal("the first two requests were limited")
	}
	if code := sendAs("10.244.1.3:2", web("web-b")); code != http.StatusTooManyRequests {
		t.Fatalf("the workload's third request got %d, want 429", code)
	}
	if code := sendAs("10.244.1.4:1", reqctx.Caller{Namespace: "billing", Name: "web-c", Workload: "web"}); code != http.StatusNoContent {
		t.Fatalf("the same workload name in another namespace was limited: %d", code)
	}
	// Without a caller (north-south), requests count per client address.
	for range 2 {
		sendAs("192.0.2.1:1", reqctx.Caller{})
	}
	if code := sendAs("192.0.2.1:2", reqctx.Caller{}); code != http.StatusTooManyRequests {
		t.Fatalf("a client without a caller was not limited by address: %d", code)
	}
}

// TestLocalBucketsCountAtArrival checks that a local bucket counts a request at its
// Info's Start: a request that arrived a period after the first finds the bucket
// refilled, whatever the clock says when the filter runs.
func TestLocalBucketsCountAtArrival(t *testing.T) {
	h := provision(t, plugins.Context{}, filter(config.RateLimitLocal, perMinute(config.RateLimitKey{Type: config.KeyRoute}, 1)))
	sendAt := func(start time.Time) int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, reqctx.With(httptest.NewRequest(http.MethodGet, "/", nil), &reqctx.Info{Start: start}))
		return w.Code
	}
	// Far in the future, so that no reading of the clock could refill the bucket.
	arrived := time.Now().Add(24 * time.Hour)
	if code := sendAt(arrived); code != http.StatusNoContent {
		t.Fatalf("the first request got %d", code)
	}
	if code := sendAt(arrived.Add(time.Second)); code != http.StatusTooManyRequests {
		t.Fatalf("a second request within the minute got %d, want 429", code)
	}
	if code := sendAt(arrived.Add(time.Minute)); code != http.StatusNoContent {
		t.Fatalf("a request arriving a minute after the first got %d; its bucket should have refilled", code)
	}
}

// TestHeadersDescribeTheDecision checks the RateLimit-* values for decisions of every
// size, and that each header's values are its own.
func TestHeadersDescribeTheDecision(t *testing.T) {
	for _, d := range []rl.Decision{
		{Limit: 1},
		{Limit: 100, Remaining: 42, Reset: 1500 * time.Millisecond},
		{Limit: 5, Remaining: -3, Reset: time.Millisecond},
		{Limit: math.MaxInt64, Remaining: math.MaxInt64 - 1, Reset: time.Duration(math.MaxInt64)},
	} {
		h := http.Header{}
		writeHeaders(h, d)
		want := map[string]string{
			"RateLimit-Limit":     strconv.FormatInt(d.Limit, 10),
			"RateLimit-Remaining": strconv.FormatInt(max(d.Remaining, 0), 10),
			"RateLimit-Reset":     strconv.Itoa(ceilSeconds(d.Reset, 0)),
		}
		for name, v := range want {
			if got := h.Values(name); len(got) != 1 || got[0] != v {
				t.Errorf("%+v: %s = %q, want %q", d, name, got, v)
			}
		}
		h.Add("RateLimit-Limit", "extra")
		if got := h.Get("RateLimit-Remaining"); got != want["RateLimit-Remaining"] {
			t.Errorf("adding a Limit value changed Remaining to %q", got)
		}
	}
}

// BenchmarkHandler is the filter's cost for a request of a limit keyed by client
// address that never refuses, as the typical policy set has it.
func BenchmarkHandler(b *testing.B) {
	f := filter(config.RateLimitLocal, config.RateLimitRule{Key: config.RateLimitKey{Type: config.KeyClientIP},
		Requests: 1 << 40, Per: config.Duration(time.Second)})
	mw, err := (plugin{}).Provision(plugins.Context{}, f)
	if err != nil {
		b.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	info := &reqctx.Info{Start: time.Now()}
	r := reqctx.With(httptest.NewRequest(http.MethodGet, "/", nil), info)
	r.RemoteAddr = "192.0.2.1:4000"
	w := &headerWriter{header: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.header)
		h.ServeHTTP(w, r)
	}
	if w.header.Get("RateLimit-Limit") == "" {
		b.Fatal("no RateLimit-Limit header")
	}
}

// headerWriter is a ResponseWriter that keeps the header only.
type headerWriter struct{ header http.Header }

func (w *headerWriter) Header() http.Header         { return w.header }
func (w *headerWriter) WriteHeader(int)             {}
func (w *headerWriter) Write(p []byte) (int, error) { return len(p), nil }
