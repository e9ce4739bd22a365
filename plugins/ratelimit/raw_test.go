package ratelimit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
	"github.com/switchyard-dev/switchyard/plugins"
	"github.com/switchyard-dev/switchyard/plugins/internal/clientip"
)

// rawRequest is a request in its wire form, as the data plane shows it to a raw
// stage: fields keep their canonical names and their order.
type rawRequest struct {
	ctx    context.Context
	peer   string
	fields [][2]string
}

func (r *rawRequest) Context() context.Context { return r.ctx }
func (r *rawRequest) RemoteAddr() string       { return r.peer }
func (r *rawRequest) RemoteIP() string         { return clientip.FromPeer(r.peer) }

func (r *rawRequest) Fields() int { return len(r.fields) }

func (r *rawRequest) Field(i int) (name, value string) { return r.fields[i][0], r.fields[i][1] }

func (r *rawRequest) HeaderValue(canonicalName string) string {
	for _, f := range r.fields {
		if f[0] == canonicalName {
			return f[1]
		}
	}
	return ""
}

// step is one request of a differential test: its peer, its header fields (with
// canonical names, in order), its caller and when it arrived after the first.
type step struct {
	peer   string
	fields [][2]string
	caller reqctx.Caller
	at     time.Duration
}

// outcome is what a client and the data plane see of a request the filter handled:
// the status (204 when it was passed on), the response header, the body and the
// Info's flags.
type outcome struct {
	status int
	header http.Header
	body   string
	flags  reqctx.Flags
}

// rawStageOf provisions f over ctx as provision does, and returns its handler in
// raw form; next fails the test if a raw request ever reaches it.
func rawStageOf(t *testing.T, ctx plugins.Context, f *config.Filter) plugins.RawStage {
	t.Helper()
	mw, err := (plugin{}).Provision(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	stage, ok := mw(next).(plugins.RawStage)
	if !ok {
		t.Fatal("the handler is not a plugins.RawStage")
	}
	if reflect.ValueOf(stage.Next()).Pointer() != reflect.ValueOf(next).Pointer() {
		t.Fatal("Next is not the handler the middleware was given")
	}
	return stage
}

// serveHandler sends s through h's ServeHTTP, arriving at base+s.at.
func serveHandler(h http.Handler, s step, base time.Time) outcome {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = s.peer
	for _, f := range s.fields {
		r.Header.Add(f[0], f[1])
	}
	info := &reqctx.Info{Start: base.Add(s.at), Caller: s.caller}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, reqctx.With(r, info))
	return outcome{status: w.Code, header: w.Header(), body: w.Body.String(), flags: info.Flags}
}

// serveRaw sends s through stage's FilterRaw, arriving at base+s.at, and describes
// the outcome as an http.ResponseWriter would have recorded it: the fields, and for
// an answer the two fields Answer stands for besides its status and body.
func serveRaw(t *testing.T, stage plugins.RawStage, s step, base time.Time) outcome {
	t.Helper()
	req := &rawRequest{ctx: context.Background(), peer: s.peer, fields: s.fields}
	info := &reqctx.Info{Start: base.Add(s.at), Caller: s.caller}
	var fields plugins.ResponseFields
	answer := stage.FilterRaw(req, info, &fields)
	o := outcome{status: http.StatusNoContent, header: http.Header{}, flags: info.Flags}
	for name, value := range fields.All() {
		if o.header[name] != nil {
			t.Errorf("FilterRaw set %s twice", name)
		}
		o.header[name] = append(o.header[name], value)
	}
	if answer != nil {
		o.status, o.body = answer.Status, answer.Body
		o.header.Set("Content-Type", "text/plain; charset=utf-8")
		o.header.Set("X-Content-Type-Options", "nosniff")
	}
	return o
}

