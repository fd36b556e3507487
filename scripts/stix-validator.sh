#!/usr/bin/env bash
# The OASIS STIX 2.1 validator (stix2-validator from PyPI) in a cached venv:
# the gateway's TAXII test checks what it serves with it.
#   scripts/stix-validator.sh ensure   install if missing; print the validator's path
set -euo pipefail

VERSION=3.3.2
VENV=${CONCORD_CACHE:-$HOME/.cache/concord}/stix-venv-$VERSION
BIN=$VENV/bin/stix2_validator

case "${1:-ensure}" in
  ensure)
    if [ ! -x "$BIN" ]; then
      echo "stix: installing stix2-validator $VERSION into $VENV" >&2
      rm -rf "$VENV"
      python3 -m venv "$VENV" >&2 || { echo "stix: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
      "$VENV/bin/pip" install --quiet --disable-pip-version-check "stix2-validator==$VERSION" >&2
    fi
    echo "$BIN" ;;
  *) echo "usage: $0 ensure" >&2; exit 2 ;;
esac
