package distribute

import (
	"bytes"
	"compress/gzip"
	"errors"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"io"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestFramesRoundTrip(t *testing.T) {
	snap := snapshotWith("/a", "127.0.0.1:1")
	payload, err := EncodeSnapshot(snap)
	mustNotErr(t, err)
	var buf bytes.Buffer
	mustNotErr(t, WriteFrame(&buf, FrameSnapshot, payload))
	mustNotErr(t, WriteFrame(&buf, FrameHeartbeat, nil))

	typ, got, err := ReadFrame(&buf, DefaultMaxFrameBytes)
	mustNotErr(t, err)
	if typ != FrameSnapshot {
		t.Fatalf("first frame type %d", typ)
	}
	decoded, err := DecodeSnapshot(got, DefaultMaxFrameBytes)
	mustNotErr(t, err)
	if !reflect.DeepEqual(decoded, snap) {
		t.Errorf("decoded snapshot differs:\n got %+v\nwant %+v", decoded, snap)
	}
	typ, got, err = ReadFrame(&buf, DefaultMaxFrameBytes)
	mustNotErr(t, err)
	if typ != FrameHeartbeat || len(got) != 0 {
		t.Errorf("second frame: type %d, %d bytes", typ, len(got))
	}
	if _, _, err := ReadFrame(&buf, DefaultMaxFrameBytes); !errors.Is(err, io.EOF) {
		t.Errorf("after the last frame: %v, want EOF", err)
	}
}

func TestReadFrameRefusesOversizedAndTruncatedFrames(t *testing.T) {
	var buf bytes.Buffer
	mustNotErr(t, WriteFrame(&buf, FrameSnapshot, make([]byte, 100)))
	if _, _, err := ReadFrame(bytes.NewReader(buf.Bytes()), 99); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("oversized frame: %v, want ErrFrameTooLarge", err)
	}
	// A header that promises 4 GiB but delivers 10 bytes must fail, not allocate.
	lying := []byte{byte(FrameSnapshot), 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if _, _, err := ReadFrame(bytes.NewReader(lying), 1<<33); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated frame: %v, want unexpected EOF", err)
	}
}

func TestDecodeSnapshotRefusesBadPayloads(t *testing.T) {
	if _, err := DecodeSnapshot([]byte("not gzip"), DefaultMaxFrameBytes); err == nil {
		t.Error("non-gzip payload: want an error")
	}
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	_, _ = zw.Write(bytes.Repeat([]byte(" "), 1<<20))
	_ = zw.Close()
	if _, err := DecodeSnapshot(bomb.Bytes(), 1<<10); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("payload over the decompressed limit: %v, want ErrFrameTooLarge", err)
	}
	var notJSON bytes.Buffer
	zw = gzip.NewWriter(&notJSON)
	_, _ = zw.Write([]byte("{"))
	_ = zw.Close()
	if _, err := DecodeSnapshot(notJSON.Bytes(), DefaultMaxFrameBytes); err == nil || !strings.Contains(err.Error(), "decoding") {
		t.Errorf("bad JSON: %v, want a decoding error", err)
	}
}

func TestStreamURLCarriesTheParameters(t *testing.T) {
	base := &url.URL{Scheme: "https", Host: "controller:9443", Path: "/ignored"}
	u, err := url.Parse(StreamURL(base, StreamParams{Node: "node a", Role: RoleNode, Schema: config.SchemaVersion - 1, Have: "abc"}))
	mustNotErr(t, err)
	p, code, err := parseStreamParams(u.Query())
	if err != nil || code != 0 {
		t.Fatalf("parse: %d %v", code, err)
	}
	want := StreamParams{Node: "node a", Role: RoleNode, Schema: config.SchemaVersion - 1, Have: "abc"}
	if u.Path != PathSnapshots || p != want {
		t.Errorf("got path %q params %+v", u.Path, p)
	}
	if got := AcksURL(base); got != "https://controller:9443/v1/acks" {
		t.Errorf("AcksURL = %q", got)
	}
}
