#!/usr/bin/env bash
# Runs every test: unit tests, then the integration tests against the real
# broker and registry that `make up` started. Integration tests run in
# parallel; each uses its own topic copies, consumer groups and temp dirs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/stack.sh status >/dev/null || { echo "test: the stack is not up; run 'make up' (make test does)" >&2; exit 1; }
cargo test --workspace --exclude concord-tests
cargo test -p concord-tests -- --test-threads "${CONCORD_TEST_THREADS:-8}"
