package translate

import (
	"testing"

	"sigs.k8s.io/gateway-api/pkg/features"
)

// TestSupportedFeatures checks the published list: sorted, without duplicates, and
// spelled as the Gateway API spells its features (the conformance suite silently
// ignores a name it does not know).
func TestSupportedFeatures(t *testing.T) {
	known := map[features.FeatureName]bool{}
	for _, f := range features.AllFeatures.UnsortedList() {
		known[f.Name] = true
	}
	list := supportedFeatureList()
	if len(list) != len(supportedFeatures) {
		t.Fatalf("published %d features, declared %d", len(list), len(supportedFeatures))
	}
	for i, f := range list {
		if !known[features.FeatureName(f.Name)] {
			t.Errorf("feature %q is not a Gateway API feature", f.Name)
		}
		if i > 0 && list[i-1].Name >= f.Name {
			t.Errorf("features %q and %q are out of order or repeated", list[i-1].Name, f.Name)
		}
		if supportedFeatures[i] != features.FeatureName(f.Name) {
			t.Errorf("supportedFeatures[%d] is %q; keep the declaration sorted (%q sorts there)", i, supportedFeatures[i], f.Name)
		}
	}
	for _, core := range []features.FeatureName{features.SupportGateway, features.SupportHTTPRoute, features.SupportReferenceGrant} {
		found := false
		for _, f := range list {
			found = found || features.FeatureName(f.Name) == core
		}
		if !found {
			t.Errorf("core feature %q is not published", core)
		}
	}
}
