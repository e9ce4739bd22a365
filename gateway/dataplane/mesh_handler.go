package dataplane

import (
	"net/http"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/mesh"
	"github.com/switchyard-dev/switchyard/gateway/observe"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
)

// meshHandler serves the node socket. Each request is identified by the Pod that
// sent it, then goes by its destination: a Service of the mesh is served at L7 with
// the route table of the port named (or tunnelled at L4 for CONNECT); anything else
// is egress.
type meshHandler struct {
	engine *Engine
	node   *node
}

func (h *meshHandler) ServeHTTP(raw http.ResponseWriter, r *http.Request) {
	var meshes *meshSet
	if gen := h.engine.current.Load(); gen != nil {
		meshes = gen.mesh
	}
	var observer *observe.Listener
	var index *mesh.Index
	if meshes != nil {
		observer, index = meshes.observer, meshes.index
	}
	x, r := observer.Begin(raw, r)
	defer x.End()
	w := x.Writer()
	info := &x.Info
	info.Listener = MeshListener
	info.Host = r.Host
	ip, ok := mesh.RemoteAddr(r.RemoteAddr)
	if ok {
		info.Caller, ok = h.node.callers.Lookup(ip)
	}
	if !ok {
		// Serving anyone but the node's own Pods would make the replica an open
		// proxy into the cluster.
		answer(w, info, reqctx.FlagUnknownCaller, http.StatusForbidden, "the sender is not a Pod of this node")
		return
	}
	connect := r.Method == http.MethodConnect
	defaultPort := mesh.DefaultHTTPPort
	switch {
	case connect:
		defaultPort = 0
		info.Flags |= reqctx.FlagTunnel
	case r.URL.Scheme == "https":
		defaultPort = mesh.DefaultHTTPSPort
	}
	dest, err := mesh.ParseDestination(r.Host, defaultPort)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r = reqctx.With(r, info)
	svc := index.Resolve(dest, info.Caller.Namespace)
	if svc == nil {
		h.serveEgress(raw, w, r, info, dest, connect)
		return
	}
	key := mesh.EdgeKey{CallerNamespace: info.Caller.Namespace, CallerWorkload: info.Caller.Workload,
		ServiceNamespace: svc.Spec.Namespace, Service: svc.Spec.Name}
	port := svc.Port(dest.Port)
	if port == nil {
		answer(w, info, reqctx.FlagNoRoute, http.StatusNotFound, "the service has no such port")
		h.node.edges.Record(key, time.Since(info.Start), false)
		return
	}
	info.VirtualHost = port.Name
	info.ListenerPort = dest.Port
	if connect {
		h.node.tunnels.ServeService(raw, w, r, h.engine.backends.Pool(port.Spec.Backend), func(res mesh.TunnelResult) {
			h.node.edges.Record(key, res.ConnectTime, !res.Opened)
		})
		return
	}
	sw := &statusRecorder{ResponseWriter: w}
	h.serveRoute(sw, r, x, port)
	h.node.edges.Record(key, time.Since(info.Start), sw.failed())
}

// serveRoute serves an HTTP request to a Service port with the port's route table.
func (h *meshHandler) serveRoute(w http.ResponseWriter, r *http.Request, x *observe.Exchange, port *mesh.Port) {
	info := &x.Info
	entry := port.Table.Lookup(r)
	if entry == nil {
		answer(w, info, reqctx.FlagNoRoute, http.StatusNotFound, "no route of the service matches this request")
		return
	}
	info.Route = entry.Route.Name
	info.RuleIndex = entry.RuleIndex
	info.MatchedPrefix = entry.MatchedPrefix
	next := entry.Handler
	if rule, ok := next.(*observedRule); ok {
		x.Route(rule.observer)
		next = rule.next
	}
	next.ServeHTTP(w, r)
}

// serveEgress serves a request whose destination is outside the mesh.
func (h *meshHandler) serveEgress(raw, w http.ResponseWriter, r *http.Request, info *reqctx.Info, dest mesh.Destination, connect bool) {
	info.Flags |= reqctx.FlagEgress
	key := mesh.EdgeKey{CallerNamespace: info.Caller.Namespace, CallerWorkload: info.Caller.Workload, Egress: dest.Host}
	if connect {
		h.node.egress.ServeConnect(raw, w, r, dest, func(res mesh.TunnelResult) {
			h.node.edges.Record(key, res.ConnectTime, !res.Opened && info.Flags&reqctx.FlagEgressDenied == 0)
		})
		return
	}
	sw := &statusRecorder{ResponseWriter: w}
	h.node.egress.ServeHTTP(sw, r)
	h.node.edges.Record(key, time.Since(info.Start), sw.failed())
}

// answer answers a request in a backend's place, naming why in the
// X-Switchyard-Error header and flagging it in info.
func answer(w http.ResponseWriter, info *reqctx.Info, flag reqctx.Flags, status int, msg string) {
	info.Flags |= flag
	w.Header().Set("X-Switchyard-Error", flag.String())
	http.Error(w, msg, status)
}

// statusRecorder notes the status of a response, for edge statistics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends what is buffered, headers included.
func (w *statusRecorder) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the ResponseWriter underneath, for http.ResponseController.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// failed reports whether the response counts as a failure: a 5xx answer.
func (w *statusRecorder) failed() bool { return w.status >= 500 }
