package admin

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// Fleet is what the controller's fleet endpoint reports on: the gateway replicas
// that stream snapshots from it. Its methods are called concurrently.
type Fleet interface {
	// Gateways returns every replica connected, or disconnected recently.
	Gateways() GatewaysView
}

// GatewaysView is what GET /api/v1/gateways shows.
type GatewaysView struct {
	// NewestVersion is the newest snapshot this controller published, and
	// PublishedAt when.
	NewestVersion string    `json:"newestVersion"`
	PublishedAt   time.Time `json:"publishedAt,omitzero"`
	// Gateways are sorted by node, role and instance.
	Gateways []GatewayView `json:"gateways"`
}

// GatewayView is one gateway replica as its controller sees it.
type GatewayView struct {
	// Node, Role and Instance identify the replica: its node, edge or node, and the
	// random id of its process.
	Node     string `json:"node"`
	Role     string `json:"role"`
	Instance string `json:"instance,omitempty"`
	// Identity is who its token authenticated as; RemoteAddr where it connects from.
	Identity   string `json:"identity,omitempty"`
	RemoteAddr string `json:"remoteAddr,omitempty"`
	// SchemaVersion is the snapshot schema it speaks.
	SchemaVersion int `json:"schemaVersion"`
	// Connected reports whether its stream is open; ConnectedSince and
	// DisconnectedAt date it.
	Connected      bool      `json:"connected"`
	ConnectedSince time.Time `json:"connectedSince,omitzero"`
	DisconnectedAt time.Time `json:"disconnectedAt,omitzero"`
	// SentVersion is the last snapshot sent to it, AckedVersion the one it last
	// reported running, LastAck when it last reported.
	SentVersion  string    `json:"sentVersion,omitempty"`
	AckedVersion string    `json:"ackedVersion,omitempty"`
	LastAck      time.Time `json:"lastAck,omitzero"`
	// RejectedVersion and AckError are the newest version it failed to apply, and
	// why.
	RejectedVersion string `json:"rejectedVersion,omitempty"`
	AckError        string `json:"ackError,omitempty"`
	// SendError is why its view of the newest snapshot could not be prepared.
	SendError string `json:"sendError,omitempty"`
	// BytesSent and DeltasSent count what its current or last stream carried.
	BytesSent  int64 `json:"bytesSent"`
	DeltasSent int   `json:"deltasSent"`
	// Lag is how far it is behind the newest snapshot.
	Lag GatewayLag `json:"lag"`
}

// GatewayLag is how far a replica is behind the newest published snapshot.
type GatewayLag struct {
	// InSync reports that it acknowledged the newest snapshot.
	InSync bool `json:"inSync"`
	// Versions counts the snapshots published after the one it acknowledged; -1
	// when that one is too old (or unknown) to count from.
	Versions int `json:"versions"`
	// Since is when the first snapshot it has not acknowledged was published;
	// absent when in sync or unknown.
	Since time.Time `json:"since,omitzero"`
	// Seconds is how long ago Since was.
	Seconds float64 `json:"seconds"`
}

// addFleetRoutes adds GET /api/v1/gateways, and /api/v1/replicas, its older name,
// which lists the same replicas under "replicas".
func addFleetRoutes(api *gin.RouterGroup, fleet Fleet) {
	api.GET("/gateways", func(c *gin.Context) { renderJSON(c, http.StatusOK, fleet.Gateways()) })
	api.GET("/replicas", func(c *gin.Context) {
		renderJSON(c, http.StatusOK, map[string][]GatewayView{"replicas": fleet.Gateways().Gateways})
	})
}