// differentialCases are filters of every key type, with the requests that tell
// their keys apart: a key that one form of a request got wrong would count it in
// another bucket than the other form, and the counts would part.
func differentialCases() []struct {
	name     string
	filter   *config.Filter
	variants []step
} {
	web := reqctx.Caller{Namespace: "shop", Name: "web-a", Workload: "web"}
	web2 := reqctx.Caller{Namespace: "shop", Name: "web-b", Workload: "web"}
	clientVariants := []step{
		{peer: "192.0.2.1:1000"}, {peer: "[::ffff:192.0.2.1]:1001"}, {peer: "192.0.2.2:1000"},
		{peer: "[2001:DB8::1]:80"}, {peer: "[2001:db8::1]:81"}, {peer: "[fe80::1%eth0]:80"},
		{peer: "127.0.0.1:9"}, {peer: "pipe"},
	}
	per10s := func(key config.RateLimitKey, n, burst int64) config.RateLimitRule {
		return config.RateLimitRule{Key: key, Requests: n, Per: config.Duration(10 * time.Second), Burst: burst}
	}
	return []struct {
		name     string
		filter   *config.Filter
		variants []step
	}{
		{"ClientIP", filter(config.RateLimitLocal, per10s(config.RateLimitKey{Type: config.KeyClientIP}, 3, 1)), clientVariants},
		{"Header", filter(config.RateLimitLocal, per10s(config.RateLimitKey{Type: config.KeyHeader, Name: "x-TENANT"}, 2, 0)), []step{
			{peer: "192.0.2.1:1"}, {peer: "192.0.2.2:1", fields: [][2]string{{"X-Tenant", "a"}}},
			{peer: "192.0.2.3:1", fields: [][2]string{{"Accept", "*/*"}, {"X-Tenant", "b"}, {"X-Tenant", "a"}}},
			{peer: "192.0.2.4:1", fields: [][2]string{{"X-Tenant", "b"}}},
			{peer: "192.0.2.5:1", fields: [][2]string{{"X-Tenant", ""}}},
			{peer: "192.0.2.6:1", fields: [][2]string{{"X-Tenants", "a"}}},
		}},
		{"Caller", filter(config.RateLimitLocal, per10s(config.RateLimitKey{Type: config.KeyCaller}, 2, 1)), []step{
			{peer: "10.244.1.2:1", caller: web}, {peer: "10.244.1.3:1", caller: web2},
			{peer: "10.244.1.4:1", caller: reqctx.Caller{Namespace: "billing", Name: "web-c", Workload: "web"}},
			{peer: "10.244.1.2:1"}, {peer: "[::ffff:10.244.1.2]:2"}, {peer: "192.0.2.9:1"},
			{peer: "192.0.2.9:1", caller: reqctx.Caller{Namespace: "shop", Workload: "web"}},
		}},
		{"Route", filter(config.RateLimitLocal, per10s(config.RateLimitKey{Type: config.KeyRoute}, 4, 2)), clientVariants[:3]},
		{"SeveralRules", filter(config.RateLimitLocal,
			per10s(config.RateLimitKey{Type: config.KeyClientIP}, 3, 0),
			per10s(config.RateLimitKey{Type: config.KeyHeader, Name: "X-Tenant"}, 4, 0),
			per10s(config.RateLimitKey{Type: config.KeyRoute}, 8, 1)), []step{
			{peer: "192.0.2.1:1"}, {peer: "192.0.2.1:2", fields: [][2]string{{"X-Tenant", "a"}}},
			{peer: "192.0.2.2:1", fields: [][2]string{{"X-Tenant", "a"}}}, {peer: "192.0.2.3:1", caller: web},
		}},
		// A global limit without Redis enforces the replica's share with a limiter
		// that reads the clock itself: the path of limiters that take the request's
		// context rather than its arrival.
		{"UntimedLimiter", filter(config.RateLimitGlobal,
			perMinute(config.RateLimitKey{Type: config.KeyClientIP}, 8),
			perMinute(config.RateLimitKey{Type: config.KeyHeader, Name: "x-tenant"}, 12)), []step{
			{peer: "192.0.2.1:1"}, {peer: "[::ffff:192.0.2.1]:2", fields: [][2]string{{"X-Tenant", "a"}}},
			{peer: "192.0.2.2:1", fields: [][2]string{{"X-Tenant", "a"}}}, {peer: "192.0.2.3:1"},
		}},
	}
}

