// Package distribute is the controller's side of configuration distribution: it pushes
// every published config.Snapshot to the gateway replicas connected to it, tracks
// which version each replica has applied, and serves each replica only what its role
// needs, in the schema version the replica speaks. The replica's side is package
// gateway/agent.
//
// # Wire format
//
// Everything runs over HTTPS (TLS 1.2 or later; HTTP/2 when both sides offer it) and
// every request carries "Authorization: Bearer <token>", which the server's
// Authenticator checks. Errors are answered with a status code and a one-line,
// plain-text explanation.
//
// A replica opens one long-lived stream:
//
//	GET /v1/snapshots?node=<name>&role=<edge|node>&schema=<n>[&instance=<id>][&have=<version>][&delta=1[&base=<digest>]]
//
// node names the replica, role selects its view of the configuration (see ForRole),
// schema is the newest config.SchemaVersion the replica understands, instance is a
// random id (at most 64 bytes) the replica process draws once when it starts, and have is the
// version it already runs, if any, which the server then does not send again. delta=1
// says the replica understands delta frames, and base is the digest of the snapshot
// lines it holds to apply them to (see below). The
// answer is 200 with Content-Type application/vnd.switchyard.frames and the headers
// Switchyard-Stream (this stream's id, for acks) and Switchyard-Heartbeat-Ms (the
// heartbeat interval). Errors: 400 for bad parameters or a replica schema newer than
// the server's, 401 for a missing or rejected token, 409 when the stream would replace
// an open stream of another identity (see below), 426 for a replica schema too old to
// serve, 503 while the server shuts down or cannot check tokens.
//
// The server knows a replica by node, role and instance. A new stream with the same
// three is the same replica reconnecting: it replaces the open one, which the server
// ends (its connection is dead or about to be). Replicas that share a node and role but
// not an instance, such as two Pods of one Deployment on one node, are separate
// replicas with a stream each. A replica too old to send an instance has the empty
// instance, so two such replicas on one node and role still replace each other. A
// stream never replaces an open stream that authenticated as another identity: it is
// answered 409 instead.
//
// The body is a sequence of frames, each a 5-byte header (one byte frame type, then
// the payload length as a big-endian uint32) followed by the payload:
//
//   - type 1, snapshot: one config.Snapshot as gzip-compressed, newline-delimited
//     JSON. The first line is {"head": <the snapshot without routes and backends>};
//     each further line carries a run of routes of one virtual host,
//     {"listener": i, "virtualHost": j, "routes": [...]}, or a run of backends,
//     {"backends": [...]}, to be appended in order. Splitting lets both ends encode
//     and decode a large configuration on every core; zcat piped to jq reads it. A
//     replica always gets the newest version; versions published while it was busy
//     are skipped, and a version whose content for the replica did not change is not
//     sent. Runs end where the content says: after a route or backend whose name
//     hashes to a multiple of 16 (routes) or 8 (backends), or at 250 items, so that
//     adding, removing or changing one item changes one line and leaves every other
//     line byte-identical.
//   - type 2, heartbeat: empty, sent every heartbeat interval, so that a replica that
//     hears nothing for three intervals knows the stream is dead.
//   - type 3, delta: a snapshot as the lines that changed since the replica's base,
//     gzip-compressed like a snapshot frame. The first line is
//     {"delta": {"base": "<digest>", "digest": "<digest>", "lines": n}}; each further
//     line is either a line of the new snapshot, as it is, or a reference
//     {"same": [k, count]} to lines k to k+count-1 of the base. The replica appends
//     them in order to rebuild the n lines of the new snapshot, then reads them as a
//     snapshot frame. A line's hash is the first 16 bytes of its SHA-256 (newline
//     included) and a snapshot's digest, in hex, the first 16 bytes of the SHA-256 of
//     its line hashes in order. A replica refuses a delta whose base is not the digest
//     of the lines it holds, or that rebuilds lines whose digest is not the announced
//     one: it closes the stream and reconnects without a base, and so is sent the
//     whole snapshot. It never runs a configuration rebuilt from the wrong base.
//
// Only a replica that asked with delta=1 is sent delta frames, and only when the server
// knows its base: the lines of the last frame sent on the same stream (frames arrive in
// order, and a replica keeps the lines of every frame it reads, whether or not they
// apply), or, at the start of a stream, the lines of the server's newest snapshot for
// the replica when their digest is the base the replica declared. Otherwise, and when
// a delta would not be smaller, the snapshot is sent whole. The server computes each
// delta once per base and snapshot, for every replica that holds that base.
//
// Readers ignore frame types they do not know.
//
// A replica reports what it runs with
//
//	POST /v1/acks   {"stream": "<id>", "applied": "<version>", "rejected": "<version>", "error": "<apply error>"}
//
// after every snapshot it applies or rejects and, as a keepalive, once per heartbeat
// interval. The body is at most MaxAckBytes. The answer is 204; 404 means the stream
// is gone (the replica should reconnect), 403 that the ack's token belongs to another
// identity than the stream's. The server closes a stream whose replica has sent
// nothing for three heartbeat intervals.
//
// # Request outcomes
//
// An ack may also carry the replica's request outcomes per backend (package
// gateway/outcome), cumulative since the replica process started:
//
//	"outcomes": {"<backend>": {"requests": n, "errors": n, "latency": [n, ...]}, ...}
//
// A replica reports only the backends whose totals changed since the last ack the
// server accepted on the same stream (every backend that has seen a request, on a new
// stream), at most MaxAckOutcomes per ack, those reported longest ago first; when some
// are left out it acks again soon, up to eight times per heartbeat interval. An idle
// replica's keepalives carry nothing more. Every ack stays within LegacyMaxAckBytes,
// the limit of servers that predate the field and ignore it. The server refuses (400)
// an ack with more than MaxAcceptedOutcomes backends and ignores reports that are
// not counts or name a backend longer than MaxOutcomeNameBytes.
//
// The server keeps monotonic fleet totals per backend (Server.BackendOutcome): each
// report adds what changed since the same replica's (node, role, instance) previous
// report of that backend, and a report below the previous one, or the first of an
// instance, is new in full, since its process restarted or is another one. Forgetting
// a replica never lowers the fleet totals. A replica forgotten and back again, and
// every replica after the server starts (a new leader), report totals of which part
// may be counted already; readers take differences between readings and should
// expect such a step after a controller starts.
//
// # Service graph edges
//
// A node replica's ack may also carry the cumulative outcomes of the requests it
// forwarded per edge of the service graph, from a calling workload to a Service:
//
//	"edges": [{"caller": "<ns>/<workload>", "callee": "<ns>/<service>", "requests": n, "errors": n, "latency": [n, ...]}, ...]
//
// They are chosen, bounded (MaxAckEdges per ack, within the same LegacyMaxAckBytes as
// the outcome reports) and added up (Server.EdgeOutcomes) exactly as outcome reports
// are. The server refuses (400) an ack with more than MaxAcceptedEdges edges and
// ignores edges with an empty side or a side longer than MaxEdgeNameBytes.
package distribute
