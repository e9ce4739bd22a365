package admin

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// problemContentType is the media type of RFC 9457 problem details.
const problemContentType = "application/problem+json"

// Problem is an RFC 9457 problem details object, the body of every error answer.
type Problem struct {
	// Type is a URI identifying the problem type; "about:blank" means the status
	// code says it all.
	Type string `json:"type"`
	// Title is the short, human-readable summary of the problem type.
	Title string `json:"title"`
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Detail explains this occurrence of the problem.
	Detail string `json:"detail,omitempty"`
}

// abortWithProblem answers with a problem details body and stops the handler chain.
func abortWithProblem(c *gin.Context, status int, detail string) {
	body := Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail}
	c.Render(status, problemRender{body})
	c.Abort()
}

// problemRender writes a Problem with its own media type; gin's JSON renderer would
// label it application/json.
type problemRender struct {
	problem Problem
}

// Render implements render.Render.
func (p problemRender) Render(w http.ResponseWriter) error {
	p.WriteContentType(w)
	return writeJSON(w, p.problem)
}

// WriteContentType implements render.Render.
func (p problemRender) WriteContentType(w http.ResponseWriter) {
	w.Header().Set("Content-Type", problemContentType)
}
