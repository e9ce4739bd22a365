package admin

import (
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/gin-gonic/gin"
)

// profilingPrefix is where the Go runtime's profiles are served when profiling is
// on. It sits under /api/ so that the admin token (or, without one, the loopback
// Host check) guards it like every other endpoint: a CPU profile costs the data
// path, and a heap profile shows memory contents' shape to whoever reads it.
const profilingPrefix = "/api/v1/debug/pprof"

// addProfilingRoutes serves the profiles of net/http/pprof: the index, the named
// profiles (heap, goroutine, allocs, block, mutex, threadcreate), a CPU profile
// (?seconds=N), an execution trace, the command line and symbol lookup.
func addProfilingRoutes(api *gin.RouterGroup) {
	group := api.Group("/debug/pprof")
	group.GET("/", gin.WrapF(profileIndex))
	group.GET("/cmdline", gin.WrapF(pprof.Cmdline))
	group.GET("/profile", gin.WrapF(pprof.Profile))
	group.GET("/symbol", gin.WrapF(pprof.Symbol))
	group.POST("/symbol", gin.WrapF(pprof.Symbol))
	group.GET("/trace", gin.WrapF(pprof.Trace))
	group.GET("/:name", func(c *gin.Context) { pprof.Handler(c.Param("name")).ServeHTTP(c.Writer, c.Request) })
}

// profileIndex serves pprof's index page. That page links to the profiles by
// their names relative to /debug/pprof/, which the request's path is rewritten to
// so that the links resolve under our prefix too.
func profileIndex(w http.ResponseWriter, r *http.Request) {
	rewritten := r.Clone(r.Context())
	rewritten.URL.Path = "/debug/pprof/" + strings.TrimPrefix(r.URL.Path, profilingPrefix+"/")
	pprof.Index(w, rewritten)
}
