// Package graph keeps the controller's live service graph: the caller -> callee edges
// that node replicas forward, with their request rate, error rate and latency
// percentiles over a sliding window.
//
// The snapshot server adds up the replicas' cumulative totals per edge into fleet
// totals that never decrease (distribute.Server.EdgeOutcomes). A Graph samples those
// totals periodically and answers with the difference between the current totals and
// the oldest sample within the window. An edge is measured from the first sample that
// holds it: fleet totals that appear at once hold everything a replica counted before
// it reported them (all of it, when this controller has just become the one replicas
// report to), which is no measure of the window. A new edge therefore shows up with
// the next sample, and its requests before that sample are not in the window.
package graph

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/admin"
	"github.com/switchyard-dev/switchyard/gateway/outcome"
)

// Defaults of Options.
const (
	// DefaultWindow is how far back rates look.
	DefaultWindow = time.Minute
	// DefaultInterval is how often the fleet totals are sampled.
	DefaultInterval = 5 * time.Second
	// DefaultMaxEdges bounds the edges a view lists.
	DefaultMaxEdges = 500
)

// Options configure a Graph.
type Options struct {
	// Source returns the fleet's cumulative totals per edge, never decreasing
	// (distribute.Server.EdgeOutcomes). Required.
	Source func() map[outcome.EdgeKey]outcome.Totals
	// Window is how far back rates look; zero means DefaultWindow.
	Window time.Duration
	// Interval is how often Run samples Source; zero means DefaultInterval. It is
	// also how long a new edge may take to appear.
	Interval time.Duration
	// MaxEdges bounds the edges a view lists, the busiest; zero means
	// DefaultMaxEdges.
	MaxEdges int
}

// Graph samples the fleet's edge totals and serves the service graph view. It is safe
// for concurrent use.
type Graph struct {
	opts Options

	mu sync.Mutex
	// samples are oldest first; none is older than the window.
	samples []sample
}

// sample is a reading of the fleet totals.
type sample struct {
	at     time.Time
	totals map[outcome.EdgeKey]outcome.Totals
}

// New returns a Graph with no samples.
func New(opts Options) (*Graph, error) {
	if opts.Source == nil {
		return nil, errors.New("graph: a Source is required")
	}
	if opts.Window < 0 || opts.Interval < 0 || opts.MaxEdges < 0 {
		return nil, errors.New("graph: Window, Interval and MaxEdges cannot be negative")
	}
	opts.Window = cmp.Or(opts.Window, DefaultWindow)
	opts.Interval = cmp.Or(opts.Interval, DefaultInterval)
	opts.MaxEdges = cmp.Or(opts.MaxEdges, DefaultMaxEdges)
	if opts.Interval > opts.Window {
		return nil, fmt.Errorf("graph: the sampling interval %v is longer than the window %v", opts.Interval, opts.Window)
	}
	return &Graph{opts: opts}, nil
}

// Run samples the fleet totals at once and then every Interval, until ctx ends.
func (g *Graph) Run(ctx context.Context) {
	ticker := time.NewTicker(g.opts.Interval)
	defer ticker.Stop()
	for {
		g.Sample(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// Sample records the fleet totals as of now and drops the samples the window no
// longer needs. Edges without requests are not kept.
func (g *Graph) Sample(now time.Time) {
	current := g.opts.Source()
	for key, t := range current {
		if t.Requests == 0 {
			delete(current, key)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.samples = append(g.samples, sample{at: now, totals: current})
	g.dropOldLocked(now)
}

// dropOldLocked forgets samples older than the window.
func (g *Graph) dropOldLocked(now time.Time) {
	keep := 0
	for keep < len(g.samples) && now.Sub(g.samples[keep].at) > g.opts.Window {
		keep++
	}
	g.samples = slices.Delete(g.samples, 0, keep)
}

// ServiceGraph implements admin.Graph.
func (g *Graph) ServiceGraph() admin.GraphView { return g.View(time.Now()) }

// View returns the service graph over the window that ends now.
func (g *Graph) View(now time.Time) admin.GraphView {
	current := g.opts.Source()
	g.mu.Lock()
	g.dropOldLocked(now)
	edges := make([]admin.GraphEdge, 0, len(current))
	for key, t := range current {
		if base, ok := g.baseLocked(key); ok {
			if e, ok := edgeOver(key, t.Sub(base.totals[key]), now.Sub(base.at)); ok {
				edges = append(edges, e)
			}
		}
	}
	g.mu.Unlock()
	slices.SortFunc(edges, func(a, b admin.GraphEdge) int {
		return cmp.Or(cmp.Compare(b.Requests, a.Requests), cmp.Compare(a.Caller, b.Caller), cmp.Compare(a.Callee, b.Callee))
	})
	view := admin.GraphView{Edges: edges, Window: fmt.Sprintf("%gs", g.opts.Window.Seconds()), GeneratedAt: now.UTC()}
	if len(edges) > g.opts.MaxEdges {
		view.Edges, view.OmittedEdges = edges[:g.opts.MaxEdges], len(edges)-g.opts.MaxEdges
	}
	return view
}

// baseLocked returns the oldest sample within the window that holds the edge.
func (g *Graph) baseLocked(key outcome.EdgeKey) (sample, bool) {
	for _, s := range g.samples {
		if _, ok := s.totals[key]; ok {
			return s, true
		}
	}
	return sample{}, false
}

// edgeOver describes an edge from what happened on it during elapsed; false when
// nothing did.
func edgeOver(key outcome.EdgeKey, d outcome.Totals, elapsed time.Duration) (admin.GraphEdge, bool) {
	if d.Requests <= 0 || elapsed <= 0 {
		return admin.GraphEdge{}, false
	}
	return admin.GraphEdge{
		Caller: key.Caller, Callee: key.Callee,
		RequestsPerSecond: float64(d.Requests) / elapsed.Seconds(),
		ErrorRate:         min(float64(d.Errors)/float64(d.Requests), 1),
		LatencyMs: admin.LatencyPercentiles{
			P50: millis(d.Percentile(0.5)), P90: millis(d.Percentile(0.9)), P99: millis(d.Percentile(0.99)),
		},
		Requests: d.Requests, Errors: d.Errors,
	}, true
}

// millis returns d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}
