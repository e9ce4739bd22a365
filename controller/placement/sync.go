package placement

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// FieldManager names the writer of managed Services and EndpointSlices in the API
// server's managed fields.
const FieldManager = "switchyard-controller"

// ServiceSync applies ServicePlans (Services and EndpointSlices) to the API server. Only the controller replica
// that leads should apply plans, so that replicas never fight over a Service.
type ServiceSync struct {
	client kubernetes.Interface
}

// NewServiceSync returns a ServiceSync that writes with the given client.
func NewServiceSync(client kubernetes.Interface) *ServiceSync {
	return &ServiceSync{client: client}
}

// Apply carries out a plan: deletions and updates first, so that a container port a
// Gateway gave up is no longer targeted by its old Service before another Gateway's
// new Service targets it, then creations; EndpointSlices are deleted before and
// created after Services. It goes on past failures and returns them all joined; the
// caller retries on the next change or after a delay, with a plan computed from fresh
// caches. An object deleted by someone else in the meantime is not an error. An
// update based on a stale cache fails with a conflict, and a deletion is conditional
// on the object's UID, so that an object recreated under the same name is never
// deleted by mistake.
func (s *ServiceSync) Apply(ctx context.Context, plan ServicePlan) error {
	var errs []error
	record := func(err error, verb, kind, ns, name string) {
		if err != nil && !(verb == "deleting" && apierrors.IsNotFound(err)) {
			errs = append(errs, fmt.Errorf("%s %s %s/%s: %w", verb, kind, ns, name, err))
		}
	}
	slices := s.client.DiscoveryV1()
	for _, es := range plan.DeleteSlices {
		record(slices.EndpointSlices(es.Namespace).Delete(ctx, es.Name, deleteOptions(es.UID)), "deleting", "EndpointSlice", es.Namespace, es.Name)
	}
	for _, svc := range plan.Delete {
		record(s.client.CoreV1().Services(svc.Namespace).Delete(ctx, svc.Name, deleteOptions(svc.UID)), "deleting", "Service", svc.Namespace, svc.Name)
	}
	for _, svc := range plan.Update {
		_, err := s.client.CoreV1().Services(svc.Namespace).Update(ctx, svc, metav1.UpdateOptions{FieldManager: FieldManager})
		record(err, "updating", "Service", svc.Namespace, svc.Name)
	}
	for _, es := range plan.UpdateSlices {
		_, err := slices.EndpointSlices(es.Namespace).Update(ctx, es, metav1.UpdateOptions{FieldManager: FieldManager})
		record(err, "updating", "EndpointSlice", es.Namespace, es.Name)
	}
	for _, svc := range plan.Create {
		_, err := s.client.CoreV1().Services(svc.Namespace).Create(ctx, svc, metav1.CreateOptions{FieldManager: FieldManager})
		record(err, "creating", "Service", svc.Namespace, svc.Name)
	}
	for _, es := range plan.CreateSlices {
		_, err := slices.EndpointSlices(es.Namespace).Create(ctx, es, metav1.CreateOptions{FieldManager: FieldManager})
		record(err, "creating", "EndpointSlice", es.Namespace, es.Name)
	}
	return errors.Join(errs...)
}

func deleteOptions(uid types.UID) metav1.DeleteOptions {
	return metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}
}

// ListManaged lists the managed Services of all namespaces, for a controller that
// does not keep an informer of them (or to seed one at start-up).
func ListManaged(ctx context.Context, client kubernetes.Interface) ([]*corev1.Service, error) {
	list, err := client.CoreV1().Services(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: ManagedSelector})
	if err != nil {
		return nil, fmt.Errorf("listing managed Services: %w", err)
	}
	out := make([]*corev1.Service, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, &list.Items[i])
	}
	return out, nil
}
