package reqctx

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

type otherKey struct{}

func TestCarrierCarriesInfoOverTheRequestContext(t *testing.T) {
	parent, cancel := context.WithCancelCause(context.WithValue(context.Background(), otherKey{}, "kept"))
	r := httptest.NewRequest("GET", "/", nil).WithContext(parent)
	var c Carrier
	c.Info.Route = "ns/route"
	out := c.Attach(r)
	if got := From(out.Context()); got != &c.Info {
		t.Fatalf("From = %p, want the carrier's Info %p", got, &c.Info)
	}
	if got := out.Context().Value(otherKey{}); got != "kept" {
		t.Fatalf("the request context's values are lost: %v", got)
	}
	if From(r.Context()) != nil {
		t.Fatal("Attach changed the original request's context")
	}
	// Contexts derived from the carrier see the request's cancellation and its cause.
	derived, stop := context.WithCancel(out.Context())
	defer stop()
	cause := errors.New("client went away")
	cancel(cause)
	<-derived.Done()
	if context.Cause(derived) != cause || !errors.Is(out.Context().Err(), context.Canceled) {
		t.Fatalf("cause %v, err %v", context.Cause(derived), out.Context().Err())
	}
}

// sink keeps the requests of the allocation test on the heap, as a server's are.
var sink *http.Request

func TestCarrierCostsLessThanWith(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	carrier := testing.AllocsPerRun(100, func() {
		c := new(Carrier)
		sink = c.Attach(r)
	})
	with := testing.AllocsPerRun(100, func() {
		sink = With(r, new(Info))
	})
	// The carrier and the copy of the request, against the Info, the value context
	// and the copy of the request.
	if carrier != 2 || with != 3 {
		t.Fatalf("a carrier costs %v allocations and With %v; want 2 and 3", carrier, with)
	}
}

// holder is a request context with room for one value, as the gateway's own HTTP/1
// server gives.
type holder struct {
	context.Context
	key, value any
}

func (h *holder) SetValue(key, value any) bool {
	if h.key != nil {
		return false
	}
	h.key, h.value = key, value
	return true
}

func (h *holder) Value(key any) any {
	if h.key != nil && key == h.key {
		return h.value
	}
	return h.Context.Value(key)
}

func TestCarrierUsesTheRoomOfTheRequestContext(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil).WithContext(&holder{Context: context.Background()})
	var first, second Carrier
	first.Info.Route, second.Info.Route = "ns/first", "ns/second"
	if out := first.Attach(r); out != r || From(r.Context()) != &first.Info {
		t.Fatal("the carrier did not use the room the request context has")
	}
	// The room is taken: a second carrier copies the request, and its Info wins.
	out := second.Attach(r)
	if out == r || From(out.Context()) != &second.Info || From(r.Context()) != &first.Info {
		t.Fatal("a second carrier did not fall back to a copy of the request")
	}
}
