package translate

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// Labels that start each hashed stream, so that the digest of one kind of stream can
// never equal the digest of another.
const (
	listenersLabel    = "switchyard listeners\x00"
	backendsLabel     = "switchyard backends\x00"
	versionLabel      = "switchyard snapshot version\x00"
	meshServicesLabel = "switchyard mesh services\x00"
	meshBackendsLabel = "switchyard mesh backends\x00"
	meshLabel         = "switchyard mesh\x00"
)

// hashChunk is how many encoded values one worker hashes at a time. Chunk boundaries
// depend on this constant only, never on the number of workers, so that versions do
// not depend on the machine.
const hashChunk = 256

// versions are the hashes of a snapshot's content.
type versions struct {
	// routes is a hash of the listeners (Snapshot.RoutesVersion), meshRoutes one of
	// the mesh's Services (Mesh.RoutesVersion, empty without a mesh), and version
	// one of the whole content (Snapshot.Version). edge is the version of the
	// content without the mesh (Snapshot.EdgeVersion), which is what edge replicas
	// are sent; it equals version when there is no mesh.
	routes, meshRoutes, version, edge string
}

// contentVersions returns the snapshot's routes version and its version; see
// snapshotVersions.
func contentVersions(s *config.Snapshot) (routesVersion, version string) {
	v := snapshotVersions(s)
	return v.routes, v.version
}

// snapshotVersions hashes the snapshot's content (Version and the RoutesVersions
// aside), so that equal configurations get equal versions and the data plane can
// skip no-op updates and keep its route tables when only backends change.
//
// The listeners, the backends and the mesh's Services and backends are each encoded
// once, piece by piece (see listenerPieces), and the version hashes the schema
// version and the parts' full digests. The digests have a fixed length, so that
// framing is unambiguous; a snapshot without a mesh hashes exactly as before the
// mesh existed.
func snapshotVersions(s *config.Snapshot) versions {
	listeners := digestPieces(listenersLabel, listenerPieces(s.Listeners))
	backends := digestPieces(backendsLabel, backendPieces(s.Backends))
	h := sha256.New()
	h.Write([]byte(versionLabel))
	h.Write(binary.AppendVarint(nil, int64(s.SchemaVersion)))
	h.Write(listeners)
	h.Write(backends)
	var meshRoutes string
	// Sum leaves the hash's state alone, so the digest so far is the version of the
	// snapshot without its mesh.
	edge := shortHex(h.Sum(nil))
	if s.Mesh != nil {
		services, mesh := meshDigests(s.Mesh)
		meshRoutes = shortHex(services)
		h.Write(mesh)
	}
	return versions{routes: shortHex(listeners), meshRoutes: meshRoutes, version: shortHex(h.Sum(nil)), edge: edge}
}

// meshDigests returns the digest of the mesh's Services and that of the whole mesh
// (its settings, Services and backends; RoutesVersion aside).
func meshDigests(m *config.Mesh) (services, mesh []byte) {
	services = digestPieces(meshServicesLabel, meshServicePieces(m.Services))
	backends := digestPieces(meshBackendsLabel, backendPieces(m.Backends))
	shell := *m
	shell.RoutesVersion, shell.Services, shell.Backends = "", nil, nil
	return services, digestPieces(meshLabel, []any{&shell, services, backends})
}

// meshServicePieces lists values whose JSON encodings spell out the Services, as
// listenerPieces does for listeners: the count, then for each Service the Service
// without its ports and their count, then for each port the port without its routes
// and their count, then each route.
func meshServicePieces(services []config.MeshService) []any {
	n := 1 + 2*len(services)
	for i := range services {
		for j := range services[i].Ports {
			n += 2 + len(services[i].Ports[j].Routes)
		}
	}
	pieces := make([]any, 0, n)
	pieces = append(pieces, len(services))
	for i := range services {
		shell := services[i]
		shell.Ports = nil
		pieces = append(pieces, &shell, len(services[i].Ports))
		for j := range services[i].Ports {
			port := services[i].Ports[j]
			routes := port.Routes
			port.Routes = nil
			pieces = append(pieces, &port, len(routes))
			for k := range routes {
				pieces = append(pieces, &routes[k])
			}
		}
	}
	return pieces
}

// listenerPieces lists values whose JSON encodings, in order, spell out the listeners:
// for each listener the listener without its virtual hosts and their count, then for
// each virtual host the virtual host without its routes and their count, then each
// route. JSON values are self-delimiting and the counts fix the nesting, so two
// different lists of listeners never give the same sequence of encodings. Encoding
// piece by piece keeps no large buffer and lets pieces be hashed in parallel.
func listenerPieces(listeners []config.Listener) []any {
	n := 1 + 2*len(listeners)
	for i := range listeners {
		for j := range listeners[i].VirtualHosts {
			n += 2 + len(listeners[i].VirtualHosts[j].Routes)
		}
	}
	pieces := make([]any, 0, n)
	pieces = append(pieces, len(listeners))
	for i := range listeners {
		shell := listeners[i]
		shell.VirtualHosts = nil
		pieces = append(pieces, &shell, len(listeners[i].VirtualHosts))
		for j := range listeners[i].VirtualHosts {
			vh := listeners[i].VirtualHosts[j]
			routes := vh.Routes
			vh.Routes = nil
			pieces = append(pieces, &vh, len(routes))
			for k := range routes {
				pieces = append(pieces, &routes[k])
			}
		}
	}
	return pieces
}

// backendPieces lists the backends' count and then each backend.
func backendPieces(backends []config.Backend) []any {
	pieces := make([]any, 0, 1+len(backends))
	pieces = append(pieces, len(backends))
	for i := range backends {
		pieces = append(pieces, &backends[i])
	}
	return pieces
}

// digestPieces is the SHA-256 digest of the label, the number of pieces and the
// digests of consecutive chunks of the pieces' JSON encodings. Large inputs are hashed
// on all processors; the result does not depend on how many there are.
func digestPieces(label string, pieces []any) []byte {
	chunks := (len(pieces) + hashChunk - 1) / hashChunk
	sums := make([]byte, chunks*sha256.Size)
	hashChunkAt := func(h hash.Hash, enc *json.Encoder, c int) {
		h.Reset()
		for _, p := range pieces[c*hashChunk : min(len(pieces), (c+1)*hashChunk)] {
			if err := enc.Encode(p); err != nil {
				// The IR is plain data and always marshals; hash the error text rather
				// than give two different snapshots the same version.
				h.Write([]byte(err.Error()))
			}
		}
		h.Sum(sums[c*sha256.Size : c*sha256.Size])
	}
	var next atomic.Int64
	work := func() {
		h := sha256.New()
		enc := json.NewEncoder(h)
		for c := int(next.Add(1) - 1); c < chunks; c = int(next.Add(1) - 1) {
			hashChunkAt(h, enc, c)
		}
	}
	if workers := min(runtime.GOMAXPROCS(0), chunks); workers > 1 {
		var wg sync.WaitGroup
		for range workers {
			wg.Go(work)
		}
		wg.Wait()
	} else {
		work()
	}
	h := sha256.New()
	h.Write([]byte(label))
	h.Write(binary.AppendUvarint(nil, uint64(len(pieces))))
	h.Write(sums)
	return h.Sum(nil)
}

// shortHex is the first 16 hex digits of a digest: short enough to read in logs, and
// long enough that distinct configurations do not collide in practice.
func shortHex(digest []byte) string {
	return hex.EncodeToString(digest[:8])
}
