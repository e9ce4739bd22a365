package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"k8s.io/client-go/dynamic"

	"github.com/switchyard-dev/switchyard/controller/distribute"
	"github.com/switchyard-dev/switchyard/controller/manager"
	"github.com/switchyard-dev/switchyard/controller/rollout"
	"github.com/switchyard-dev/switchyard/controller/status"
	"github.com/switchyard-dev/switchyard/gateway/admin"
)

// rolloutTerms runs a rollout driver for each term this controller leads: only the
// leader moves Rollouts and writes their status. Each term gets a new driver and
// store, since the driver trusts its own copy of the statuses, which another leader
// may have changed meanwhile. It serves the admin API's rollout endpoints through the
// current term's driver.
type rolloutTerms struct {
	newDriver func() (*rollout.Driver, error)
	logger    *slog.Logger
	current   atomic.Pointer[rollout.Driver]
}

// newRolloutTerms returns the rollout drivers of c: they read the Rollouts from the
// informer cache and their translation results from the manager, and keep their
// status through the API server.
func newRolloutTerms(c *controllerParts, client dynamic.Interface) *rolloutTerms {
	return &rolloutTerms{logger: c.logger, newDriver: func() (*rollout.Driver, error) {
		return rollout.NewDriver(rollout.DriverOptions{
			Rollouts: c.source.Rollouts,
			Results:  c.mgr.RolloutResults,
			// The canary's traffic as the replicas connected to this controller report
			// it. Replicas of a follower report to the follower: with several
			// controllers, the analysis sees the leader's share of the fleet.
			Outcome: c.snaps.BackendOutcome,
			Store:   status.NewRolloutStore(client, c.source, c.leading),
			// Replicas that connect report their totals since they started; windows
			// open once the first reports of this term have arrived.
			WarmUp: 2 * distribute.DefaultHeartbeatInterval,
			// No OnChange: translation reads the weights from the Rollouts' status,
			// and the informer reports each saved change of weight or phase.
			Logger: c.logger,
		})
	}}
}

// start runs a new driver until the term ends.
func (r *rolloutTerms) start(term context.Context) {
	d, err := r.newDriver()
	if err != nil {
		r.logger.Error("starting the rollout driver; Rollouts will not move in this term", "error", err)
		return
	}
	r.current.Store(d)
	go func() {
		d.Run(term)
		r.current.CompareAndSwap(d, nil)
	}()
}

// ListRollouts implements admin.Rollouts: the current term's view, nothing on a
// follower.
func (r *rolloutTerms) ListRollouts() []admin.RolloutView {
	if d := r.current.Load(); d != nil {
		return d.ListRollouts()
	}
	return []admin.RolloutView{}
}

// ActRollout implements admin.Rollouts. Only the leader acts.
func (r *rolloutTerms) ActRollout(ctx context.Context, namespace, name, action string, full bool) (admin.RolloutView, error) {
	d := r.current.Load()
	if d == nil {
		return admin.RolloutView{}, fmt.Errorf("%w: this controller does not lead; send rollout actions to the leader's admin API", admin.ErrConflict)
	}
	return d.ActRollout(ctx, namespace, name, action, full)
}

// controllerState is what the controller's admin API reports: the manager's
// translation and the current term's rollouts.
type controllerState struct {
	*manager.Manager
	*rolloutTerms
}

var _ admin.Rollouts = controllerState{}
