package reqctx

import (
	"context"
	"testing"
)

func TestFlagsString(t *testing.T) {
	cases := []struct {
		flags Flags
		want  string
	}{
		{0, ""},
		{FlagRateLimitPassed, ""},
		{FlagCircuitOpen, "circuit-open"},
		{FlagClientClosed, "client-closed"},
		{FlagRetried | FlagUpstreamTimeout | FlagRateLimitPassed, "upstream-timeout,retried"},
		{FlagRateLimited | FlagNoEndpoints | FlagDeadlineExceeded, "rate-limited,no-endpoints,deadline-exceeded"},
	}
	for _, c := range cases {
		if got := c.flags.String(); got != c.want {
			t.Errorf("Flags(%#x).String() = %q, want %q", uint32(c.flags), got, c.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = FlagNoRoute.String() }); n != 0 {
		t.Errorf("a single flag's name allocates %v times", n)
	}
}

func TestAddFlags(t *testing.T) {
	AddFlags(context.Background(), FlagRetried) // no Info: nothing to do, no panic
	info := &Info{Flags: FlagRetried}
	ctx := context.WithValue(context.Background(), key{}, info)
	AddFlags(ctx, FlagRateLimited)
	if info.Flags != FlagRetried|FlagRateLimited {
		t.Fatalf("flags %v", info.Flags)
	}
}
