package translate

import (
	"testing"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func TestFieldPathRendersWhereAnErrorIs(t *testing.T) {
	rule := rootItem("spec.rules", 2)
	ref := rule.item("backendRefs", 0)
	filter := ref.item("filters", 11)
	mirror := filter.field("requestMirror")
	backend := mirror.field("backendRef")
	if got, want := backend.String(), "spec.rules[2].backendRefs[0].filters[11].requestMirror.backendRef"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}

	if _, err := compileRetry(&gwv1.HTTPRouteRetry{Codes: []gwv1.HTTPRouteRetryStatusCode{503, 600}}, &rule); err == nil ||
		err.detail != "spec.rules[2].retry.codes: status code 600 is not in 400-599" {
		t.Errorf("retry error %+v", err)
	}
	match := rule.item("matches", 1)
	query := &gwv1.HTTPRouteMatch{QueryParams: []gwv1.HTTPQueryParamMatch{{Name: "a", Value: "1"}, {Name: "", Value: "2"}}}
	if _, err := compileMatch(query, &match); err == nil ||
		err.detail != "spec.rules[2].matches[1].queryParams[1].name: name must not be empty" {
		t.Errorf("query parameter error %+v", err)
	}
}

// Of header conditions that name one header in different cases, and of query
// conditions with one name, only the first counts.
func TestDuplicateConditionsKeepTheFirst(t *testing.T) {
	where := rootItem("spec.rules", 0)
	m := &gwv1.HTTPRouteMatch{
		Headers: []gwv1.HTTPHeaderMatch{
			{Name: "X-Tenant", Value: "a"}, {Name: "x-tenant", Value: "b"}, {Name: "X-Other", Value: "c"},
		},
		QueryParams: []gwv1.HTTPQueryParamMatch{{Name: "q", Value: "1"}, {Name: "Q", Value: "2"}, {Name: "q", Value: "3"}},
	}
	got, err := compileMatch(m, &where)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Headers) != 2 || got.Headers[0].Value != "a" || got.Headers[1].Name != "X-Other" {
		t.Errorf("headers %+v, want X-Tenant=a and X-Other=c", got.Headers)
	}
	if len(got.QueryParams) != 2 || got.QueryParams[0].Value != "1" || got.QueryParams[1].Value != "2" {
		t.Errorf("query parameters %+v, want q=1 and Q=2", got.QueryParams)
	}
}
