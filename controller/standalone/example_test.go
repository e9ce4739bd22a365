package standalone

import (
	"testing"

	"github.com/switchyard-dev/switchyard/controller/source/files"
	"github.com/switchyard-dev/switchyard/controller/translate"
)

// TestRolloutExampleIsValid keeps examples/rollout loadable and every object of it
// healthy, so that the README's command keeps working.
func TestRolloutExampleIsValid(t *testing.T) {
	in, err := files.Load("../../examples/rollout")
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Rollouts) != 1 || len(in.TrafficPolicies) != 1 || len(in.HTTPRoutes) != 1 || len(in.Gateways) != 1 {
		t.Fatalf("loaded %d Rollouts, %d TrafficPolicies, %d HTTPRoutes, %d Gateways; want one of each",
			len(in.Rollouts), len(in.TrafficPolicies), len(in.HTTPRoutes), len(in.Gateways))
	}
	rep := NewStatusReport(translate.Translate(in))
	for _, p := range rep.Problems {
		t.Errorf("problem: %+v", p)
	}
	if len(rep.Gateways) != 1 || len(rep.HTTPRoutes) != 1 {
		t.Fatalf("report %+v", rep)
	}
}
