# Switchyard's developer entry points. `make run` starts the quickstart; `make test`
# runs every test.
GO        ?= go
BIN       := bin/switchyard
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
PKGS      := ./...

# controller-gen writes the deepcopy code and CRDs of api/ (switchyard.dev/v1alpha1).
CONTROLLER_GEN ?= $(GO) run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0

.PHONY: generate all build run test test-short vet fmt-check fuzz bench bench-fleet conformance clean controlplane \
	chart-crds helm chart-test

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/switchyard

# The quickstart: the standalone gateway on examples/quickstart with two echo backends.
run: build
	./examples/quickstart/run.sh

# kube-apiserver, kube-controller-manager and etcd for the end-to-end harness, built
# once into the user cache folder (keyed by version). The tests build it themselves
# when it is missing; CI calls this first so the cold build shows as its own step.
controlplane:
	./e2e/controlplane/build.sh

# Every test, with the race detector. Integration tests build and start the real binary.
# HTTP/1.1 has two implementations on the data path (--http1, SWITCHYARD_HTTP1): the
# default, built for it, and net/http's. The suites that carry traffic run once more
# with net/http's, so that both keep passing.
STD_HTTP1_PKGS := ./gateway/server/... ./gateway/backend ./gateway/proxy ./gateway/dataplane ./e2e/standalone
# HTTP/2 too (--http2, SWITCHYARD_HTTP2): the suites that serve it run once more with
# the server that is not the default (server.DefaultHTTP2Mode).
OTHER_HTTP2 := std
OTHER_HTTP2_PKGS := ./gateway/server ./gateway/dataplane ./e2e/standalone
# The default HTTP/1.1 server hands the requests of rules without filters, retries
# or timeouts to a raw forwarding path (--forwarding, SWITCHYARD_FORWARDING); the
# suites that carry such requests run once more with every request served by its
# rule's handler, so that both keep passing.
HANDLER_FORWARDING_PKGS := ./gateway/dataplane ./e2e/standalone ./cmd/switchyard
test: fmt-check vet
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	SWITCHYARD_HTTP1=std $(GO) test -race -count=1 -timeout 20m $(STD_HTTP1_PKGS)
	SWITCHYARD_HTTP2=$(OTHER_HTTP2) $(GO) test -race -count=1 -timeout 20m $(OTHER_HTTP2_PKGS)
	SWITCHYARD_FORWARDING=handler $(GO) test -race -count=1 -timeout 20m $(HANDLER_FORWARDING_PKGS)

test-short:
	$(GO) test -short $(PKGS)

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# Short runs of every fuzz target (seed corpora also run in `make test`).
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./controller/translate -run '^$$' -fuzz FuzzTranslate -fuzztime $(FUZZTIME)
	$(GO) test ./gateway/router -run '^$$' -fuzz FuzzLookup -fuzztime $(FUZZTIME)
	$(GO) test ./gateway/server -run '^$$' -fuzz FuzzFramingTracker -fuzztime $(FUZZTIME)
	$(GO) test ./gateway/server/h1 -run '^$$' -fuzz FuzzParseHead -fuzztime $(FUZZTIME)
	$(GO) test ./gateway/proxy -run '^$$' -fuzz FuzzRawTarget -fuzztime $(FUZZTIME)
	$(GO) test ./gateway/server/h1 -run '^$$' -fuzz FuzzServeStream -fuzztime $(FUZZTIME)

# Comparative benchmarks: Switchyard against nginx, HAProxy, Caddy, an L4 relay, an
# HTTP/1.1 floor in Go and the backend direct on loopback (bench/run.sh installs the
# peers and load tools it lacks; about fifteen minutes on two cores; writes
# bench/results/comparison.md), then the Go micro-benchmarks. BENCH_QUICK=1 runs a three-minute trial of the comparison
# alone, which writes no file.
bench: build
	./bench/run.sh
	@if [ "$${BENCH_QUICK:-}" != 1 ]; then \
		set -e; \
		$(GO) test -run '^$$' -bench . -benchmem ./gateway/router ./gateway/proxy ./gateway/backend ./gateway/server ./gateway/dataplane; \
		$(GO) test -run '^$$' -bench Translate5k -benchmem ./controller/translate; \
	fi

