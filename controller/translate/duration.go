package translate

import (
	"fmt"
	"regexp"
	"time"
)

// gatewayDuration is the Gateway API duration syntax (GEP-2257): one to four
// components, each of one to five digits followed by h, m, s or ms.
var gatewayDuration = regexp.MustCompile(`^([0-9]{1,5}(h|m|s|ms)){1,4}$`)

// parseGatewayDuration parses a Gateway API duration. It refuses anything outside the
// GEP-2257 subset, even when Go's parser would take it ("1.5s", "-1s", "1us").
func parseGatewayDuration(s string) (time.Duration, error) {
	if !gatewayDuration.MatchString(s) {
		return 0, fmt.Errorf("%q is not a Gateway API duration (such as \"1h30m\" or \"500ms\")", s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	return d, nil
}
