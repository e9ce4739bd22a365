package backend

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/httpsyntax"
)

// hopByHopNames are the fields rawHopByHop takes out of every relayed response.
var hopByHopNames = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// TestRawHopByHopKnowsEachName checks every hop-by-hop name in several cases, names
// of the same lengths that are not hop-by-hop, and random names against a plain
// comparison with each name.
func TestRawHopByHopKnowsEachName(t *testing.T) {
	for _, name := range hopByHopNames {
		for _, form := range []string{name, strings.ToLower(name), strings.ToUpper(name)} {
			if !rawHopByHop([]byte(form), nil) {
				t.Errorf("%q is not taken out", form)
			}
		}
	}
	for _, name := range []string{"Tx", "Trailed", "Content-Ty", "Proxy-Connectiom", "Transfer-Encodinf", "X", ""} {
		if rawHopByHop([]byte(name), nil) {
			t.Errorf("%q is taken out", name)
		}
	}
	if !rawHopByHop([]byte("x-private"), [][]byte{[]byte("close, X-Private")}) {
		t.Error("a field the Connection field names is kept")
	}
	rng := rand.New(rand.NewPCG(26, 11))
	const alphabet = "aceiknoprtuxy-TCAEKPU"
	for range 20000 {
		var name []byte
		if rng.IntN(3) == 0 {
			name = []byte(hopByHopNames[rng.IntN(len(hopByHopNames))])
			name[rng.IntN(len(name))] = alphabet[rng.IntN(len(alphabet))]
		} else {
			name = make([]byte, rng.IntN(20))
			for i := range name {
				name[i] = alphabet[rng.IntN(len(alphabet))]
			}
		}
		want := false
		for _, h := range hopByHopNames {
			want = want || httpsyntax.EqualFold(name, h)
		}
		if got := rawHopByHop(name, nil); got != want {
			t.Fatalf("rawHopByHop(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestTrimOWSTrimsSpacesAndTabs(t *testing.T) {
	rng := rand.New(rand.NewPCG(26, 12))
	const alphabet = " \t a\x0bb\r"
	for range 20000 {
		v := make([]byte, rng.IntN(12))
		for i := range v {
			v[i] = alphabet[rng.IntN(len(alphabet))]
		}
		if got, want := trimOWS(v), bytes.Trim(v, " \t"); !bytes.Equal(got, want) {
			t.Fatalf("trimOWS(%q) = %q, want %q", v, got, want)
		}
	}
}
