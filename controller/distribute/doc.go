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
//	GET /v1/snapshots?node=<name>&role=<edge|node>&schema=<n>[&have=<version>]
//
// node names the replica, role selects its view of the configuration (see ForRole),
// schema is the newest config.SchemaVersion the replica understands, and have is the
// version it already runs, if any, which the server then does not send again. The
// answer is 200 with Content-Type application/vnd.switchyard.frames and the headers
// Switchyard-Stream (this stream's id, for acks) and Switchyard-Heartbeat-Ms (the
// heartbeat interval). Errors: 400 for bad parameters or a replica schema newer than
// the server's, 401 for a missing or rejected token, 426 for a replica schema too old
// to serve, 503 while the server shuts down or cannot check tokens.
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
//     sent.
//   - type 2, heartbeat: empty, sent every heartbeat interval, so that a replica that
//     hears nothing for three intervals knows the stream is dead.
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
package distribute
