package h2

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestHeaderBlockMatchesFramer decodes random header blocks, split into random
// CONTINUATION frames, both with headerBlock and with the Framer's own decoding
// (ReadMetaHeaders), and wants the same fields, truncation and errors. The
// blocks of one connection share their HPACK tables, as on the wire; among them
// are upper-case and empty names, pseudo-header fields out of place, repeated
// or unknown, control characters in values, and lists over the limit.
func TestHeaderBlockMatchesFramer(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for conn := range 1000 {
		maxList := uint32(200 + rng.IntN(6000))
		var wire bytes.Buffer
		wfr := http2.NewFramer(&wire, nil)
		var block bytes.Buffer
		enc := hpack.NewEncoder(&block)
		blocks := 1 + rng.IntN(6)
		for i := range blocks {
			block.Reset()
			for _, hf := range randomFields(rng) {
				if err := enc.WriteField(hf); err != nil {
					t.Fatal(err)
				}
			}
			writeSplitBlock(t, rng, wfr, uint32(2*i+1), block.Bytes())
		}
		want := readBlocks(t, wire.Bytes(), blocks, maxList, false)
		got := readBlocks(t, wire.Bytes(), blocks, maxList, true)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("connection %d (limit %d):\n got %+v\nwant %+v", conn, maxList, got, want)
		}
	}
}

// blockResult is what reading one block gave, in comparable form.
type blockResult struct {
	Fields    []hpack.HeaderField
	Truncated bool
	Err       string
}

// readBlocks reads blocks header blocks from wire with a Framer, decoding them
// with headerBlock (own) or with the Framer's ReadMetaHeaders, up to the first
// connection error.
func readBlocks(t *testing.T, wire []byte, blocks int, maxList uint32, own bool) []blockResult {
	t.Helper()
	fr := http2.NewFramer(nil, bytes.NewReader(wire))
	dec := hpack.NewDecoder(4096, nil)
	var hb headerBlock
	if own {
		hb.init(dec, maxList)
	} else {
		fr.ReadMetaHeaders = dec
		fr.MaxHeaderListSize = maxList
	}
	var out []blockResult
	for range blocks {
		f, err := fr.ReadFrame()
		if own && err == nil {
			var mh *http2.MetaHeadersFrame
			if mh, err = hb.read(fr, f.(*http2.HeadersFrame)); err == nil {
				f = mh
			}
		}
		var r blockResult
		if err != nil {
			r.Err = errorClass(err)
		} else {
			mh := f.(*http2.MetaHeadersFrame)
			r.Fields = append([]hpack.HeaderField{}, mh.Fields...)
			r.Truncated = mh.Truncated
		}
		out = append(out, r)
		var ce http2.ConnectionError
		if errors.As(err, &ce) || (err != nil && !strings.HasPrefix(r.Err, "stream")) {
			break
		}
	}
	return out
}

// errorClass names an error by its kind and code, which the two decoders must
// agree on; their wording may differ.
func errorClass(err error) string {
	var se http2.StreamError
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &se):
		return "stream " + se.Code.String()
	case errors.As(err, &ce):
		return "connection " + http2.ErrCode(ce).String()
	}
	return "other " + err.Error()
}

// writeSplitBlock writes block as a HEADERS frame and CONTINUATION frames cut at
// random places.
func writeSplitBlock(t *testing.T, rng *rand.Rand, fr *http2.Framer, id uint32, block []byte) {
	t.Helper()
	cut := len(block)
	if len(block) > 1 && rng.IntN(2) == 0 {
		cut = 1 + rng.IntN(len(block)-1)
	}
	err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block[:cut],
		EndStream: true, EndHeaders: cut == len(block)})
	for rest := block[cut:]; err == nil && len(rest) > 0; {
		n := 1 + rng.IntN(len(rest))
		err = fr.WriteContinuation(id, n == len(rest), rest[:n])
		rest = rest[n:]
	}
	if err != nil {
		t.Fatal(err)
	}
}

// randomFields makes a header list that is usually a valid request and often
// not: each kind of flaw the decoders check turns up now and then.
func randomFields(rng *rand.Rand) []hpack.HeaderField {
	fields := []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
		{Name: ":path", Value: "/" + strings.Repeat("p", rng.IntN(40))}, {Name: ":authority", Value: "a.test"}}
	names := []string{"accept", "user-agent", "x-trace", "cookie", "X-Upper", "", "bad name", ":status",
		":path", ":foo", "x-\xff", "content-type"}
	values := []string{"", "v", "text/plain", "a\tb", "a\nb", "\x7f", "\x00", strings.Repeat("x", 300),
		strings.Repeat("y", 1500), "caf\xc3\xa9"}
	for range rng.IntN(8) {
		name := names[rng.IntN(len(names))]
		if rng.IntN(3) == 0 {
			name = "x-" + strings.Repeat("n", rng.IntN(12))
		}
		hf := hpack.HeaderField{Name: name, Value: values[rng.IntN(len(values))], Sensitive: rng.IntN(5) == 0}
		if rng.IntN(8) == 0 {
			fields = append([]hpack.HeaderField{hf}, fields...)
		} else {
			fields = append(fields, hf)
		}
	}
	return fields
}
