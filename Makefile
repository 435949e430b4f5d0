# ringcache — build, run and test. `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
BIN   := bin
TOOLS := $(BIN)/tools
# What `ringcached --version`, `ringcachectl --version` and the RESP door's
# INFO report: the tag or commit of this checkout, "+dirty" with changes.
VERSION ?= $(shell git describe --tags --always --dirty=+dirty 2>/dev/null || echo devel)
LDFLAGS := -X github.com/ringcache/ringcache/internal/buildinfo.version=$(VERSION)

# Code generation tools, pinned. `make proto` installs them into bin/tools.
BUF_VERSION                   := v1.75.0
PROTOC_GEN_GO_VERSION         := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION    := v1.6.2
PROTOC_GEN_GO_VTPROTO_VERSION := v0.6.0

.PHONY: all build run test test-short lint proto tools clean help

all: build

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/ringcached, bin/ringcachectl and bin/ringcachectl-bench (which ringcachectl runs for bench and simulate)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ringcached ./cmd/node
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ringcachectl ./cmd/ctl
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ringcachectl-bench ./cmd/ctl/bench

run: build ## start a local 3-node cluster on loopback with demo data (Ctrl-C stops it)
	./scripts/run-local.sh

# deploy/ is a module of its own (its checks need k8s.io/api and Prometheus,
# which the binaries do not): test and lint go into it too.
DEPLOY := deploy

test: ## run every test with the race detector (starts a throwaway PostgreSQL)
	$(GO) test -race -count=1 -timeout 20m ./...
	cd $(DEPLOY) && $(GO) test -race -count=1 ./...

test-short: ## quick unit tests only
	$(GO) test -short -count=1 ./...
	cd $(DEPLOY) && $(GO) test -short -count=1 ./...

lint: ## gofmt, go vet and buf lint
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd $(DEPLOY) && $(GO) vet ./...
	@if [ -x $(TOOLS)/buf ]; then $(TOOLS)/buf lint; else echo "buf not installed: run 'make tools' to lint the protos"; fi

tools: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc $(TOOLS)/protoc-gen-go-vtproto ## install the pinned code generators

$(TOOLS)/buf:
	GOBIN=$(CURDIR)/$(TOOLS) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(TOOLS)/protoc-gen-go:
	GOBIN=$(CURDIR)/$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(TOOLS)/protoc-gen-go-grpc:
	GOBIN=$(CURDIR)/$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
$(TOOLS)/protoc-gen-go-vtproto:
	GOBIN=$(CURDIR)/$(TOOLS) $(GO) install github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto@$(PROTOC_GEN_GO_VTPROTO_VERSION)

proto: tools ## lint the .proto files and regenerate the committed Go code
	$(TOOLS)/buf lint
	$(TOOLS)/buf generate

clean: ## remove build output and the demo data
	rm -rf $(BIN)/ringcached $(BIN)/ringcachectl $(BIN)/ringcachectl-bench data/

.PHONY: bench-compare
bench-compare: build ## ringcache (gRPC, RESP door) beside Redis and a 3-shard Redis Cluster: throughput, CPU/op, latency, stampede, memory (needs redis-server, redis-tools; see BENCHMARKS.md)
	scripts/bench-compare.sh

.PHONY: bench-tls
bench-tls: build ## pipelined throughput with mTLS and ACLs against plaintext, 3 nodes, 50 callers (see BENCHMARKS.md)
	scripts/bench-tls.sh

.PHONY: bench-write
bench-write: ## benchmark Set per write mode, write-behind coalescing and replication (starts a throwaway PostgreSQL; see docs/benchmarks.md)
	@set -o pipefail; out=$$(mktemp); trap 'rm -f "$$out"' EXIT; \
	$(GO) test -run '^$$' -bench '^BenchmarkSet_' -benchtime 5s -count 1 -timeout 30m ./internal/bench/ | tee "$$out" && \
	$(GO) test -run '^$$' -bench '^BenchmarkCoalescing_' -benchtime 1x -count 1 -timeout 30m ./internal/bench/ | tee -a "$$out" && \
	$(GO) test -run '^$$' -bench '^BenchmarkReplication_' -benchtime 5s -count 1 -timeout 30m ./internal/bench/ | tee -a "$$out" && \
	awk -f internal/bench/summary.awk "$$out"

CHAOS_DURATION ?= 20m
CHAOS_TIMEOUT  ?= 90m
CHAOS_OUT      ?= $(CURDIR)/$(BIN)/chaos
CHAOS_NEMESES  ?=
CHAOS_NODE_FLAGS ?=
.PHONY: chaos
chaos: ## the chaos suite for CHAOS_DURATION (20m): nemeses against 3 nodes and PostgreSQL in network namespaces (root); prints the table (docs/reliability.md)
	@mkdir -p $(CHAOS_OUT); rm -f $(CHAOS_OUT)/table.txt $(CHAOS_OUT)/history.jsonl; \
	RINGCACHE_CHAOS_DURATION=$(CHAOS_DURATION) RINGCACHE_CHAOS_OUT=$(CHAOS_OUT) RINGCACHE_CHAOS_NEMESES=$(CHAOS_NEMESES) RINGCACHE_CHAOS_NODE_FLAGS="$(CHAOS_NODE_FLAGS)" \
	$(GO) test -count=1 -v -run '^TestChaos$$' -timeout $(CHAOS_TIMEOUT) ./internal/chaos/ 2>&1 \
	| tee $(CHAOS_OUT)/test.log | grep --line-buffered -E 'seed [0-9]|msg="chaos round"'; \
	status=$${PIPESTATUS[0]}; echo; cat $(CHAOS_OUT)/table.txt 2>/dev/null || tail -50 $(CHAOS_OUT)/test.log; \
	grep -E '^(--- |ok|FAIL)|known failure|passed, but' $(CHAOS_OUT)/test.log; \
	echo "log: $(CHAOS_OUT)/test.log, history (JSON lines): $(CHAOS_OUT)/history.jsonl, node logs: $(CHAOS_OUT)/nodes/"; exit $$status

SCALE_NODES  ?= 50
SCALE_WINDOW ?= 60s
SCALE_SEEDS  ?= 3
.PHONY: scale
scale: ## in-process cluster of SCALE_NODES (50) on memberlist's local preset: time until rings agree after start, join, crashes; gossip bytes; heap per node; table costs at 500 (docs/capacity-planning.md)
	@set -o pipefail; \
	RINGCACHE_SCALE_NODES=$(SCALE_NODES) RINGCACHE_SCALE_WINDOW=$(SCALE_WINDOW) RINGCACHE_SCALE_SEEDS=$(SCALE_SEEDS) \
	$(GO) test -count=1 -v -run '^TestScale_' -timeout 10m ./internal/clustertest/ | grep -E 'scale n=|^(--- |ok|FAIL)' && \
	$(GO) test -count=1 -v -run '^(TestRing_HeapPerTable|TestTableMessage_FitsOneMessageAt500Members)$$' ./pkg/ring/ ./internal/table/ | grep -E 'members=|^(--- |ok|FAIL)' && \
	$(GO) test -run '^$$' -bench '^Benchmark(New|Rebalance|FromOwners)$$' -benchmem -count 1 ./pkg/ring/ | grep -E '^Benchmark|^ok'
