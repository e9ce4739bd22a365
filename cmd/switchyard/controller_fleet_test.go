package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/controller/distribute"
	"github.com/switchyard-dev/switchyard/gateway/admin"
	"github.com/switchyard-dev/switchyard/gateway/config"
)

func TestPublishLogLag(t *testing.T) {
	var log publishLog
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	if lag := log.lag("v1", t0); lag.InSync || lag.Versions != -1 {
		t.Errorf("lag before any publish: %+v", lag)
	}
	for i, v := range []string{"v1", "v2", "v2", "v3"} {
		log.record(v, t0.Add(time.Duration(i)*time.Second))
	}
	now := t0.Add(10 * time.Second)
	cases := map[string]admin.GatewayLag{
		"v3": {InSync: true},
		"v2": {Versions: 1, Since: t0.Add(3 * time.Second), Seconds: 7},
		"v1": {Versions: 2, Since: t0.Add(time.Second), Seconds: 9},
		"v0": {Versions: -1},
		"":   {Versions: -1},
	}
	for acked, want := range cases {
		if got := log.lag(acked, now); got != want {
			t.Errorf("lag(%q) = %+v, want %+v", acked, got, want)
		}
	}
	if v, at := log.newest(); v != "v3" || !at.Equal(t0.Add(3*time.Second)) {
		t.Errorf("newest %s %v", v, at)
	}
}

func TestPublishLogIsBounded(t *testing.T) {
	var log publishLog
	t0 := time.Now()
	for i := range maxPublishLog + 10 {
		log.record(fmt.Sprintf("v%d", i), t0)
	}
	if len(log.entries) != maxPublishLog {
		t.Fatalf("%d entries kept", len(log.entries))
	}
	oldest := log.entries[0].version
	if lag := log.lag(oldest, t0); lag.Versions != maxPublishLog-1 {
		t.Errorf("lag of the oldest kept: %+v", lag)
	}
}

func TestFleetViewPublishes(t *testing.T) {
	snaps, err := distribute.NewServer(distribute.Options{Authenticator: distribute.SharedToken("t")})
	if err != nil {
		t.Fatal(err)
	}
	f := fleetView{snaps: snaps, log: &publishLog{}}
	f.publish(&config.Snapshot{SchemaVersion: config.SchemaVersion, Version: "v1"})
	f.publish(nil)
	view := f.Gateways()
	if view.NewestVersion != "v1" || snaps.Version() != "v1" || view.PublishedAt.IsZero() || view.Gateways == nil {
		t.Errorf("view %+v, server version %q", view, snaps.Version())
	}
}
