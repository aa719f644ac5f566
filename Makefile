# taillight — run `make` for the list of targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO        ?= go
BIN       := bin/taillight
PKGS      := ./...
# MODULES are the Go modules of this repository: taillight itself and the
# integration tests (their own module, so that library users do not get
# testcontainers, chromedp and yaml). ./... stops at a module boundary, so
# every Go target runs in each.
MODULES   := . integration
VENV      := .venv
LOCAL     := deployments/local
STATICCHECK_VERSION := v0.8.2

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/taillight
	$(GO) build -trimpath -o $(BIN) ./cmd/taillight

.PHONY: fmt
fmt: ## gofmt every Go file
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## go vet (every module)
	@set -e; for m in $(MODULES); do echo "go vet $$m"; (cd $$m && $(GO) vet $(PKGS)); done

.PHONY: lint
lint: vet ## go vet, gofmt check and staticcheck (fails on any finding)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@set -e; for m in $(MODULES); do echo "staticcheck $$m"; (cd $$m && $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)); done

.PHONY: docs
docs: ## regenerate docs/flags.md from the commands' flag sets (TestFlagsDoc fails while it is stale)
	$(GO) test -count=1 -run '^TestFlagsDoc$$' ./cmd/taillight -update

.PHONY: deps
deps: ## install ClickHouse (Debian), Kafka jars (Maven), workerd (npm), chdb (PyPI venv)
	$(LOCAL)/install.sh

.PHONY: test
test: deps ## everything CI runs: lint, unit + integration tests (real Kafka, ClickHouse, workerd), SQL check, bounded fuzzing
	$(MAKE) lint
	@set -e; for m in $(MODULES); do echo "go test $$m"; (cd $$m && $(GO) test -race -shuffle=on -timeout 25m $(PKGS)); done
	$(MAKE) test-sql
	$(MAKE) fuzz-ci

.PHONY: test-unit
test-unit: ## unit tests only (no real servers)
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) test -race -shuffle=on -short $(PKGS)); done

.PHONY: test-integration
test-integration: deps ## integration tests against real Kafka, ClickHouse and workerd
	cd integration && TAILLIGHT_E2E=1 $(GO) test -race -timeout 25m ./...

.PHONY: chaos
chaos: deps ## the full chaos suite (1M events, 12 SIGKILLs, 10 s and 60 s ClickHouse outages, broker kills…); a fast subset runs in make test
	cd integration && TAILLIGHT_E2E=1 TAILLIGHT_CHAOS=full $(GO) test -count=1 -v -timeout 60m ./chaos/

.PHONY: test-sql
test-sql: ## run every DDL file and saved query on a current ClickHouse engine (chdb)
	$(VENV)/bin/python $(LOCAL)/sqlcheck.py

.PHONY: screenshots
screenshots: ## the dashboard in headless Chromium at three data shapes (fresh, 200 scripts, 24 hours): checks, then docs/dash-*.png (1M events each; TAILLIGHT_DASH_SHAPES=small: a tenth)
	cd integration && TAILLIGHT_E2E=1 TAILLIGHT_SCREENSHOTS=$(CURDIR)/docs $(GO) test -count=1 -run '^TestBrowserShapes$$' -timeout 30m -v ./browser/

.PHONY: bench
bench: ## Go micro-benchmarks
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) test -run='^$$' -bench=. -benchmem $(PKGS)); done

.PHONY: fuzz
fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	@for t in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$t/*_test.go | sed 's/func //'); do \
	    echo "fuzz $$t $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$${FUZZTIME:-30s} $$t || exit 1; \
	  done; done

.PHONY: fuzz-ci
fuzz-ci: ## every fuzz target for FUZZCI_TIME (default 8s each: 11 targets in about 2 minutes) each, bounded minimization; fails on any finding (a bare deadline stop of Go's fuzz coordinator, no input written, is run again, up to 3 attempts)
	@for t in $$(grep -rl --include='*_test.go' '^func Fuzz' --exclude-dir=node_modules --exclude-dir=.venv . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$t/*_test.go | sed 's/func //'); do \
	    for attempt in 1 2 3; do \
	      echo "fuzz-ci $$t $$f (attempt $$attempt)"; \
	      out=$$($(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$${FUZZCI_TIME:-8s} -fuzzminimizetime=100x $$t 2>&1); rc=$$?; echo "$$out"; \
	      [ $$rc -eq 0 ] && break; \
	      if ! echo "$$out" | grep -q 'context deadline exceeded' || echo "$$out" | grep -q 'Failing input written'; then exit 1; fi; \
	      echo "fuzz-ci: $$f stopped on Go's fuzz-time deadline race (golang/go#75804, fixed in Go 1.27) with no input found"; \
	      [ $$attempt -eq 3 ] && exit 1; \
	    done; \
	  done; done

.PHONY: run
run: build ## the whole pipeline on this machine with a dashboard (taillight dev; flags in DEV_FLAGS)
	$(LOCAL)/install.sh clickhouse
	$(BIN) dev $(DEV_FLAGS)

.PHONY: check-all
check-all: lint test bench ## lint, all tests and benchmarks

.PHONY: bench-e2e
bench-e2e: build ## end-to-end benchmark vs a decode-only consumer (BENCH_FLAGS, e.g. -n 20000); report in artifacts/bench-e2e.json
	$(LOCAL)/install.sh kafka clickhouse
	@mkdir -p artifacts
	$(BIN) bench -json artifacts/bench-e2e.json $(BENCH_FLAGS)
