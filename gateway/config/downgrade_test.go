package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestDowngradeToSchema1ClearsRoutesVersion(t *testing.T) {
	snap := validSnapshot()
	snap.RoutesVersion = "routes-hash"
	before := *snap

	got, err := Downgrade(snap, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.SchemaVersion != 1 || got.RoutesVersion != "" {
		t.Errorf("got schema %d routesVersion %q, want 1 and empty", got.SchemaVersion, got.RoutesVersion)
	}
	if got.Version != snap.Version {
		t.Errorf("Version changed from %q to %q", snap.Version, got.Version)
	}
	if !reflect.DeepEqual(got.Listeners, snap.Listeners) || !reflect.DeepEqual(got.Backends, snap.Backends) {
		t.Error("listeners or backends changed")
	}
	if !reflect.DeepEqual(*snap, before) {
		t.Error("Downgrade modified its input")
	}
	// This build validates only the two newest schema versions; the shape is
	// checked under the oldest of them.
	shape := *got
	shape.SchemaVersion = SchemaVersion - 1
	if err := shape.Validate(); err != nil {
		t.Errorf("downgraded snapshot does not validate: %v", err)
	}
}

func TestDowngradeToSameVersionReturnsInput(t *testing.T) {
	snap := validSnapshot()
	got, err := Downgrade(snap, SchemaVersion)
	if err != nil {
		t.Fatal(err)
	}
	if got != snap {
		t.Error("want the input back unchanged")
	}
}

func TestDowngradeRejectsImpossibleConversions(t *testing.T) {
	newer := validSnapshot()
	newer.SchemaVersion = SchemaVersion + 1
	cases := []struct {
		name string
		snap *Snapshot
		to   int
		want string
	}{
		{"nil", nil, 1, "no snapshot"},
		{"upgrade", func() *Snapshot { s := validSnapshot(); s.SchemaVersion = 1; return s }(), 2, "cannot convert schema 1 up to 2"},
		{"below first", validSnapshot(), 0, "schema 0 does not exist"},
		{"from the future", newer, SchemaVersion, "newer than this build"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Downgrade(c.snap, c.to)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// Every schema version after the first needs a step down, or a controller would fail
// to serve replicas one version behind after the next schema bump.
func TestEverySchemaVersionHasADowngradeStep(t *testing.T) {
	for v := 2; v <= SchemaVersion; v++ {
		if _, ok := downgradeSteps[v]; !ok {
			t.Errorf("no downgrade step from schema %d", v)
		}
	}
	for v := range downgradeSteps {
		if v < 2 || v > SchemaVersion {
			t.Errorf("downgrade step from schema %d does not exist in this build", v)
		}
	}
}

func TestDowngradeDropsRateLimitFilters(t *testing.T) {
	s := validSnapshot()
	s.SchemaVersion = 3
	rule := &s.Listeners[0].VirtualHosts[0].Routes[0].Rules[0]
	headers := Filter{Type: FilterRequestHeaderModifier, RequestHeaderModifier: &HeaderModifier{Remove: []string{"x"}}}
	limit := Filter{Type: FilterRateLimit, RateLimit: &RateLimit{ID: "p", Mode: RateLimitLocal}}
	rule.Filters = []Filter{limit, headers}
	rule.Backends[0].Filters = []Filter{limit}
	old, err := Downgrade(s, 2)
	if err != nil {
		t.Fatal(err)
	}
	got := old.Listeners[0].VirtualHosts[0].Routes[0].Rules[0]
	if len(got.Filters) != 1 || got.Filters[0].Type != FilterRequestHeaderModifier || len(got.Backends[0].Filters) != 0 {
		t.Fatalf("downgraded filters: %+v / %+v", got.Filters, got.Backends[0].Filters)
	}
	if len(rule.Filters) != 2 || len(rule.Backends[0].Filters) != 1 {
		t.Fatal("the original snapshot was changed")
	}
}
