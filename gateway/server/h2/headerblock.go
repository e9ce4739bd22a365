package h2

import (
	"errors"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/switchyard-dev/switchyard/internal/httpsyntax"
)

// headerBlock decodes a HEADERS frame and its CONTINUATION frames into one
// MetaHeadersFrame, as the Framer does when given an HPACK decoder, but with
// storage that lives as long as the connection: the Framer's way makes a new
// frame, a new field slice grown field by field and a new closure with its
// captured variables for every block, some ten allocations per request.
//
// The frame and its fields are valid until release, which the reading
// goroutine calls once it has processed the frame, before it reads another; it
// keeps only the strings of the fields, which the decoder makes anew or takes
// from its tables and never writes again.
type headerBlock struct {
	dec *hpack.Decoder
	// maxList is SETTINGS_MAX_HEADER_LIST_SIZE, the most the fields of one
	// block may measure (RFC 9113 §6.5.2: names, values and 32 per field).
	maxList uint32

	frame http2.MetaHeadersFrame
	// fields holds the block's fields from read to release, in a slice taken
	// from fieldsPool (pooled, the slice with it), so that an idle connection
	// holds none.
	fields    []hpack.HeaderField
	fieldsBox *[]hpack.HeaderField
	// The state of the block being decoded, read by the emit function: the
	// bytes of field list left, whether a regular field was seen, and the
	// first invalid field's error.
	remain     uint32
	sawRegular bool
	invalid    error
}

// fieldsKept is the most fields whose storage goes back to fieldsPool; a larger
// block's slice is let go (see release), so that one request with many fields
// does not pin their storage.
const fieldsKept = 32

// fieldsPool holds the field slices of header blocks between uses.
var fieldsPool = sync.Pool{New: func() any {
	fields := make([]hpack.HeaderField, 0, 8)
	return &fields
}}

// init sets the block up on dec, whose emit function it takes over.
func (b *headerBlock) init(dec *hpack.Decoder, maxList uint32) {
	b.dec, b.maxList = dec, maxList
	dec.SetEmitFunc(b.emit)
	// A string longer than the whole list allows is an error at once, rather
	// than a string decoded to be refused.
	if maxString := int(maxList); maxString > 0 {
		dec.SetMaxStringLength(maxString)
	}
}

// emit checks one decoded field and keeps it, with the rules of RFC 9113
// §8.2.1 that the Framer applies: no control characters in a value, lowercase
// token names, pseudo-header fields only ahead of the regular ones, and the
// list within maxList. After the first violation nothing more is kept.
func (b *headerBlock) emit(hf hpack.HeaderField) {
	if !httpsyntax.ValidFieldValue(hf.Value) {
		// The value is left out of the error: it may be a secret.
		b.invalid = fieldError("value", hf.Name)
	}
	if strings.HasPrefix(hf.Name, ":") {
		if b.sawRegular {
			b.invalid = errPseudoAfterRegular
		}
	} else {
		b.sawRegular = true
		if !validWireName(hf.Name) {
			b.invalid = fieldError("name", hf.Name)
		}
	}
	if b.invalid != nil {
		b.dec.SetEmitEnabled(false)
		return
	}
	size := hf.Size()
	if size > b.remain {
		b.dec.SetEmitEnabled(false)
		b.frame.Truncated = true
		b.remain = 0
		return
	}
	b.remain -= size
	b.fields = append(b.fields, hf)
}

// read decodes the block that hf begins, reading its CONTINUATION frames from
// fr. Its errors are those of the Framer: a connection PROTOCOL_ERROR for a
// block far over the limit or continued after an invalid field, a
// COMPRESSION_ERROR for a block HPACK cannot decode, and a stream
// PROTOCOL_ERROR for invalid fields or pseudo-header fields.
func (b *headerBlock) read(fr *http2.Framer, hf *http2.HeadersFrame) (*http2.MetaHeadersFrame, error) {
	if b.fieldsBox == nil {
		b.fieldsBox = fieldsPool.Get().(*[]hpack.HeaderField)
		b.fields = (*b.fieldsBox)[:0]
	}
	b.fields = b.fields[:0]
	b.frame = http2.MetaHeadersFrame{HeadersFrame: hf}
	b.remain, b.sawRegular, b.invalid = b.maxList, false, nil
	b.dec.SetEmitEnabled(true)
	frag := hf.HeaderBlockFragment()
	ended := hf.HeadersEnded()
	for {
		// A fragment of more than twice the bytes still allowed cannot be a
		// list within the limit worth decoding; nor is anything after an
		// invalid field, whose size was no longer counted.
		if int64(len(frag)) > 2*int64(b.remain) || b.invalid != nil {
			return nil, http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if _, err := b.dec.Write(frag); err != nil {
			return nil, http2.ConnectionError(http2.ErrCodeCompression)
		}
		if ended {
			break
		}
		// The Framer lets nothing but this stream's CONTINUATION come next.
		f, err := fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		cf, ok := f.(*http2.ContinuationFrame)
		if !ok {
			return nil, http2.ConnectionError(http2.ErrCodeProtocol)
		}
		frag, ended = cf.HeaderBlockFragment(), cf.HeadersEnded()
	}
	if err := b.dec.Close(); err != nil {
		return nil, http2.ConnectionError(http2.ErrCodeCompression)
	}
	b.frame.Fields = b.fields
	if b.invalid != nil {
		return nil, http2.StreamError{StreamID: hf.StreamID, Code: http2.ErrCodeProtocol, Cause: b.invalid}
	}
	if err := checkPseudoNames(b.frame.PseudoFields()); err != nil {
		return nil, http2.StreamError{StreamID: hf.StreamID, Code: http2.ErrCodeProtocol, Cause: err}
	}
	return &b.frame, nil
}

// release lets go of the last block once the reading goroutine is done with it:
// its frame, which points into the read Framer's buffer (a buffer the connection
// drops while idle), and its fields, whose slice goes back to the pool emptied,
// so that their strings do not outlive their request.
func (b *headerBlock) release() {
	b.frame = http2.MetaHeadersFrame{}
	if b.fieldsBox == nil {
		return
	}
	if cap(b.fields) <= fieldsKept {
		clear(b.fields)
		*b.fieldsBox = b.fields[:0]
		fieldsPool.Put(b.fieldsBox)
	}
	b.fields, b.fieldsBox = nil, nil
}

var errPseudoAfterRegular = errors.New("pseudo header field after regular")

// fieldError says which field was invalid, and in what.
func fieldError(what, name string) error {
	return errors.New("invalid header field " + what + " for " + strconv.Quote(name))
}

// validWireName reports whether name is a token without upper-case letters,
// as field names in HTTP/2 must be.
func validWireName(name string) bool {
	if !httpsyntax.IsToken(name) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if 'A' <= name[i] && name[i] <= 'Z' {
			return false
		}
	}
	return true
}

// checkPseudoNames refuses unknown and repeated pseudo-header fields, and a
// mix of request and response ones.
func checkPseudoNames(fields []hpack.HeaderField) error {
	var request, response bool
	for i, hf := range fields {
		switch hf.Name {
		case ":method", ":path", ":scheme", ":authority", ":protocol":
			request = true
		case ":status":
			response = true
		default:
			return errors.New("invalid pseudo-header " + strconv.Quote(hf.Name))
		}
		for _, earlier := range fields[:i] {
			if earlier.Name == hf.Name {
				return errors.New("duplicate pseudo-header " + strconv.Quote(hf.Name))
			}
		}
	}
	if request && response {
		return errors.New("mix of request and response pseudo headers")
	}
	return nil
}
