package fleet_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/agent"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/dataplane"
	_ "github.com/switchyard-dev/switchyard/plugins/all"
)

// startInProcessReplica runs an edge replica inside the test process: the same agent
// and data plane as `switchyard gateway`, connected to e.snapAddr. Every listener is
// bound on bindAddress instead of the address in the snapshot, so that many replicas
// can run side by side and each can be probed on its own.
func (e *env) startInProcessReplica(node, bindAddress string) *inProcessReplica {
	e.t.Helper()
	r := &inProcessReplica{addr: bindAddress + ":80", routes: map[string]time.Time{}}
	engine := dataplane.New(dataplane.Options{Logger: slog.New(slog.DiscardHandler)})
	ag, err := agent.New(agent.Options{
		ControllerURL: "https://" + e.snapAddr, Node: node, Role: "edge",
		TokenFile: e.token, CAFile: e.caFile,
		StatePath: filepath.Join(e.dir, node+".snapshot.json"),
		Apply: func(s *config.Snapshot) error {
			if err := engine.Apply(rebind(s, bindAddress)); err != nil {
				return err
			}
			r.applied(s)
			return nil
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	must(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = ag.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		<-done
		shutdownCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		_ = engine.Shutdown(shutdownCtx)
	})
	return r
}

// inProcessReplica remembers when each route first appeared in an applied snapshot.
type inProcessReplica struct {
	addr   string
	mu     sync.Mutex
	routes map[string]time.Time
}

func (r *inProcessReplica) applied(s *config.Snapshot) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range s.Listeners {
		for _, vh := range l.VirtualHosts {
			for _, rt := range vh.Routes {
				if _, ok := r.routes[rt.Name]; !ok {
					r.routes[rt.Name] = now
				}
			}
		}
	}
}

// probe waits for the route to be applied, then checks with one request that it
// serves.
func (r *inProcessReplica) probe(path, routeName string, deadline time.Time) (time.Time, error) {
	for time.Now().Before(deadline) {
		r.mu.Lock()
		at, ok := r.routes[routeName]
		r.mu.Unlock()
		if ok {
			code, _, err := httpGet(client, r.addr, "", path)
			if err != nil || code != http.StatusOK {
				return time.Time{}, fmt.Errorf("%s applied on %s but answers %d (%v)", routeName, r.addr, code, err)
			}
			return at, nil
		}
		time.Sleep(time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("%s never applied on %s", routeName, r.addr)
}

// rebind returns a copy of s whose listeners bind address instead of their own.
func rebind(s *config.Snapshot, address string) *config.Snapshot {
	c := *s
	c.Listeners = make([]config.Listener, len(s.Listeners))
	for i, l := range s.Listeners {
		l.Address = address
		c.Listeners[i] = l
	}
	return &c
}
