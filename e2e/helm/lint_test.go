package helm_test

import (
	"strings"
	"testing"
)

// TestLint runs helm lint in strict mode (warnings fail) on the chart with its own
// defaults and with each values file.
func TestLint(t *testing.T) {
	for _, name := range valuesCases {
		t.Run(name, func(t *testing.T) {
			out, err := helm(t, "lint", chartDir(), "--strict", "--kube-version", harnessKubeVersion(t),
				"--values", valuesFile(name))
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !strings.Contains(out, "0 chart(s) failed") {
				t.Fatalf("helm lint did not pass:\n%s", out)
			}
		})
	}
}

// TestRefusedValues renders values that the schema or the templates must refuse, and
// checks that helm fails with a message naming the problem rather than rendering a
// release that cannot work.
func TestRefusedValues(t *testing.T) {
	cases := []struct {
		name string
		set  []string
		// want is a part of the error message.
		want string
	}{
		{"unknown key", []string{"controller.replica=3"}, "replica"},
		{"placement mode", []string{"controller.placement.mode=hostport"}, "mode"},
		{"pool without addresses", []string{"controller.placement.mode=pool"}, "needs controller.placement.addressPool"},
		{"several leaders", []string{"controller.leaderElection.enabled=false"}, "needs controller.replicas=1"},
		{"port out of range", []string{"controller.snapshotPort=70000"}, "snapshotPort"},
		{"duration", []string{"edgeGateway.drainTimeout=thirty"}, "drainTimeout"},
		{"log level", []string{"edgeGateway.logLevel=loud"}, "logLevel"},
		{"service type", []string{"gatewayClass.serviceType=External"}, "serviceType"},
		{"redis scheme", []string{"edgeGateway.redis.url=http://redis:6379"}, "url"},
		{"autoscaling bounds", []string{"edgeGateway.autoscaling.enabled=true",
			"edgeGateway.autoscaling.minReplicas=5", "edgeGateway.autoscaling.maxReplicas=3"}, "must not exceed maxReplicas"},
		{"zero controllers", []string{"controller.replicas=0"}, "replicas"},
		{"node gateway switch moved to eastWest.enabled", []string{"nodeGateway.enabled=true"}, "enabled"},
		{"egress mode", []string{"nodeGateway.egress=open"}, "egress"},
		{"NO_PROXY entry with a space", []string{"eastWest.webhook.noProxy[0]=a b"}, "noProxy"},
		{"webhook timeout over the API server's limit", []string{"eastWest.webhook.timeoutSeconds=60"}, "timeoutSeconds"},
		{"east-west port", []string{"eastWest.port=0"}, "port"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var extra []string
			for _, s := range tc.set {
				extra = append(extra, "--set", s)
			}
			out, err := render(t, release{name: "sy", namespace: "switchyard-system", values: "defaults", extra: extra})
			if err == nil {
				t.Fatalf("values %v were accepted; rendered %d documents", tc.set, len(documents(out)))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("values %v: the error does not mention %q:\n%v", tc.set, tc.want, err)
			}
		})
	}
}
