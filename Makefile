# Thin entry points. Everything real lives in scripts/ and the Rust workspace.
# The cargo target folder lives outside the clone so that CI runs on the same
# machine reuse the build.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/concord/target
export CONCORD ?= $(CARGO_TARGET_DIR)/debug/concord
export CONCORD_AUDIT ?= $(CARGO_TARGET_DIR)/debug/concord-audit
export CONCORD_BIN_DIR ?= $(CARGO_TARGET_DIR)/debug
CARGO ?= cargo

.PHONY: build check up down status demo test bench clean

build:
	$(CARGO) build --workspace --bins --tests

# Everything that needs no stack: fmt, clippy, licences, unit tests, the
# conformance kit, the fuzzer. make test runs it first.
check:
	scripts/check.sh

up: build
	scripts/stack.sh up

down:
	scripts/stack.sh down

status:
	scripts/stack.sh status

demo: up
	scripts/demo.sh

test: check up
	scripts/test.sh

bench: up
	$(CARGO) build --release -p concord-bench -p concord-cli
	$(CARGO_TARGET_DIR)/release/concord-bench $(BENCH_ARGS)

clean: down
	scripts/stack.sh reset
	rm -rf .pki .state
