package distribute

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// syntheticSnapshot has n routes spread over two listeners (the second with two
// virtual hosts), each route with one rule and its own backend of three endpoints.
func syntheticSnapshot(n int) *config.Snapshot {
	s := &config.Snapshot{
		SchemaVersion: config.SchemaVersion,
		Version:       fmt.Sprintf("synthetic-%d", n),
		RoutesVersion: "routes",
		Listeners: []config.Listener{
			{Name: ":8080", Port: 8080, Protocol: config.ProtocolHTTP, VirtualHosts: []config.VirtualHost{{Name: "apps/gw/http"}}},
			{Name: ":8443", Port: 8443, Protocol: config.ProtocolHTTPS, VirtualHosts: []config.VirtualHost{
				{Name: "apps/gw/a", Hostname: "a.example.com", TLS: &config.TLS{Certificates: []config.Certificate{{Name: "apps/a", CertPEM: "cert", KeyPEM: "key"}}}},
				{Name: "apps/gw/b", Hostname: "b.example.com"},
			}},
		},
	}
	for i := range n {
		svc := fmt.Sprintf("apps/svc-%05d:8080", i)
		vh := &s.Listeners[i%2].VirtualHosts[0]
		if i%4 == 3 {
			vh = &s.Listeners[1].VirtualHosts[1]
		}
		vh.Routes = append(vh.Routes, config.Route{
			Name:      fmt.Sprintf("apps/route-%05d", i),
			Hostnames: []string{fmt.Sprintf("svc-%05d.example.com", i)},
			Rules: []config.Rule{{
				Matches:  []config.Match{{Path: &config.PathMatch{Type: config.PathPrefix, Value: fmt.Sprintf("/api/%05d", i)}}},
				Backends: []config.BackendRef{{Backend: svc, Weight: 1}},
				Filters:  []config.Filter{{Type: config.FilterURLRewrite, URLRewrite: &config.URLRewrite{}}},
			}},
		})
		b := config.Backend{Name: svc, Protocol: config.AppProtocolHTTP1}
		for e := range 3 {
			b.Endpoints = append(b.Endpoints, config.Endpoint{
				Address: fmt.Sprintf("10.%d.%d.%d:8080", e, i/250, i%250), Ready: true, Serving: true, Zone: "zone-a",
			})
		}
		s.Backends = append(s.Backends, b)
	}
	return s
}

// jsonRoundTrip is what plain JSON makes of s: the reference a decoded snapshot must
// equal.
func jsonRoundTrip(t *testing.T, s *config.Snapshot) *config.Snapshot {
	t.Helper()
	b, err := json.Marshal(s)
	mustNotErr(t, err)
	var out config.Snapshot
	mustNotErr(t, json.Unmarshal(b, &out))
	return &out
}

func TestCodecRoundTripsLargeSnapshots(t *testing.T) {
	for _, n := range []int{0, 1, partItems, 3*partItems + 7} {
		snap := syntheticSnapshot(n)
		payload, err := EncodeSnapshot(snap)
		mustNotErr(t, err)
		got, err := DecodeSnapshot(payload, DefaultMaxFrameBytes)
		mustNotErr(t, err)
		if want := jsonRoundTrip(t, snap); !reflect.DeepEqual(got, want) {
			t.Errorf("%d routes: decoded snapshot differs from the JSON round trip", n)
		}
		// An empty URLRewrite means "rewrite nothing", not "no settings".
		if n > 0 && got.Listeners[0].VirtualHosts[0].Routes[0].Rules[0].Filters[0].URLRewrite == nil {
			t.Errorf("%d routes: an empty filter setting was lost", n)
		}
	}
}

func TestEncodeSnapshotLeavesItsInputAlone(t *testing.T) {
	snap := syntheticSnapshot(600)
	before := jsonRoundTrip(t, snap)
	_, err := EncodeSnapshot(snap)
	mustNotErr(t, err)
	if !reflect.DeepEqual(jsonRoundTrip(t, snap), before) {
		t.Error("EncodeSnapshot changed the snapshot")
	}
}

// gzipLines compresses JSON lines into a payload, for hand-made bad input.
func gzipLines(lines ...string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte(strings.Join(lines, "\n")))
	_ = zw.Close()
	return buf.Bytes()
}

