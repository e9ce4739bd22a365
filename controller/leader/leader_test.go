package leader

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"
)

// Elections against a real API server are tested in e2e/cluster; these tests cover
// the options.

func TestNewFillsDefaults(t *testing.T) {
	e, err := New(Options{Client: fake.NewClientset(), Namespace: "ns", Name: "lease"})
	if err != nil {
		t.Fatal(err)
	}
	if e.opts.LeaseDuration != DefaultLeaseDuration || e.opts.RenewDeadline != DefaultRenewDeadline || e.opts.RetryPeriod != DefaultRetryPeriod {
		t.Errorf("timings %v/%v/%v, want the defaults", e.opts.LeaseDuration, e.opts.RenewDeadline, e.opts.RetryPeriod)
	}
	if e.Identity() == "" {
		t.Error("no default identity")
	}
	other, _ := New(Options{Client: fake.NewClientset(), Namespace: "ns", Name: "lease"})
	if other.Identity() == e.Identity() {
		t.Errorf("two electors got the same default identity %q", e.Identity())
	}
	if e.IsLeader() {
		t.Error("an elector that never ran reports leading")
	}
}

func TestDefaultsFailOverWithinTenSeconds(t *testing.T) {
	// A follower may see the last renewal up to 2.2 retry periods late and notice the
	// expiry up to 2.2 periods after the lease duration (client-go's jitter factor is
	// 1.2).
	worst := DefaultLeaseDuration + time.Duration(4.4*float64(DefaultRetryPeriod))
	if worst >= 10*time.Second {
		t.Errorf("worst-case failover with the defaults is %v, want under 10s", worst)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	client := fake.NewClientset()
	cases := map[string]struct {
		opts Options
		want string
	}{
		"no client":            {Options{Namespace: "ns", Name: "l"}, "required"},
		"no name":              {Options{Client: client, Namespace: "ns"}, "required"},
		"no namespace":         {Options{Client: client, Name: "l"}, "required"},
		"renew after lease":    {Options{Client: client, Namespace: "ns", Name: "l", LeaseDuration: 2 * time.Second, RenewDeadline: 3 * time.Second}, "renewDeadline"},
		"retry too slow":       {Options{Client: client, Namespace: "ns", Name: "l", RetryPeriod: 5 * time.Second}, "retryPeriod"},
		"sub-second lease":     {Options{Client: client, Namespace: "ns", Name: "l", LeaseDuration: 500 * time.Millisecond, RenewDeadline: 300 * time.Millisecond, RetryPeriod: 100 * time.Millisecond}, "one second"},
		"negative retry":       {Options{Client: client, Namespace: "ns", Name: "l", RetryPeriod: -time.Second}, "retryPeriod"},
		"negative renewal":     {Options{Client: client, Namespace: "ns", Name: "l", RenewDeadline: -time.Second}, "renewDeadline"},
		"lease equal to renew": {Options{Client: client, Namespace: "ns", Name: "l", LeaseDuration: 4 * time.Second, RenewDeadline: 4 * time.Second}, "leaseDuration"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error about %q", err, tc.want)
			}
			if err := Run(context.Background(), tc.opts); err == nil {
				t.Error("Run accepted the bad options")
			}
		})
	}
}

func TestRoundPairsCallbacks(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &round{}
	if !r.start(ctx) || !r.leading() {
		t.Fatal("a started round does not lead")
	}
	cancel()
	if r.leading() {
		t.Error("a round whose leadership context ended still leads")
	}
	if !r.stop() {
		t.Error("stop of a started round reported it never led")
	}

	// client-go may end a round before the OnStartedLeading goroutine runs: then
	// neither callback may run.
	late := &round{}
	if late.stop() {
		t.Error("stop of a round that never started reported leading")
	}
	if late.start(context.Background()) || late.leading() {
		t.Error("a round started after its stop leads")
	}
}
