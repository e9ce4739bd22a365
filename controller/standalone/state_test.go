package standalone

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

func openStore(t *testing.T, dir string) *stateStore {
	t.Helper()
	s, warnings, err := openStateStore(dir)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("openStateStore: %v %v", err, warnings)
	}
	return s
}

func spec(weights ...int32) v1alpha1.RolloutSpec {
	var s v1alpha1.RolloutSpec
	for _, w := range weights {
		s.Steps = append(s.Steps, v1alpha1.RolloutStep{Weight: w})
	}
	return s
}

func TestStateStoreKeepsStatusAndGenerationAcrossRestarts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	key := types.NamespacedName{Namespace: "shop", Name: "reviews"}
	s := openStore(t, dir)
	gen, uid, err := s.generation(key, spec(10, 100))
	if gen != 1 || uid == "" || err != nil {
		t.Fatalf("first generation %d, uid %q, %v", gen, uid, err)
	}
	if gen, _, _ := s.generation(key, spec(10, 100)); gen != 1 {
		t.Fatalf("the same spec got generation %d", gen)
	}
	status := v1alpha1.RolloutStatus{Phase: v1alpha1.RolloutPaused, CurrentStep: 1, CanaryWeight: 100, ObservedGeneration: 1}
	if err := s.Save(context.Background(), key, status); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(dir); err != nil || info.Mode().Perm() != stateDirMode {
		t.Fatalf("state directory: %v %v", info, err)
	}

	s = openStore(t, dir)
	got, ok, err := s.Load(key)
	if !ok || err != nil || got.Phase != v1alpha1.RolloutPaused || got.CanaryWeight != 100 {
		t.Fatalf("after reopening: %+v %v %v", got, ok, err)
	}
	if gen, again, _ := s.generation(key, spec(10, 100)); gen != 1 || again != uid {
		t.Fatalf("the same spec got generation %d, uid %q after reopening, want 1, %q", gen, again, uid)
	}
	if gen, again, _ := s.generation(key, spec(20, 100)); gen != 2 || again != uid {
		t.Fatalf("a changed spec got generation %d, uid %q, want 2 and the same object's %q", gen, again, uid)
	}
	if gen, _, _ := openStore(t, dir).generation(key, spec(20, 100)); gen != 2 {
		t.Fatalf("the new generation was not stored: %d", gen)
	}
}

func TestStateStorePrunesAndDropsSavesOfRemovedRollouts(t *testing.T) {
	dir := t.TempDir()
	keep := types.NamespacedName{Namespace: "shop", Name: "reviews"}
	gone := types.NamespacedName{Namespace: "shop", Name: "ratings"}
	s := openStore(t, dir)
	for _, key := range []types.NamespacedName{keep, gone} {
		if _, _, err := s.generation(key, spec(10)); err != nil {
			t.Fatal(err)
		}
	}
	_, goneUID, _ := s.generation(gone, spec(10))
	if err := s.prune(map[types.NamespacedName]bool{keep: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, fileName(gone))); !os.IsNotExist(err) {
		t.Fatalf("the removed rollout's file is still there: %v", err)
	}
	if err := s.Save(context.Background(), gone, v1alpha1.RolloutStatus{Phase: v1alpha1.RolloutPromoted}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Load(gone); ok {
		t.Fatal("a removed rollout's status was saved")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != fileName(keep) {
		t.Fatalf("files left: %v", entries)
	}
	if gen, uid, _ := s.generation(gone, spec(10)); gen != 1 || uid == goneUID {
		t.Fatalf("a rollout added again got generation %d, uid %q, want a fresh start at 1 with a new uid", gen, uid)
	}
}

func TestStateStoreSkipsBadFilesAndLeftovers(t *testing.T) {
	dir := t.TempDir()
	key := types.NamespacedName{Namespace: "shop", Name: "reviews"}
	s := openStore(t, dir)
	if _, _, err := s.generation(key, spec(10)); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(tempPrefix+"123", "half a fi")
	write("rollout-broken.json", "{not json")
	write("rollout-renamed.json", `{"namespace":"shop","name":"other","generation":3}`)
	write("notes.txt", "kept")
	s, warnings, err := openStateStore(dir)
	if err != nil || len(warnings) != 2 {
		t.Fatalf("warnings %v, error %v; want two warnings", warnings, err)
	}
	if _, ok, _ := s.Load(key); !ok {
		t.Fatal("the good file was not read")
	}
	if _, ok, _ := s.Load(types.NamespacedName{Namespace: "shop", Name: "other"}); ok {
		t.Fatal("a file whose name does not match its content was read")
	}
	if _, err := os.Stat(filepath.Join(dir, tempPrefix+"123")); !os.IsNotExist(err) {
		t.Fatalf("an interrupted write was left behind: %v", err)
	}
}

func TestStateFileNamesAreSafe(t *testing.T) {
	names := map[string]types.NamespacedName{}
	for _, key := range []types.NamespacedName{
		{Namespace: "..", Name: "../../etc/passwd"},
		{Namespace: "a/b", Name: "c"},
		{Namespace: "a", Name: "b/c"},
		{Namespace: "a_b", Name: "c"},
		{Namespace: "a", Name: "b_c"},
		{Namespace: "shop", Name: strings.Repeat("x", 300)},
	} {
		name := fileName(key)
		if strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") || len(name) > 120 {
			t.Errorf("fileName(%v) = %q", key, name)
		}
		if other, dup := names[name]; dup {
			t.Errorf("%v and %v share the file %q", key, other, name)
		}
		names[name] = key
	}
}
