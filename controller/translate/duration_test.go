package translate

import (
	"regexp"
	"testing"
)

// gep2257 is the GEP-2257 duration syntax as the specification writes it.
var gep2257 = regexp.MustCompile(`^([0-9]{1,5}(h|m|s|ms)){1,4}$`)

// TestIsGatewayDurationAgreesWithTheExpression compares the hand-written scanner with
// the specification's regular expression on every string over a small alphabet, and on
// strings around the limits of five digits and four components.
func TestIsGatewayDurationAgreesWithTheExpression(t *testing.T) {
	check := func(s string) {
		if got, want := isGatewayDuration(s), gep2257.MatchString(s); got != want {
			t.Errorf("isGatewayDuration(%q) = %v, want %v", s, got, want)
		}
	}
	var walk func(prefix string, alphabet string, depth int)
	walk = func(prefix, alphabet string, depth int) {
		check(prefix)
		if depth == 0 {
			return
		}
		for i := range len(alphabet) {
			walk(prefix+alphabet[i:i+1], alphabet, depth-1)
		}
	}
	walk("", "1hms", 8)
	walk("", "09ms.-u ", 4)
	for _, s := range []string{
		"12345s", "123456s", "99999ms", "1h1m1s1ms", "1h1m1s1ms1h", "1ms1ms1ms1ms", "1ms1ms1ms1ms1ms",
		"1msms", "1sm", "1mss", "1m1", "01h", "00000h", "1H", "1h ", " 1h", "1h\n", "٣s",
	} {
		check(s)
	}
}
