package translate

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzTranslate mutates the golden inputs, decodes whatever survives and checks that
// translation never panics, produces a snapshot that validates, and is deterministic
// (including with the input lists in reverse order).
func FuzzTranslate(f *testing.F) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.in.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range inputs {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		in, _ := decodeManifests(data)
		in.Options.Now = goldenNow
		out := Translate(in)
		if out == nil || out.Snapshot == nil {
			t.Fatal("Translate returned no snapshot")
		}
		if err := out.Snapshot.Validate(); err != nil {
			t.Fatalf("snapshot does not validate: %v", err)
		}
		first := renderOutput(t, out)
		if again := renderOutput(t, Translate(in)); string(again) != string(first) {
			t.Fatalf("two translations differ:\n%s\nvs\n%s", first, again)
		}
		if rev := renderOutput(t, Translate(reversed(in))); string(rev) != string(first) {
			t.Fatalf("translation depends on input order:\n%s\nvs\n%s", first, rev)
		}
	})
}

func TestTranslateNilInput(t *testing.T) {
	out := Translate(nil)
	if out.Snapshot == nil || out.Snapshot.SchemaVersion == 0 || len(out.Snapshot.Version) != 16 {
		t.Fatalf("unexpected snapshot for nil input: %+v", out.Snapshot)
	}
	if err := out.Snapshot.Validate(); err != nil {
		t.Fatal(err)
	}
}
