#!/usr/bin/env bash
# Installs what building and running Concord needs on a Debian machine, if it
# is missing: a C toolchain, pkg-config, OpenSSL and zlib headers (librdkafka is
# built from source by rdkafka-sys), Java 17+ and Maven (Kafka and the registry
# run on the JVM and come from Maven Central), curl, Python's venv (the STIX
# validator the gateway tests use comes from PyPI), Node.js with npm (anvil and
# solc-js, the dev chain's node and compiler, come from the npm registry). Rust
# (rustup) and Go (which builds helm) are expected.
set -euo pipefail
need=()
for pkg in build-essential pkg-config libssl-dev zlib1g-dev curl maven openjdk-17-jre-headless python3-venv npm; do
  case $pkg in
    npm) command -v npm >/dev/null && continue ;;
    openjdk-17-jre-headless) command -v java >/dev/null && continue ;;
    maven) command -v mvn >/dev/null && continue ;;
    curl) command -v curl >/dev/null && continue ;;
    python3-venv) python3 -c 'import ensurepip, venv' 2>/dev/null && continue ;;
  esac
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
command -v cargo >/dev/null || { echo "install-deps: cargo is missing; install Rust with rustup (https://rustup.rs)" >&2; exit 1; }
# make test runs cargo fmt --check and cargo clippy: rustup's default profile has both.
for component in rustfmt clippy; do
  cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1 && continue
  command -v rustup >/dev/null || { echo "install-deps: cargo $component is missing and there is no rustup to add it" >&2; exit 1; }
  echo "install-deps: adding the Rust component $component"
  rustup component add "$component"
done
# make check enforces the licence and duplicate-version policy (deny.toml)
# with cargo-deny, built once from crates.io into ~/.cargo/bin.
DENY_VERSION=0.20.2
if ! cargo deny --version 2>/dev/null | grep -q "$DENY_VERSION"; then
  echo "install-deps: building cargo-deny $DENY_VERSION from crates.io (a few minutes, once)"
  cargo install --locked --quiet "cargo-deny@$DENY_VERSION"
fi
# helm (for the chart checks) is built from its Go module by scripts/helm.sh.
command -v go >/dev/null || { echo "install-deps: go is missing; Go 1.24 or newer builds helm for the chart checks (https://go.dev/dl)" >&2; exit 1; }
echo "install-deps: ok"
