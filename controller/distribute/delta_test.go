package distribute

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// largeSnapshot is a configuration of routes spread over two listeners of two virtual
// hosts each, and of backends with endpointsPer endpoints each.
func largeSnapshot(routes, backends, endpointsPer int, version string) *config.Snapshot {
	s := &config.Snapshot{SchemaVersion: config.SchemaVersion, Version: version, RoutesVersion: "r-" + version}
	for l := range 2 {
		lis := config.Listener{Name: fmt.Sprintf(":%d", 8080+l), Port: 8080 + l, Protocol: config.ProtocolHTTP}
		for v := range 2 {
			lis.VirtualHosts = append(lis.VirtualHosts, config.VirtualHost{Name: fmt.Sprintf("apps/gw-%d/http-%d", l, v)})
		}
		s.Listeners = append(s.Listeners, lis)
	}
	for i := range routes {
		vh := &s.Listeners[i%2].VirtualHosts[i/2%2]
		vh.Routes = append(vh.Routes, newRoute(fmt.Sprintf("apps/route-%05d", i), i%max(backends, 1)))
	}
	for i := range backends {
		b := config.Backend{Name: fmt.Sprintf("apps/svc-%05d:8080", i), Protocol: config.AppProtocolHTTP1}
		for e := range endpointsPer {
			b.Endpoints = append(b.Endpoints, config.Endpoint{Address: fmt.Sprintf("10.%d.%d.%d:8080", e, i/250, i%250),
				Ready: true, Serving: true, Zone: "zone-a", NodeName: fmt.Sprintf("node-%03d", i%100)})
		}
		s.Backends = append(s.Backends, b)
	}
	return s
}

func newRoute(name string, backend int) config.Route {
	return config.Route{
		Name:      name,
		Hostnames: []string{name[5:] + ".example.com"},
		Rules: []config.Rule{{
			Matches:  []config.Match{{Path: &config.PathMatch{Type: config.PathPrefix, Value: "/" + name}}},
			Backends: []config.BackendRef{{Backend: fmt.Sprintf("apps/svc-%05d:8080", backend), Weight: 1}},
		}},
	}
}

