package standalone

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// stateStore is the rollout.Store of standalone mode. It keeps, per Rollout, the
// status the rollout driver writes and the generation of the Rollout's spec, which
// no API server counts here: in memory, and with a directory also in one JSON file
// per Rollout, so that rollouts carry on where they were after a restart.
type stateStore struct {
	// dir holds the files; empty keeps everything in memory.
	dir string

	mu      sync.Mutex
	records map[types.NamespacedName]*record
}

// record is what the store keeps of one Rollout, and the content of its file.
type record struct {
	// Namespace and Name identify the Rollout; file names do not need to.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Generation counts the changes of the Rollout's spec, as metadata.generation
	// does in a cluster: a new generation restarts the rollout from its first step.
	Generation int64 `json:"generation"`
	// SpecHash identifies the spec of that generation.
	SpecHash string `json:"specHash"`
	// UID identifies the Rollout object, as metadata.uid does in a cluster: a
	// Rollout removed from the files and added back is a new object with a new UID,
	// which the rollout driver tells from the old one even at the same generation.
	// Files written before UIDs were kept have none, which serves as well.
	UID types.UID `json:"uid,omitempty"`
	// Status is the status the rollout driver last saved.
	Status v1alpha1.RolloutStatus `json:"status"`
}

// stateDirMode keeps the state private to the gateway's user; tempPrefix starts the
// names of files being written.
const (
	stateDirMode = 0o700
	tempPrefix   = ".tmp-"
)

// openStateStore opens the store, reading the files in dir (creating it if need be).
// A file that cannot be read is skipped and reported in the returned warnings; the
// rollout it held starts again from its first step.
func openStateStore(dir string) (*stateStore, []error, error) {
	s := &stateStore{dir: dir, records: map[types.NamespacedName]*record{}}
	if dir == "" {
		return s, nil, nil
	}
	if err := os.MkdirAll(dir, stateDirMode); err != nil {
		return nil, nil, fmt.Errorf("state directory: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("state directory: %w", err)
	}
	var warnings []error
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(dir, name)
		switch {
		case strings.HasPrefix(name, tempPrefix):
			// A write that a crash interrupted; the file it was replacing is intact.
			_ = os.Remove(path)
		case !e.IsDir() && strings.HasSuffix(name, ".json"):
			if err := s.readFile(path); err != nil {
				warnings = append(warnings, err)
			}
		}
	}
	return s, warnings, nil
}

func (s *stateStore) readFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if rec.Name == "" || filepath.Base(path) != fileName(rec.key()) {
		return fmt.Errorf("%s: not a rollout state file of this version", path)
	}
	s.records[rec.key()] = &rec
	return nil
}

func (r *record) key() types.NamespacedName {
	return types.NamespacedName{Namespace: r.Namespace, Name: r.Name}
}

// fileName is a record's file name: readable, safe whatever the Rollout's name
// holds, and unique through a hash of the full name.
func fileName(key types.NamespacedName) string {
	readable := []byte(key.Namespace + "_" + key.Name)
	for i, c := range readable {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '.' && c != '_' {
			readable[i] = '-'
		}
	}
	if len(readable) > 80 {
		readable = readable[:80]
	}
	sum := sha256.Sum256([]byte(key.String()))
	return "rollout-" + string(readable) + "-" + hex.EncodeToString(sum[:8]) + ".json"
}

// Load implements rollout.Store.
func (s *stateStore) Load(key types.NamespacedName) (v1alpha1.RolloutStatus, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.records[key]
	if !ok {
		return v1alpha1.RolloutStatus{}, false, nil
	}
	return *rec.Status.DeepCopy(), true, nil
}

// Save implements rollout.Store. A Rollout that has no record was removed from the
// configuration while the driver was deciding about it; its status is dropped.
func (s *stateStore) Save(_ context.Context, key types.NamespacedName, status v1alpha1.RolloutStatus) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.records[key]
	if !ok {
		return nil
	}
	rec.Status = *status.DeepCopy()
	return s.write(rec)
}

// generation returns the generation of a Rollout's spec, the stored one while the
// spec is the same, else one more than before (1 for a new Rollout), and the UID of
// the Rollout, which a new Rollout gets here. A write error is returned with them,
// which are in force in memory either way.
func (s *stateStore) generation(key types.NamespacedName, spec v1alpha1.RolloutSpec) (int64, types.UID, error) {
	data, err := json.Marshal(spec)
	if err != nil {
		return 0, "", err
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.records[key]
	if ok && rec.SpecHash == hash {
		return rec.Generation, rec.UID, nil
	}
	if !ok {
		rec = &record{Namespace: key.Namespace, Name: key.Name, UID: types.UID(rand.Text())}
		s.records[key] = rec
	}
	rec.Generation++
	rec.SpecHash = hash
	return rec.Generation, rec.UID, s.write(rec)
}

// statuses returns a copy of every stored status.
func (s *stateStore) statuses() map[types.NamespacedName]v1alpha1.RolloutStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[types.NamespacedName]v1alpha1.RolloutStatus, len(s.records))
	for key, rec := range s.records {
		out[key] = *rec.Status.DeepCopy()
	}
	return out
}

// prune forgets every Rollout not in keep, as deleting a Rollout in a cluster
// deletes its status: one added again later starts from its first step.
func (s *stateStore) prune(keep map[types.NamespacedName]bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for key := range s.records {
		if keep[key] {
			continue
		}
		delete(s.records, key)
		if s.dir != "" {
			if err := os.Remove(filepath.Join(s.dir, fileName(key))); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// write replaces a record's file atomically: a crash leaves either the old file or
// the new one, never a part of either.
func (s *stateStore) write(rec *record) error {
	if s.dir == "" {
		return nil
	}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.dir, tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("saving rollout state: %w", err)
	}
	_, err = tmp.Write(append(data, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(s.dir, fileName(rec.key())))
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("saving rollout state: %w", err)
	}
	syncDir(s.dir)
	return nil
}

// syncDir makes a rename in dir durable. Some systems cannot sync a directory; the
// rename is then as durable as they make it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