# User-space instructions per request under valgrind's callgrind: Switchyard bare,
# with its defaults and with the policy set, the Go floor, nginx and HAProxy, three
# rounds (bench/instructions.sh installs valgrind and the peers it lacks; about three
# minutes; writes bench/results/instructions.md). The counts barely move with other
# work on the machine, where CPU times do.
.PHONY: bench-instructions
bench-instructions: build
	./bench/instructions.sh

# Resilience figures end to end: retries, outlier detection, the retry budget, the
# global rate limit (accuracy, latency, a Redis crash) and rollouts, with the
# standalone binary, redis-server and in-process backends on loopback. About two
# minutes; writes bench/results/resilience.md.
.PHONY: bench-resilience
bench-resilience: build
	$(GO) run ./bench/resilience -switchyard $(BIN) -out bench/results/resilience.md

# The controller and fleet on the real control-plane harness: new-route convergence
# through 1 and 50 replicas (p50/p99), then the controller at 5,000 routes and 20,000
# endpoints (CPU, memory, bytes per change). Several minutes.
bench-fleet:
	$(GO) test ./e2e/fleet -run '^$$' -bench Convergence -benchtime 200x -timeout 30m
	$(GO) test ./e2e/fleet -run '^$$' -bench ControllerScale -benchtime 1x -timeout 30m

# The upstream Gateway API conformance suite (its own module, at the gateway-api version
# of our go.mod), GATEWAY-HTTP profile, against the controller and an edge replica on
# the e2e harness. Writes the ConformanceReport to e2e/conformance/reports/. The usable
# static address is in the controller's pool (10.244.200.0/24) near its end, so that
# no Gateway holds it before the test asks for it (addresses are handed out lowest
# first); the unusable one is in the harness's network but outside the pool.
CONFORMANCE_ARGS ?= -gateway-class=switchyard -conformance-profiles=GATEWAY-HTTP \
	-organization=switchyard-dev -project=switchyard -url=https://github.com/switchyard-dev/switchyard \
	-version=$(VERSION) -contact=https://github.com/switchyard-dev/switchyard/issues \
	-usable-address=10.244.200.250 -unusable-address=10.244.201.10 \
	-report-output=$(CURDIR)/e2e/conformance/reports/standard-GATEWAY-HTTP.yaml
# CONFORMANCE_EXTRA adds suite flags for a focused local run, such as -run-test=NAME
# (such a run is for development; the committed report comes from the whole suite).
CONFORMANCE_EXTRA ?=
conformance:
	cd e2e/conformance && $(GO) test -count=1 -timeout 40m . -run TestConformance -args $(CONFORMANCE_ARGS) $(CONFORMANCE_EXTRA)

# The chart's CRDs: ours from api/crds, and the Gateway API kinds the controller serves
# from the experimental channel of the gateway-api module in go.mod. e2e/helm fails when
# the chart's copies differ from their sources.
GATEWAY_API_KINDS := gatewayclasses gateways httproutes referencegrants listenersets backendtlspolicies
chart-crds:
	rm -f charts/switchyard/crds/*.yaml charts/switchyard/crds-gateway-api/*.yaml
	cp api/crds/*.yaml charts/switchyard/crds/
	dir=$$($(GO) list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api) && \
	for kind in $(GATEWAY_API_KINDS); do \
		install -m 0644 "$$dir/config/crd/experimental/gateway.networking.k8s.io_$$kind.yaml" charts/switchyard/crds-gateway-api/; \
	done

# The helm CLI the chart tests run, built once from its Go module into the user cache
# folder (keyed by version). The tests build it themselves when it is missing.
helm:
	./e2e/helm/install-helm.sh

# The chart's tests alone: helm lint, golden templates, CRD copies, and the rendered
# objects applied to a real API server.
chart-test:
	$(GO) test -race -count=1 ./e2e/helm

generate:
	GOFLAGS=-mod=mod $(CONTROLLER_GEN) object paths=./api/... crd:crdVersions=v1 output:crd:artifacts:config=api/crds

clean:
	rm -rf bin
