// Package all registers every built-in filter plugin. Import it for its side effect.
package all

import (
	// Each import registers one or more filter types with the plugins registry.
	_ "github.com/switchyard-dev/switchyard/plugins/cors"
	_ "github.com/switchyard-dev/switchyard/plugins/headers"
	_ "github.com/switchyard-dev/switchyard/plugins/mirror"
	_ "github.com/switchyard-dev/switchyard/plugins/ratelimit"
	_ "github.com/switchyard-dev/switchyard/plugins/redirect"
	_ "github.com/switchyard-dev/switchyard/plugins/rewrite"
)
