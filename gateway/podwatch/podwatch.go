// Package podwatch tells a node replica which Pod of its node sent a request: an
// informer on the node's own Pods (a field selector on spec.nodeName, so the replica
// lists and watches only them) keeps a table from Pod address to the Pod's identity,
// which the data plane looks up for every request (mesh.Callers).
//
// Pods on the host network are left out: they share the node's addresses, so an
// address alone cannot tell them apart from each other, from the node's own
// processes, or from traffic the node forwards. So are Pods that have finished
// (Succeeded or Failed), whose addresses the node may give to new Pods.
package podwatch

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/switchyard-dev/switchyard/gateway/mesh"
)

// Options configure a Watcher.
type Options struct {
	// Client reaches the API server. Required.
	Client kubernetes.Interface
	// Node is the name of the node whose Pods are watched. Required.
	Node string
	// Resync, when positive, replays every Pod to the table this often, as a guard
	// against a missed event; zero means never.
	Resync time.Duration
	// Logger receives the watcher's logs; nil discards them.
	Logger *slog.Logger
}

// Watcher keeps the table of the node's Pods by address. It implements mesh.Callers.
type Watcher struct {
	opts     Options
	informer cache.SharedIndexInformer

	mu sync.RWMutex
	// byIP maps each Pod address to the Pod that holds it: the winner among the
	// Pods that claim it (see holder).
	byIP map[netip.Addr]entry
	// claims lists, per address, every Pod that claims it. A node reuses the address
	// of a finished Pod, and the watch may report the old Pod's last updates after
	// the new Pod's first, so one address can have several claimants for a while.
	claims map[netip.Addr][]entry
	// byUID lists the addresses each Pod claims, to remove them when the Pod
	// changes or goes.
	byUID map[types.UID][]netip.Addr
}

type entry struct {
	uid    types.UID
	caller mesh.Caller
	// created and deleting rank claimants of one address: a Pod not being deleted
	// beats one that is, then the newer Pod wins.
	created  time.Time
	deleting bool
}

// outranks reports whether e, rather than o, holds an address both claim.
func (e entry) outranks(o entry) bool {
	if e.deleting != o.deleting {
		return !e.deleting
	}
	if !e.created.Equal(o.created) {
		return e.created.After(o.created)
	}
	return e.uid > o.uid
}

// New returns a Watcher of opts.Node's Pods; Run starts it.
func New(opts Options) (*Watcher, error) {
	if opts.Client == nil || opts.Node == "" {
		return nil, errors.New("podwatch: a client and a node name are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{opts: opts, byIP: map[netip.Addr]entry{}, claims: map[netip.Addr][]entry{}, byUID: map[types.UID][]netip.Addr{}}
	selector := fields.OneTermEqualSelector("spec.nodeName", opts.Node).String()
	w.informer = coreinformers.NewFilteredPodInformer(opts.Client, metav1.NamespaceAll, opts.Resync, cache.Indexers{},
		func(o *metav1.ListOptions) { o.FieldSelector = selector })
	if err := w.informer.SetTransform(slim); err != nil {
		return nil, err
	}
	_, err := w.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.upsert(obj) },
		UpdateFunc: func(_, obj any) { w.upsert(obj) },
		DeleteFunc: w.remove,
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// Run watches the Pods until ctx is done.
func (w *Watcher) Run(ctx context.Context) {
	w.informer.RunWithContext(ctx)
}

// WaitForSync waits until the first list of Pods is in the table, or ctx is done; it
// reports whether the list arrived.
func (w *Watcher) WaitForSync(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx.Done(), w.informer.HasSynced)
}

// Synced reports whether the first list of Pods is in the table. Until then callers
// are refused; a node replica reports itself unready meanwhile.
func (w *Watcher) Synced() bool { return w.informer.HasSynced() }

// Lookup returns the Pod of the node whose address ip is. It does not allocate.
func (w *Watcher) Lookup(ip netip.Addr) (mesh.Caller, bool) {
	w.mu.RLock()
	e, ok := w.byIP[ip.Unmap()]
	w.mu.RUnlock()
	return e.caller, ok
}

// Len returns the number of addresses in the table.
func (w *Watcher) Len() int {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return len(w.byIP)
}

// upsert puts a Pod's addresses in the table, or takes them out when the Pod is not
// (or no longer) one to serve. An address several Pods claim is held by the one that
// is not being deleted, else the newest: the node gave it to that Pod last, and a
// late update of the old Pod must not take it back.
func (w *Watcher) upsert(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	var addrs []netip.Addr
	if w.serves(pod) {
		addrs = podAddrs(pod)
	}
	claim := entry{uid: pod.UID, caller: callerOf(pod), created: pod.CreationTimestamp.Time,
		deleting: pod.DeletionTimestamp != nil}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.removeLocked(pod.UID)
	if len(addrs) == 0 {
		return
	}
	for _, a := range addrs {
		w.claims[a] = append(w.claims[a], claim)
		w.electLocked(a)
	}
	w.byUID[pod.UID] = addrs
}

// electLocked makes the best claimant of a the holder of a, or takes a out of the
// table when nobody claims it.
func (w *Watcher) electLocked(a netip.Addr) {
	claims := w.claims[a]
	if len(claims) == 0 {
		delete(w.claims, a)
		delete(w.byIP, a)
		return
	}
	best := claims[0]
	for _, c := range claims[1:] {
		if c.outranks(best) {
			best = c
		}
	}
	w.byIP[a] = best
}

// remove takes a deleted Pod's addresses out of the table.
func (w *Watcher) remove(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.removeLocked(pod.UID)
}

// removeLocked withdraws uid's claims; an address another Pod still claims passes to
// it.
func (w *Watcher) removeLocked(uid types.UID) {
	for _, a := range w.byUID[uid] {
		w.claims[a] = slices.DeleteFunc(w.claims[a], func(e entry) bool { return e.uid == uid })
		w.electLocked(a)
	}
	delete(w.byUID, uid)
}

// serves reports whether requests from pod are served: it is on this node, has
// addresses of its own and has not finished.
func (w *Watcher) serves(pod *corev1.Pod) bool {
	switch {
	case pod.Spec.NodeName != w.opts.Node, pod.Spec.HostNetwork:
		return false
	case pod.Status.Phase == corev1.PodSucceeded, pod.Status.Phase == corev1.PodFailed:
		return false
	}
	return true
}

// podAddrs returns a Pod's addresses, unmapped and unique.
func podAddrs(pod *corev1.Pod) []netip.Addr {
	texts := make([]string, 0, 2)
	for _, ip := range pod.Status.PodIPs {
		texts = append(texts, ip.IP)
	}
	if len(texts) == 0 && pod.Status.PodIP != "" {
		texts = append(texts, pod.Status.PodIP)
	}
	var out []netip.Addr
	for _, t := range texts {
		a, err := netip.ParseAddr(t)
		if err != nil {
			continue
		}
		a = a.Unmap()
		if !a.IsUnspecified() && !containsAddr(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, b := range list {
		if a == b {
			return true
		}
	}
	return false
}
