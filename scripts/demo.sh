#!/usr/bin/env bash
# The hub's main job, end to end on the real stack (`make demo` starts it first):
# two agencies publish signed alerts, a third agency's consumer verifies them,
# a forged alert (one agency's key, another agency's name) is rejected to the
# dead-letter topic, and the auditor sees why. Exits non-zero if a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
CONCORD=${CONCORD:-concord}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() { printf '\ndemo: FAILED: %s\n' "$*" >&2; exit 1; }

step "A national internet committee publishes an alert from local scam reports (bank impersonation)"
"$CONCORD" publish --as committee-ph --file config/samples/alert-bank-impersonation.json | tee "$out/p1"

step "Foreign law enforcement publishes an alert from an investigation (pig-butchering wallet)"
"$CONCORD" publish --as enforcement-us --file config/samples/alert-pig-butchering-wallet.json | tee "$out/p2"

step "A forger holding the committee's key and certificate claims to be law enforcement"
"$CONCORD" forge --as committee-ph --claim enforcement-us --file config/samples/alert-pig-butchering-wallet.json | tee "$out/p3"

forged_id=$(awk '{print $3}' "$out/p3")
id1=$(awk '{print $3}' "$out/p1")
id2=$(awk '{print $3}' "$out/p2")

step "The exchange's consumer verifies every record; the forged one goes to the dead-letter topic"
"$CONCORD" consume --as exchange-global --topic alerts --group demo --idle-secs 5 --timeout-secs 120 | tee "$out/consume"
grep -q "id=$id1" "$out/consume" || fail "the committee's alert was not verified"
grep -q "id=$id2" "$out/consume" || fail "law enforcement's alert was not verified"
grep -q "id=$forged_id" "$out/consume" && fail "the forged alert reached the handler"

step "The auditor reads the dead-letter topic: the reason and the original record are kept"
"$CONCORD" tail --as audit-hub --topic dlq --idle-secs 5 | tee "$out/dlq"
grep -q "event $forged_id .*issuer_key_mismatch" "$out/dlq" || fail "the forged alert is not on the dead-letter topic"

step "Anyone can tail the alerts as their agency: verified, or rejected and why"
"$CONCORD" tail --as issuer-usdx --topic alerts --idle-secs 3 | tail -n 4

printf '\ndemo: OK — 2 alerts verified and delivered, 1 forgery rejected to concord.dlq.v1 with its reason.\n'
