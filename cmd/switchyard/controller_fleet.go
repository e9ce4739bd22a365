package main

import (
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/controller/distribute"
	"github.com/switchyard-dev/switchyard/gateway/admin"
	"github.com/switchyard-dev/switchyard/gateway/config"
)

// maxPublishLog bounds the snapshots publishLog remembers. A replica further behind
// than this is reported as lagging by an unknown number of versions.
const maxPublishLog = 1024

// publishLog remembers when this controller published its recent snapshots.
// Versions are content hashes and say nothing of order, so the log is what tells
// how many snapshots a replica's acknowledged version is behind, and since when.
type publishLog struct {
	mu      sync.Mutex
	entries []publishedVersion // oldest first
}

type publishedVersion struct {
	version string
	at      time.Time
}

// record notes that version was published at at; a repeat of the newest is ignored,
// as the snapshot server ignores it.
func (l *publishLog) record(version string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.entries); n > 0 && l.entries[n-1].version == version {
		return
	}
	if len(l.entries) == maxPublishLog {
		l.entries = append(l.entries[:0], l.entries[1:]...)
	}
	l.entries = append(l.entries, publishedVersion{version: version, at: at})
}

// newest returns the newest version recorded and when it was published.
func (l *publishLog) newest() (string, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.entries) == 0 {
		return "", time.Time{}
	}
	last := l.entries[len(l.entries)-1]
	return last.version, last.at
}

// lag says how far a replica that acknowledged acked is behind the newest snapshot.
func (l *publishLog) lag(acked string, now time.Time) admin.GatewayLag {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.entries)
	if n > 0 && acked != "" && l.entries[n-1].version == acked {
		return admin.GatewayLag{InSync: true}
	}
	for i := n - 2; i >= 0 && acked != ""; i-- {
		if l.entries[i].version == acked {
			since := l.entries[i+1].at
			return admin.GatewayLag{Versions: n - 1 - i, Since: since, Seconds: now.Sub(since).Seconds()}
		}
	}
	return admin.GatewayLag{Versions: -1}
}

// fleetView serves the controller's GET /api/v1/gateways from the snapshot server.
type fleetView struct {
	snaps *distribute.Server
	log   *publishLog
}

// publish records a snapshot's publication and hands it to the snapshot server.
func (f fleetView) publish(snap *config.Snapshot) {
	if snap != nil {
		f.log.record(snap.Version, time.Now())
	}
	f.snaps.Publish(snap)
}

// Gateways implements admin.Fleet.
func (f fleetView) Gateways() admin.GatewaysView {
	newest, at := f.log.newest()
	replicas := f.snaps.Replicas()
	now := time.Now()
	view := admin.GatewaysView{NewestVersion: newest, PublishedAt: at, Gateways: make([]admin.GatewayView, len(replicas))}
	for i, r := range replicas {
		view.Gateways[i] = admin.GatewayView{
			Node: r.Node, Role: r.Role, Instance: r.Instance, Identity: r.Identity, RemoteAddr: r.RemoteAddr,
			SchemaVersion: r.SchemaVersion, Connected: r.Connected, ConnectedSince: r.ConnectedSince,
			DisconnectedAt: r.DisconnectedAt, SentVersion: r.SentVersion, AckedVersion: r.AckedVersion,
			LastAck: r.LastAck, RejectedVersion: r.RejectedVersion, AckError: r.AckError, SendError: r.SendError,
			BytesSent: r.BytesSent, DeltasSent: r.DeltasSent, Lag: f.log.lag(r.AckedVersion, now),
		}
	}
	return view
}
