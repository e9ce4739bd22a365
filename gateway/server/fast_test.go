package server

import "testing"

func TestParseHTTP1Mode(t *testing.T) {
	t.Setenv(HTTP1ModeEnv, "")
	for in, want := range map[string]HTTP1Mode{"": HTTP1Fast, "fast": HTTP1Fast, "std": HTTP1Std} {
		if got, err := ParseHTTP1Mode(in); err != nil || got != want {
			t.Errorf("ParseHTTP1Mode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseHTTP1Mode("FAST"); err == nil {
		t.Error("an unknown mode is accepted")
	}
	t.Setenv(HTTP1ModeEnv, "std")
	if got, _ := ParseHTTP1Mode(""); got != HTTP1Std {
		t.Errorf("the environment's choice is ignored: %q", got)
	}
	if got, _ := ParseHTTP1Mode("fast"); got != HTTP1Fast {
		t.Errorf("an explicit choice loses to the environment: %q", got)
	}
	if got := (Limits{HTTP1: "bogus"}).withDefaults().HTTP1; got != HTTP1Fast {
		t.Errorf("an unknown Limits.HTTP1 becomes %q, want fast", got)
	}
}