func TestDecodeSnapshotRejectsMalformedParts(t *testing.T) {
	head := `{"head":{"schemaVersion":2,"version":"v","listeners":[{"name":":80","port":80,"protocol":"HTTP","virtualHosts":[{"name":"vh"}]}]}}`
	route := `{"listener":%d,"virtualHost":%d,"routes":[{"name":"r","rules":[]}]}`
	cases := map[string][]byte{
		"empty":             gzipLines(""),
		"no head":           gzipLines(fmt.Sprintf(route, 0, 0)),
		"two heads":         gzipLines(head, head),
		"listener missing":  gzipLines(head, fmt.Sprintf(route, 1, 0)),
		"vhost missing":     gzipLines(head, fmt.Sprintf(route, 0, 5)),
		"negative index":    gzipLines(head, fmt.Sprintf(route, -1, 0)),
		"bad JSON in part":  gzipLines(head, `{"routes":[`),
		"over decompressed": gzipLines(head, strings.Repeat(" ", 1<<20)),
	}
	for name, payload := range cases {
		if _, err := DecodeSnapshot(payload, 1<<19); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	ok, err := DecodeSnapshot(gzipLines(head, fmt.Sprintf(route, 0, 0)), DefaultMaxFrameBytes)
	if err != nil || len(ok.Listeners[0].VirtualHosts[0].Routes) != 1 {
		t.Errorf("well-formed parts: %v", err)
	}
}

func BenchmarkEncodeSnapshot5000Routes(b *testing.B) {
	snap := syntheticSnapshot(5000)
	for b.Loop() {
		if _, err := EncodeSnapshot(snap); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSnapshot5000Routes(b *testing.B) {
	payload, err := EncodeSnapshot(syntheticSnapshot(5000))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if _, err := DecodeSnapshot(payload, DefaultMaxFrameBytes); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDecoderReusesUnchangedPartsWithoutSharingLists(t *testing.T) {
	before := syntheticSnapshot(3 * partItems)
	after := syntheticSnapshot(3 * partItems)
	after.Version = "changed"
	changed := &after.Listeners[0].VirtualHosts[0].Routes[partItems+10]
	changed.Rules = []config.Rule{{Backends: []config.BackendRef{{Backend: "apps/svc-00000:8080", Weight: 2}}}}

	d := NewDecoder(DefaultMaxFrameBytes)
	p1, err := EncodeSnapshot(before)
	mustNotErr(t, err)
	first, err := d.Decode(p1)
	mustNotErr(t, err)
	p2, err := EncodeSnapshot(after)
	mustNotErr(t, err)
	second, err := d.Decode(p2)
	mustNotErr(t, err)

	if !reflect.DeepEqual(second, jsonRoundTrip(t, after)) {
		t.Error("the second snapshot differs from its JSON round trip")
	}
	if !reflect.DeepEqual(first, jsonRoundTrip(t, before)) {
		t.Error("decoding the second snapshot changed the first")
	}
	r1 := first.Listeners[0].VirtualHosts[0].Routes
	r2 := second.Listeners[0].VirtualHosts[0].Routes
	if &r1[0].Rules[0] != &r2[0].Rules[0] {
		t.Error("an unchanged part was decoded again")
	}
	if &r1[0] == &r2[0] {
		t.Error("two snapshots share a route list")
	}
}

// BenchmarkDecoderOneRouteChanged5000Routes decodes a stream of snapshots that each
// differ from the one before in one route, as a replica's Decoder does.
func BenchmarkDecoderOneRouteChanged5000Routes(b *testing.B) {
	base := syntheticSnapshot(5000)
	var payloads [][]byte
	for i := range 2 {
		s := *base
		s.Listeners = slices.Clone(base.Listeners)
		s.Listeners[0].VirtualHosts = slices.Clone(base.Listeners[0].VirtualHosts)
		routes := slices.Clone(s.Listeners[0].VirtualHosts[0].Routes)
		routes[i*partItems].Name = fmt.Sprintf("changed-%d", i)
		s.Listeners[0].VirtualHosts[0].Routes = routes
		p, err := EncodeSnapshot(&s)
		if err != nil {
			b.Fatal(err)
		}
		payloads = append(payloads, p)
	}
	d := NewDecoder(DefaultMaxFrameBytes)
	i := 0
	for b.Loop() {
		if _, err := d.Decode(payloads[i%2]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
