package config

// Mesh is what a node replica serves east-west: every cluster Service a Pod on its
// node may call, with the routes and policies of the Gateway API mesh pattern
// (HTTPRoutes whose parentRef is a Service). A request whose destination names none
// of these Services is egress, which the node replica's own flags govern.
type Mesh struct {
	// ClusterDomain is the cluster's DNS suffix; "cluster.local" when empty.
	ClusterDomain string `json:"clusterDomain,omitempty"`
	// RoutesVersion is a hash of Services alone (empty when not computed). When it is
	// unchanged from one snapshot to the next, only backends and endpoints changed,
	// and a node replica keeps its compiled mesh routes.
	RoutesVersion string `json:"routesVersion,omitempty"`
	// Services are the Services reachable east-west (every Service but ExternalName
	// ones), sorted by Namespace, then Name.
	Services []MeshService `json:"services,omitempty"`
	// Backends are the upstream groups that only mesh routes use, sorted by Name and
	// never repeating a name of Snapshot.Backends. A node replica serves the union of
	// both lists; edge replicas need neither this list nor Services.
	Backends []Backend `json:"backends,omitempty"`
	// DefaultOutlierDetection applies, on node replicas, to every backend that has no
	// OutlierDetection of its own, so that a Service with no policy still gets its
	// failing endpoints ejected. Nil means no default.
	DefaultOutlierDetection *OutlierDetection `json:"defaultOutlierDetection,omitempty"`
}

// MeshService is one cluster Service as a destination of east-west traffic.
type MeshService struct {
	// Namespace and Name identify the Service.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// ClusterIPs are the Service's cluster IP addresses; empty for a headless
	// Service, which is then reachable by name only.
	ClusterIPs []string `json:"clusterIPs,omitempty"`
	// Ports are the Service's TCP ports, sorted by Port; empty (not null) for a
	// Service without one.
	Ports []MeshPort `json:"ports"`
}

// MeshPort is one port of a Service and what its requests go through.
type MeshPort struct {
	// Name is the Service port's name; may be empty for a single-port Service.
	Name string `json:"name,omitempty"`
	// Port is the Service port number that callers address.
	Port int `json:"port"`
	// Backend names the entry, in Snapshot.Backends or Mesh.Backends, of this port's
	// own endpoints: the destination of CONNECT tunnels to the port. A port without
	// endpoints still names it (the entry then has none), so that endpoints coming
	// and going never change Services. Empty only when the port cannot be a backend
	// at all (an appProtocol that needs a BackendTLSPolicy it lacks, or an unusable
	// one); its default route then answers 500.
	Backend string `json:"backend,omitempty"`
	// Routes are matched like a VirtualHost's routes (Hostnames are empty: the
	// destination already chose the Service), sorted by Name. They are the accepted
	// HTTPRoutes whose parentRef is this Service, with this port (by number, or by
	// name in sectionName) or no port, or, when there is none, one default route
	// named "<namespace>/<service>" that sends everything to Backend and retries
	// connect failures. A request no route matches is answered 404, as at a Gateway.
	Routes []Route `json:"routes,omitempty"`
}
