#!/usr/bin/env bash
# The fast check: everything that needs no broker, registry or chain. Runs in
# a few minutes warm on two cores, and first in `make test` and CI:
#   - formatting (rustfmt.toml) and every clippy lint as an error;
#   - the licence and duplicate-version policy (deny.toml), offline;
#   - commit subjects of at most 72 characters (since the policy began);
#   - every unit test of every crate, the conformance kit among them
#     (crates/protocol/tests/conformance_kit.rs), and the fuzzer (a fixed number of
#     inputs per target, tests/tests/fuzz.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\ncheck: %s\n' "$*"; }
step "cargo fmt --all --check"
cargo fmt --all --check || { echo "check: formatting differs: run 'cargo fmt --all'" >&2; exit 1; }
step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings
step "licences and duplicate versions (cargo deny, offline)"
if command -v cargo-deny >/dev/null; then
  cargo deny --offline --log-level error check licenses bans
else
  echo "check: cargo-deny is missing: scripts/install-deps.sh installs it" >&2; exit 1
fi
step "commit subjects"
# The policy starts after c782014; earlier subjects are history.
if git rev-parse -q --verify c782014 >/dev/null 2>&1; then
  long=$(git log --format=%s c782014..HEAD | awk 'length > 72' || true)
  [ -z "$long" ] || { printf 'check: commit subjects longer than 72 characters:\n%s\n' "$long" >&2; exit 1; }
fi
step "unit tests, the conformance kit and the fuzzer"
cargo test --workspace --exclude concord-tests --no-fail-fast
cargo test -p concord-tests --test fuzz
