package distribute

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"

	"github.com/switchyard-dev/switchyard/gateway/outcome"
)

// The HTTP paths, headers and content type of the protocol described in the package
// documentation.
const (
	PathSnapshots     = "/v1/snapshots"
	PathAcks          = "/v1/acks"
	HeaderStream      = "Switchyard-Stream"
	HeaderHeartbeatMs = "Switchyard-Heartbeat-Ms"
	// HeaderReplicas, on the answer to an ack, is how many replicas of the acking
	// replica's role have a stream open (itself included). Replicas divide global
	// rate limits by it while Redis is unreachable.
	HeaderReplicas    = "Switchyard-Replicas"
	ContentTypeFrames = "application/vnd.switchyard.frames"
)

// Limits of the protocol.
const (
	// FrameHeaderSize is the length of a frame header: type and payload length.
	FrameHeaderSize = 5
	// DefaultMaxFrameBytes bounds the payload of one frame, and the decompressed size
	// of one snapshot, on the reading side.
	DefaultMaxFrameBytes = 256 << 20
	// MaxAckBytes bounds the body of an ack: room for MaxAcceptedOutcomes reports of
	// long backend names and MaxAcceptedEdges of long edge names. Replicas keep their
	// acks within LegacyMaxAckBytes.
	MaxAckBytes = 1 << 20
	// MaxAckErrorBytes is how much of an apply error an ack carries; the rest is cut.
	MaxAckErrorBytes = 4 << 10
)

// FrameType says what a frame's payload is.
type FrameType byte

const (
	// FrameSnapshot carries the gzip-compressed JSON of one config.Snapshot.
	FrameSnapshot FrameType = 1
	// FrameHeartbeat carries nothing; it shows the stream is alive.
	FrameHeartbeat FrameType = 2
	// FrameDelta carries a snapshot as the changes from the one the replica last
	// received (see SnapshotLines.ApplyDelta); only replicas that ask for deltas get it.
	FrameDelta FrameType = 3
)

// ErrFrameTooLarge is returned by ReadFrame and DecodeSnapshot for input over their
// size limit.
var ErrFrameTooLarge = errors.New("frame too large")

// StreamParams are the query parameters of a snapshot stream request.
type StreamParams struct {
	// Node names the replica.
	Node string
	// Role is the replica's role: RoleEdge or RoleNode.
	Role string
	// Schema is the newest config.SchemaVersion the replica understands.
	Schema int
	// Have is the version the replica already runs, or empty.
	Have string
	// Delta says the replica understands delta frames.
	Delta bool
	// Base is the digest (SnapshotLines.Digest) of the snapshot the replica holds to
	// rebuild deltas from, or empty. The server computes its first delta against it
	// when its own newest snapshot for the replica has that digest.
	Base string
	// Instance tells apart replicas that share Node and Role (for example two Pods
	// of one Deployment on one node): a random id the replica draws once per process.
	// A stream with the same node, role and instance as an open one replaces it; one
	// with another instance is another replica. Empty is a replica too old to send
	// one, which replaces any stream of its node and role without an instance.
	Instance string
}

// StreamURL returns the URL of the snapshot stream at the controller whose base URL
// is base (scheme and host; any path is replaced).
func StreamURL(base *url.URL, p StreamParams) string {
	u := *base
	u.Path = PathSnapshots
	u.RawPath = ""
	q := url.Values{}
	q.Set("node", p.Node)
	q.Set("role", p.Role)
	q.Set("schema", strconv.Itoa(p.Schema))
	if p.Instance != "" {
		q.Set("instance", p.Instance)
	}
	if p.Have != "" {
		q.Set("have", p.Have)
	}
	if p.Delta {
		q.Set("delta", "1")
		if p.Base != "" {
			q.Set("base", p.Base)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// AcksURL returns the URL acks are posted to at the controller whose base URL is base.
func AcksURL(base *url.URL) string {
	u := *base
	u.Path = PathAcks
	u.RawPath = ""
	u.RawQuery = ""
	return u.String()
}

// Ack is the body of POST /v1/acks: what a replica runs and what it last rejected.
type Ack struct {
	// Stream is the id the server gave the replica's stream.
	Stream string `json:"stream"`
	// Applied is the version the replica runs, empty when it runs none.
	Applied string `json:"applied,omitempty"`
	// Rejected is the newest version the replica failed to apply, when it has failed
	// to apply anything since it last applied a snapshot.
	Rejected string `json:"rejected,omitempty"`
	// Error is why Rejected failed.
	Error string `json:"error,omitempty"`
	// Outcomes are the cumulative request outcomes (since the replica started) of the
	// backends whose totals changed since the last ack the server accepted on this
	// stream, by backend name: at most MaxAckOutcomes of them, the rest in later
	// acks. The first acks on a stream report every backend that has seen a request.
	// Empty when nothing changed; older replicas never send it and older servers
	// ignore it.
	Outcomes map[string]outcome.Totals `json:"outcomes,omitempty"`
	// Edges are the cumulative request outcomes (since the replica started) of the
	// service graph's edges, caller -> callee, that node replicas forward, chosen as
	// Outcomes are: at most MaxAckEdges of them, each edge once. Older replicas never
	// send it and older servers ignore it.
	Edges []EdgeReport `json:"edges,omitempty"`
}

// WriteFrame writes one frame.
func WriteFrame(w io.Writer, t FrameType, payload []byte) error {
	if uint64(len(payload)) > 1<<32-1 {
		return fmt.Errorf("%w: %d bytes do not fit a frame", ErrFrameTooLarge, len(payload))
	}
	_, err := w.Write(appendFrame(nil, t, payload))
	return err
}

// appendFrame appends a frame header and payload to b.
func appendFrame(b []byte, t FrameType, payload []byte) []byte {
	b = append(b, byte(t))
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

// ReadFrame reads one frame whose payload is at most maxPayload bytes. It grows its
// buffer as data arrives rather than trusting the length up front, so a corrupt or
// hostile length costs no more memory than the bytes actually sent.
func ReadFrame(r io.Reader, maxPayload int64) (FrameType, []byte, error) {
	var hdr [FrameHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	t := FrameType(hdr[0])
	n := int64(binary.BigEndian.Uint32(hdr[1:]))
	if n > maxPayload {
		return 0, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, maxPayload)
	}
	buf := bytes.NewBuffer(make([]byte, 0, min(n, 1<<20)))
	if _, err := io.CopyN(buf, r, n); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, fmt.Errorf("reading %d-byte frame: %w", n, err)
	}
	return t, buf.Bytes(), nil
}
