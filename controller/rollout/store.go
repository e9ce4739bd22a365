package rollout

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// Store keeps each Rollout's status where translation reads it: in a cluster the
// Rollout's status subresource, in standalone mode files under --state-dir (or
// memory). The Driver loads a rollout's status once, when it first meets the
// rollout, and from then on trusts its own copy and writes every change through.
type Store interface {
	// Load returns the stored status of a Rollout, and whether there is one.
	Load(key types.NamespacedName) (v1alpha1.RolloutStatus, bool, error)
	// Save stores a Rollout's status. The driver keeps its own copy either way and
	// tries again at its next tick when Save fails.
	Save(ctx context.Context, key types.NamespacedName, status v1alpha1.RolloutStatus) error
}

// MemoryStore is a Store in memory: state that lasts as long as the process.
type MemoryStore struct {
	mu       sync.Mutex
	statuses map[types.NamespacedName]v1alpha1.RolloutStatus
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{statuses: map[types.NamespacedName]v1alpha1.RolloutStatus{}}
}

// Load implements Store.
func (m *MemoryStore) Load(key types.NamespacedName) (v1alpha1.RolloutStatus, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.statuses[key]
	return *st.DeepCopy(), ok, nil
}

// Save implements Store.
func (m *MemoryStore) Save(_ context.Context, key types.NamespacedName, status v1alpha1.RolloutStatus) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.statuses[key] = *status.DeepCopy()
	return nil
}

// Delete forgets a Rollout's status.
func (m *MemoryStore) Delete(key types.NamespacedName) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.statuses, key)
}
