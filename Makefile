# Cascade: build, run and check. `make test` is exactly what CI runs (.ci/run).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO           ?= go
GOFMT        ?= $(shell $(GO) env GOROOT)/bin/gofmt
# Fuzzing: FUZZTIME per target for `make fuzz`, TESTFUZZTIME per target inside `make test`.
# FUZZMINTIME bounds the minimization of each new input: without it a slow target (a real
# PeerConnection per input) spends its whole budget minimizing.
FUZZTIME     ?= 2m
TESTFUZZTIME ?= 10s
FUZZMINTIME  ?= 5s
BENCHOUT     ?= bench.out
BENCHTIME    ?= 1s
ADDR         ?= 127.0.0.1:7880

.PHONY: build run test fmt-check vet test-race test-fuzz test-lab bench fuzz lint clean test-js
# Steps run in the order written, also under -j: go parallelizes inside each step.
.NOTPARALLEL:

build:
	$(GO) build -o bin/sfu ./cmd/sfu
	$(GO) build -o bin/relayctl ./cmd/relayctl

run: build
	./bin/sfu --dev --http $(ADDR)

# The order matters for CI: cheap checks first, then the tests, then short fuzz runs.
test: fmt-check vet test-js test-race test-lab test-fuzz

fmt-check:
	@files="$$($(GOFMT) -l $$(find . -name '*.go' -not -path './.git/*' -not -path './tmp/*' -not -path '*/testdata/*'))"; \
	if [ -n "$$files" ]; then echo "gofmt: these files need formatting (gofmt -w FILE):"; echo "$$files"; exit 1; fi; \
	echo "gofmt: ok"

vet:
	$(GO) vet ./...

# Every package but the latency lab's acceptance run, which runs alone next (test-lab): it
# measures latencies through an emulator whose timers a machine busy with other tests delays.
test-race:
	$(GO) test -race -count=1 -timeout 20m $$($(GO) list ./... | grep -v /test/labexp$$)

test-fuzz:
	@$(call fuzz_all,$(TESTFUZZTIME))

# The browser SDK, npm package @cascade-sfu/client: its types (tsc), its pure
# parts under node's test runner, and `npm pack` installed into a fresh project.
# Its media parts are tested in headless Chromium by test/e2e (test-race).
test-js:
	cd sdk/js && npm ci --no-audit --no-fund && npm test

# The latency lab's acceptance run, alone, with its progress (root: network namespaces and TAP
# devices; elsewhere it skips, saying why).
test-lab:
	$(GO) test -count=1 -v -timeout 20m ./test/labexp

fuzz:
	@$(call fuzz_all,$(FUZZTIME))

# Packages that have benchmarks, found from their sources.
bench:
	@pkgs="$$(grep -rl --include='*_test.go' '^func Benchmark' . | xargs -r -n1 dirname | sort -u)"; \
	if [ -z "$$pkgs" ]; then echo "no benchmarks"; exit 0; fi; \
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $$pkgs | tee $(BENCHOUT); \
	echo "benchmark results written to $(BENCHOUT)"

lint: fmt-check vet
	@if command -v staticcheck >/dev/null; then staticcheck ./...; else echo "staticcheck not installed; skipped"; fi

clean:
	rm -rf bin $(BENCHOUT)

# fuzz_all runs every fuzz target of the module for $(1) each. Candidate packages are those
# whose tests declare a Fuzz function; `go test -list` then names the targets the compiler
# sees (build tags included). One target per `go test -fuzz` run, as go test requires.
# Go 1.26 can fail a clean run at the -fuzztime boundary with a bare "context deadline exceeded"
# (golang/go#75804, fixed in Go 1.27): such a run, which wrote no failing input, is retried.
# Each run's output is shown once it ends, without the periodic progress lines when it passed.
define fuzz_all
dirs="$$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -r -n1 dirname | sort -u)"; \
log="$$(mktemp)"; trap 'rm -f "$$log"' EXIT; \
for d in $$dirs; do \
	list="$$($(GO) test -list '^Fuzz' "$$d")"; \
	for f in $$(printf '%s\n' "$$list" | grep '^Fuzz' || true); do \
		for try in 1 2 3; do \
			echo "=== fuzz $$d $$f ($(1))"; \
			if $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(1) -fuzzminimizetime $(FUZZMINTIME) "$$d" >"$$log" 2>&1; then \
				grep -v '^fuzz: elapsed' "$$log" || true; \
				break; \
			fi; \
			if grep -q 'Failing input written' "$$log" || ! grep -qx '    context deadline exceeded' "$$log" || [ $$try = 3 ]; then \
				cat "$$log"; \
				exit 1; \
			fi; \
			echo "fuzz: $$f hit Go's -fuzztime deadline race (golang/go#75804) with no failing input; retrying"; \
		done; \
	done; \
done
endef

# Side by side with LiveKit (issue #10), not part of test: builds LiveKit v1.13.5 from its tag
# into $(LIVEKIT_SRC) (outside the repository; needs a clone or mirror at $(LIVEKIT_GIT)), then
# runs scripts/sidebyside.sh, which prints a markdown table.
LIVEKIT_TAG ?= v1.13.5
LIVEKIT_GIT ?= https://github.com/livekit/livekit
LIVEKIT_SRC ?= /work/livekit-src
.PHONY: bench-livekit sidebyside
bench-livekit:
	@if [ ! -x $(LIVEKIT_SRC)/livekit-server ]; then \
		[ -d $(LIVEKIT_SRC)/cmd/server ] || git clone --depth 1 --branch $(LIVEKIT_TAG) $(LIVEKIT_GIT) $(LIVEKIT_SRC); \
		cd $(LIVEKIT_SRC) && GOFLAGS=-mod=mod $(GO) build -o livekit-server ./cmd/server; \
	fi
	LIVEKIT_BIN=$(LIVEKIT_SRC)/livekit-server scripts/sidebyside.sh
sidebyside: bench-livekit