func linesOf(t testing.TB, snap *config.Snapshot) *SnapshotLines {
	t.Helper()
	l, err := encodeSnapshotLines(snap)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func jsonOf(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mutate applies one random change to s in place: a route or backend modified,
// added, removed or moved, or an endpoint changed.
func mutate(rng *rand.Rand, s *config.Snapshot, step int) string {
	lis := &s.Listeners[rng.IntN(len(s.Listeners))]
	vh := &lis.VirtualHosts[rng.IntN(len(lis.VirtualHosts))]
	switch op := rng.IntN(8); {
	case op == 0 && len(vh.Routes) > 0:
		r := &vh.Routes[rng.IntN(len(vh.Routes))]
		r.Rules[0].Matches = []config.Match{{Path: &config.PathMatch{Type: config.PathExact, Value: fmt.Sprintf("/step-%d", step)}}}
		return "modify route"
	case op == 1:
		vh.Routes = slices.Insert(vh.Routes, rng.IntN(len(vh.Routes)+1), newRoute(fmt.Sprintf("apps/new-%d", step), 0))
		return "add route"
	case op == 2 && len(vh.Routes) > 0:
		i := rng.IntN(len(vh.Routes))
		vh.Routes = slices.Delete(vh.Routes, i, i+1)
		return "remove route"
	case op == 3 && len(vh.Routes) > 1:
		i, j := rng.IntN(len(vh.Routes)), rng.IntN(len(vh.Routes))
		vh.Routes[i], vh.Routes[j] = vh.Routes[j], vh.Routes[i]
		return "reorder routes"
	case op == 4 && len(s.Backends) > 0:
		b := &s.Backends[rng.IntN(len(s.Backends))]
		b.Endpoints = append(slices.Clone(b.Endpoints), config.Endpoint{Address: fmt.Sprintf("10.99.0.%d:80", step%250), Ready: true})
		return "add endpoint"
	case op == 5 && len(s.Backends) > 0:
		i := rng.IntN(len(s.Backends))
		s.Backends = slices.Delete(s.Backends, i, i+1)
		return "remove backend"
	case op == 6:
		s.Backends = slices.Insert(s.Backends, rng.IntN(len(s.Backends)+1),
			config.Backend{Name: fmt.Sprintf("apps/added-%d:80", step), Protocol: config.AppProtocolHTTP1})
		return "add backend"
	default:
		lis.VirtualHosts = append(lis.VirtualHosts, config.VirtualHost{Name: fmt.Sprintf("vh-%d", step),
			Routes: []config.Route{newRoute(fmt.Sprintf("apps/vh-%d", step), 0)}})
		return "add virtual host"
	}
}

// A replica that applies every delta to the lines it holds rebuilds exactly the
// published snapshot, whatever the sequence of changes, and refuses a delta computed
// against other lines than its own.
func TestDeltasRebuildThePublishedSnapshotAcrossRandomChanges(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	snap := largeSnapshot(240, 120, 3, "v0")
	held := linesOf(t, snap)
	var older *SnapshotLines
	dec := NewDecoder(DefaultMaxFrameBytes)
	if _, err := dec.DecodeLines(held); err != nil {
		t.Fatal(err)
	}
	for step := 1; step <= 80; step++ {
		what := make([]string, 1+rng.IntN(3))
		for i := range what {
			what[i] = mutate(rng, snap, step)
		}
		snap.Version = fmtVersion(step)
		next := linesOf(t, snap)
		payload, err := EncodeDelta(held, next)
		mustNotErr(t, err)
		if older != nil && older.Digest() != held.Digest() && step%5 == 0 {
			if _, err := older.ApplyDelta(payload, DefaultMaxFrameBytes); !errors.Is(err, ErrDeltaBase) {
				t.Fatalf("step %d: a delta applied to other lines gave %v, want ErrDeltaBase", step, err)
			}
		}
		rebuilt, err := held.ApplyDelta(payload, DefaultMaxFrameBytes)
		if err != nil {
			t.Fatalf("step %d (%v): %v", step, what, err)
		}
		got, err := dec.DecodeLines(rebuilt)
		if err != nil {
			t.Fatalf("step %d (%v): %v", step, what, err)
		}
		if jsonOf(t, got) != jsonOf(t, snap) {
			t.Fatalf("step %d (%v): the rebuilt snapshot differs from the published one", step, what)
		}
		older, held = held, rebuilt
	}
}

// At 5,000 routes and 20,000 endpoints, one changed route or endpoint, or one route
// inserted before all others, costs a few kilobytes, not the whole snapshot.
func TestDeltaOfOneChangeIsSmall(t *testing.T) {
	base := largeSnapshot(5000, 2500, 8, "base")
	baseLines := linesOf(t, base)
	full, err := baseLines.Payload()
	mustNotErr(t, err)
	changes := map[string]func(*config.Snapshot){
		"route changed": func(s *config.Snapshot) {
			r := &s.Listeners[1].VirtualHosts[0].Routes[700]
			r.Rules = []config.Rule{{Matches: []config.Match{{Path: &config.PathMatch{Type: config.PathExact, Value: "/moved"}}}}}
		},
		"route inserted first": func(s *config.Snapshot) {
			vh := &s.Listeners[0].VirtualHosts[0]
			vh.Routes = slices.Insert(vh.Routes, 0, newRoute("apps/zz-first", 1))
		},
		"endpoint changed": func(s *config.Snapshot) {
			b := &s.Backends[1234]
			b.Endpoints = slices.Clone(b.Endpoints)
			b.Endpoints[3].Ready = false
		},
	}
	for name, change := range changes {
		next := largeSnapshot(5000, 2500, 8, "next")
		change(next)
		nextLines := linesOf(t, next)
		delta, err := EncodeDelta(baseLines, nextLines)
		mustNotErr(t, err)
		t.Logf("%s: full snapshot %d bytes, delta %d bytes", name, len(full), len(delta))
		if len(delta) > 4<<10 || len(delta)*10 > len(full) {
			t.Errorf("%s: delta is %d bytes, want at most 4 KiB and a tenth of the full %d", name, len(delta), len(full))
		}
		rebuilt, err := baseLines.ApplyDelta(delta, DefaultMaxFrameBytes)
		mustNotErr(t, err)
		if rebuilt.Digest() != nextLines.Digest() {
			t.Errorf("%s: rebuilt lines differ", name)
		}
	}
}

func TestApplyDeltaRejectsBadDeltas(t *testing.T) {
	a := linesOf(t, largeSnapshot(40, 20, 2, "a"))
	b := linesOf(t, largeSnapshot(41, 20, 2, "b"))
	good, err := EncodeDelta(a, b)
	mustNotErr(t, err)
	if _, err := (*SnapshotLines)(nil).ApplyDelta(good, DefaultMaxFrameBytes); !errors.Is(err, ErrDeltaBase) {
		t.Errorf("no base: %v, want ErrDeltaBase", err)
	}
	digest := fmt.Sprintf(`{"delta":{"base":%q,"digest":%q,"lines":%d}}`, a.Digest(), b.Digest(), b.Len())
	cases := map[string][]byte{
		"not gzip":          []byte("delta"),
		"empty":             gzipLines(""),
		"no header":         gzipLines(`{"same":[0,1]}`),
		"reference outside": gzipLines(digest, fmt.Sprintf(`{"same":[0,%d]}`, a.Len()+1)),
		"negative":          gzipLines(digest, `{"same":[-1,2]}`),
		"bad reference":     gzipLines(digest, `{"same":"x"}`),
		"wrong result":      gzipLines(digest, fmt.Sprintf(`{"same":[0,%d]}`, a.Len())),
		"too many lines":    gzipLines(fmt.Sprintf(`{"delta":{"base":%q,"digest":"x","lines":1}}`, a.Digest()), `{"same":[0,2]}`),
	}
	for name, payload := range cases {
		if got, err := a.ApplyDelta(payload, DefaultMaxFrameBytes); err == nil {
			t.Errorf("%s: rebuilt %d lines, want an error", name, got.Len())
		}
	}
	if _, err := a.ApplyDelta(good, 1<<10); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("over the size limit: %v, want ErrFrameTooLarge", err)
	}
}
