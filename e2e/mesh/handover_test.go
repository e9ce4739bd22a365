package mesh_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Load of the hand-over test: loadClients per node for at least loadFor, and until
// the roll is done.
const (
	loadClients = 2
	loadFor     = 5 * time.Second
)

// testHandover replaces every node replica under load: a change to the DaemonSet's
// template rolls it with a surge Pod started beside the old one on each node (both
// listen on the node's proxy port through SO_REUSEPORT), and the old one is stopped
// once the new one is ready. Callers on both nodes, half on kept-alive connections
// and half on a new connection per request, must see no failed request.
func (m *mesh) testHandover(t *testing.T, callers map[string]caller) {
	before := m.waitNodeReplicas(t, "")
	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for node, c := range callers {
		for i := range loadClients {
			client := c.client(i%2 == 0)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					sent.Add(1)
					r, err := get(client, serviceURL("echo", "/handover"), nil)
					if err != nil || r.status != http.StatusOK {
						failed.Add(1)
						firstFailure.CompareAndSwap(nil, fmt.Sprintf("from %s: status %d, error %v, body %.200s", node, r.status, err, r.body))
					}
				}
			}()
		}
	}
	started := time.Now()
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{
		"metadata": map[string]any{"annotations": map[string]any{"revision": "2"}}}}})
	_, err := m.kube.AppsV1().DaemonSets(systemNamespace).Patch(context.Background(), "node-gateway",
		types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	must(t, err)
	after := m.waitNodeReplicas(t, "2")
	if rest := loadFor - time.Since(started); rest > 0 {
		time.Sleep(rest)
	}
	close(stop)
	wg.Wait()
	for node, p := range after {
		if before[node].UID == p.UID {
			t.Errorf("node %s still runs replica %s", node, p.Name)
		}
	}
	t.Logf("%d requests during the roll (%v), %d failed", sent.Load(), time.Since(started).Round(time.Millisecond), failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed while the node replicas were replaced; first: %v", failed.Load(), sent.Load(), firstFailure.Load())
	}
	if sent.Load() < 100 {
		t.Errorf("only %d requests were sent during the roll", sent.Load())
	}
}
