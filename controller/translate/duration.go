package translate

import (
	"fmt"
	"time"
)

// parseGatewayDuration parses a Gateway API duration (GEP-2257): one to four
// components, each of one to five digits followed by h, m, s or ms. It refuses
// anything outside that subset, even when Go's parser would take it ("1.5s", "-1s",
// "1us").
func parseGatewayDuration(s string) (time.Duration, error) {
	if !isGatewayDuration(s) {
		return 0, fmt.Errorf("%q is not a Gateway API duration (such as \"1h30m\" or \"500ms\")", s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	return d, nil
}

// isGatewayDuration reports whether s has the GEP-2257 syntax, which as a regular
// expression is ^([0-9]{1,5}(h|m|s|ms)){1,4}$. Scanning by hand is much cheaper than
// running the expression, and every timeout of every route goes through here.
func isGatewayDuration(s string) bool {
	components := 0
	for i := 0; i < len(s); {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if digits := i - start; digits < 1 || digits > 5 || i == len(s) {
			return false
		}
		switch {
		case s[i] == 'm' && i+1 < len(s) && s[i+1] == 's':
			// An "s" cannot start a component, so "ms" after digits is always the
			// millisecond unit rather than minutes followed by something.
			i += 2
		case s[i] == 'h' || s[i] == 'm' || s[i] == 's':
			i++
		default:
			return false
		}
		components++
	}
	return components >= 1 && components <= 4
}