// TestFilterRawDecidesAsServeHTTP drives one sequence of requests, for a filter of
// each key type, through two filters provisioned over one Store (so with the same
// limiters), taking turns at random between ServeHTTP of either and FilterRaw, and
// the same sequence through ServeHTTP of a reference filter with limiters of its
// own. Each request must get the same status, header fields, body and flags either
// way: the two forms must key, count and describe a request alike, in the same
// buckets.
func TestFilterRawDecidesAsServeHTTP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, tc := range differentialCases() {
		t.Run(tc.name, func(t *testing.T) {
			newCtx := func() plugins.Context {
				return plugins.Context{Store: plugins.NewStore(), TrustedProxies: trusted, Replicas: func() int { return 2 }}
			}
			reference := provision(t, newCtx(), tc.filter)
			shared := newCtx()
			handler := provision(t, shared, tc.filter)
			stage := rawStageOf(t, shared, tc.filter)
			rng := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
			base := time.Now()
			var at time.Duration
			// seen counts the outcomes of raw requests and of the others, admitted
			// and refused, so that the test fails if it did not try them all.
			var seen [2][2]int
			for i := range 300 {
				s := tc.variants[rng.IntN(len(tc.variants))]
				at += []time.Duration{0, 0, 0, time.Second, 3 * time.Second}[rng.IntN(5)]
				s.at = at
				want := serveHandler(reference, s, base)
				var got outcome
				raw := rng.IntN(2) == 0
				switch {
				case raw:
					got = serveRaw(t, stage, s, base)
				case rng.IntN(2) == 0:
					got = serveHandler(handler, s, base)
				default:
					got = serveHandler(stage, s, base)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("request %d %+v (raw %v):\n got %d %v %q flags %v\nwant %d %v %q flags %v",
						i, s, raw, got.status, got.header, got.body, got.flags, want.status, want.header, want.body, want.flags)
				}
				seen[b2i(raw)][b2i(want.status == http.StatusTooManyRequests)]++
			}
			if seen[0][0] == 0 || seen[0][1] == 0 || seen[1][0] == 0 || seen[1][1] == 0 {
				t.Fatalf("outcomes [handler, raw][admitted, refused] %v: the sequence did not try every kind", seen)
			}
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestFilterRawDoesNotAllocate checks that FilterRaw costs no allocation for a
// limit keyed by a canonical client address, kept locally, either way it decides:
// it runs on every request of the raw path, which exists to spare allocations.
func TestFilterRawDoesNotAllocate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		requests int64
		want     *plugins.Answer
	}{
		{"admitted", 1 << 40, nil},
		{"refused", 1, &refusal},
	} {
		stage := rawStageOf(t, plugins.Context{}, filter(config.RateLimitLocal, config.RateLimitRule{
			Key: config.RateLimitKey{Type: config.KeyClientIP}, Requests: tc.requests, Per: config.Duration(time.Hour)}))
		req := &rawRequest{ctx: context.Background(), peer: "192.0.2.1:4000"}
		info := &reqctx.Info{Start: time.Now()}
		var fields plugins.ResponseFields
		// The first request fills the fields' storage, and takes the one token of
		// the refusing limit.
		stage.FilterRaw(req, info, &fields)
		if n := testing.AllocsPerRun(100, func() {
			fields.Reset()
			if stage.FilterRaw(req, info, &fields) != tc.want {
				t.Fatalf("%s: another answer", tc.name)
			}
		}); n != 0 {
			t.Errorf("%s: FilterRaw allocated %v times", tc.name, n)
		}
	}
}

// BenchmarkFilterRaw is FilterRaw's cost for the request of BenchmarkHandler.
func BenchmarkFilterRaw(b *testing.B) {
	f := filter(config.RateLimitLocal, config.RateLimitRule{Key: config.RateLimitKey{Type: config.KeyClientIP},
		Requests: 1 << 40, Per: config.Duration(time.Second)})
	mw, err := (plugin{}).Provision(plugins.Context{}, f)
	if err != nil {
		b.Fatal(err)
	}
	stage := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).(plugins.RawStage)
	req := &rawRequest{ctx: context.Background(), peer: "192.0.2.1:4000"}
	info := &reqctx.Info{Start: time.Now()}
	var fields plugins.ResponseFields
	b.ReportAllocs()
	for b.Loop() {
		fields.Reset()
		stage.FilterRaw(req, info, &fields)
	}
	if fields.Len() == 0 {
		b.Fatal("no fields")
	}
}

// TestFilterRawLimitFollowsTheFleetSize checks that a raw response's RateLimit-Limit
// follows the capacity of the replica share as the fleet grows and shrinks: the
// field's line is rendered once per capacity, and a line kept from an earlier one
// would describe a bucket the replica no longer has.
func TestFilterRawLimitFollowsTheFleetSize(t *testing.T) {
	var replicas atomic.Int64
	replicas.Store(1)
	ctx := plugins.Context{Store: plugins.NewStore(), Replicas: func() int { return int(replicas.Load()) }}
	stage := rawStageOf(t, ctx, filter(config.RateLimitGlobal, perMinute(config.RateLimitKey{Type: config.KeyClientIP}, 1200)))
	for i, fleet := range []int64{1, 2, 4, 2, 1, 3} {
		replicas.Store(fleet)
		got := serveRaw(t, stage, step{peer: fmt.Sprintf("192.0.2.%d:4000", i+1)}, time.Now())
		if want := strconv.FormatInt(1200/fleet, 10); got.header.Get("RateLimit-Limit") != want {
			t.Fatalf("fleet of %d: RateLimit-Limit %q, want %q", fleet, got.header.Get("RateLimit-Limit"), want)
		}
	}
}

// TestFilterRawResetAroundTheRenderedLines checks RateLimit-Reset on the raw path
// against the handler path while the bucket empties a token a second: the seconds
// below ten come from lines rendered at start, the others are written per response.
func TestFilterRawResetAroundTheRenderedLines(t *testing.T) {
	f := filter(config.RateLimitLocal, config.RateLimitRule{
		Key: config.RateLimitKey{Type: config.KeyClientIP}, Requests: 1, Per: config.Duration(time.Second), Burst: 14})
	reference := provision(t, plugins.Context{Store: plugins.NewStore()}, f)
	stage := rawStageOf(t, plugins.Context{Store: plugins.NewStore()}, f)
	base := time.Now()
	resets := map[string]bool{}
	for i := range 16 {
		s := step{peer: "192.0.2.9:4000"}
		want, got := serveHandler(reference, s, base), serveRaw(t, stage, s, base)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("request %d: raw path\n%d %v\nhandler path\n%d %v", i, got.status, got.header, want.status, want.header)
		}
		resets[got.header.Get("RateLimit-Reset")] = true
	}
	for _, r := range []string{"9", "10", "14"} {
		if !resets[r] {
			t.Fatalf("RateLimit-Reset never read %s: %v", r, resets)
		}
	}
}
