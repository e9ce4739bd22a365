package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/controller/rollout"
	"github.com/switchyard-dev/switchyard/controller/translate"
	"github.com/switchyard-dev/switchyard/gateway/admin"
	"github.com/switchyard-dev/switchyard/gateway/outcome"
)

// Only a leadership term has a driver: a follower refuses rollout actions, each term
// gets a new driver, and a term's end retires its driver.
func TestRolloutTermsFollowLeadership(t *testing.T) {
	made := 0
	terms := &rolloutTerms{logger: slog.New(slog.NewTextHandler(io.Discard, nil)), newDriver: func() (*rollout.Driver, error) {
		made++
		return rollout.NewDriver(rollout.DriverOptions{
			Rollouts: func() []*v1alpha1.Rollout { return nil },
			Results:  func() map[types.NamespacedName]translate.RolloutResult { return nil },
			Outcome:  func(string) outcome.Totals { return outcome.Totals{} },
			Store:    rollout.NewMemoryStore(),
		})
	}}
	ctx := context.Background()
	if _, err := terms.ActRollout(ctx, "ns", "r", "promote", false); !errors.Is(err, admin.ErrConflict) {
		t.Fatalf("an action on a follower: %v; want a conflict", err)
	}
	if got := terms.ListRollouts(); got == nil || len(got) != 0 {
		t.Fatalf("a follower lists %v; want an empty list", got)
	}
	term, end := context.WithCancel(ctx)
	terms.start(term)
	first := terms.current.Load()
	if first == nil || made != 1 {
		t.Fatal("no driver while leading")
	}
	if _, err := terms.ActRollout(ctx, "ns", "r", "promote", false); !errors.Is(err, admin.ErrNotFound) {
		t.Errorf("an action on an unknown Rollout while leading: %v; want the driver's not found", err)
	}
	end()
	deadline := time.Now().Add(5 * time.Second)
	for terms.current.Load() != nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if terms.current.Load() != nil {
		t.Fatal("the driver outlived its term")
	}
	next, endNext := context.WithCancel(ctx)
	defer endNext()
	terms.start(next)
	if d := terms.current.Load(); d == nil || d == first || made != 2 {
		t.Error("a new term did not get a new driver")
	}
}
