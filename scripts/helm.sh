#!/usr/bin/env bash
# Helm for the chart checks, built from its Go module (the Go module proxy is
# reachable where download sites are not) and cached in ~/.cache/concord/bin.
#
#   scripts/helm.sh ensure   build helm once if it is missing; print its path
#   scripts/helm.sh check    helm lint and helm template of helm/concord (default values
#                            and with ServiceMonitor and Strimzi resources turned on)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELM_VERSION=v3.22.0
CACHE=${CONCORD_CACHE:-$HOME/.cache/concord}
HELM=${CONCORD_HELM:-$CACHE/bin/helm}

ensure() {
  # Built with `go install`, helm reports its minor version only (v3.22).
  if [ -x "$HELM" ] && "$HELM" version --short 2>/dev/null | grep -q "^${HELM_VERSION%.*}"; then return; fi
  command -v go >/dev/null || { echo "helm: Go is missing; it builds helm ($HELM_VERSION) from its module" >&2; exit 1; }
  echo "helm: building helm $HELM_VERSION from helm.sh/helm/v3 (once; a few minutes on 2 cores)" >&2
  mkdir -p "$(dirname "$HELM")"
  GOBIN=$(dirname "$HELM") GOFLAGS=-mod=mod go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" \
    || { echo "helm: go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION failed" >&2; exit 1; }
}

check() {
  ensure
  local out; out=$(mktemp -d)
  trap 'rm -rf "$out"' RETURN
  "$HELM" lint "$ROOT/helm/concord" --strict
  "$HELM" lint "$ROOT/helm/concord" --strict --set serviceMonitor.enabled=true --set strimzi.enabled=true
  "$HELM" template concord "$ROOT/helm/concord" >"$out/default.yaml"
  "$HELM" template concord "$ROOT/helm/concord" --set serviceMonitor.enabled=true --set strimzi.enabled=true >"$out/all.yaml"
  echo "helm: chart lints and renders ($(grep -c '^kind:' "$out/default.yaml") resources by default, $(grep -c '^kind:' "$out/all.yaml") with ServiceMonitor and Strimzi)"
}

case "${1:-}" in
  ensure) ensure; echo "$HELM" ;;
  check) check ;;
  *) echo "usage: $0 ensure|check" >&2; exit 2 ;;
esac
