#!/usr/bin/env bash
# The hub's main job, end to end on the real stack (`make demo` starts it first):
# two agencies publish signed alerts, a third agency's consumer verifies them,
# a forged alert (one agency's key, another agency's name) is rejected to the
# dead-letter topic, the committee ingests scam reports, law enforcement has the
# issuer freeze a wallet (exactly once, tracked to EXECUTED), and the auditor
# logs everything, replays the case and exports evidence that verifies offline.
# Exits non-zero if a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUST_BACKTRACE=0 # one step expects an error; its message is enough
CONCORD=${CONCORD:-concord}
CONCORD_AUDIT=${CONCORD_AUDIT:-concord-audit}
BIN=${CONCORD_BIN_DIR:-$(dirname "$(command -v "$CONCORD")")}
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; rm -rf "$out"; }
out=$(mktemp -d)
trap cleanup EXIT
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

step "The national internet committee ingests a day's scam reports: normalized, de-duplicated, signed alerts"
mkdir -p .state/committee-ph/reports
cp config/samples/reports/2026-11-28-hotline.csv ".state/committee-ph/reports/hotline-$(date +%s%N).csv"
"$BIN/concord-committee" config/committee.toml --once | tee "$out/committee"
grep -q "refused .*call me maybe" "$out/committee" || fail "the malformed report line was not refused"

step "Law enforcement asks the issuer to freeze the wallet; the issuer freezes it exactly once and confirms"
"$BIN/concord-issuer" config/issuer.toml 2>"$out/issuer.log" & pids+=($!)
"$BIN/concord-enforcement" config/enforcement.toml 2>"$out/enforcement.log" & pids+=($!)
"$CONCORD" case send --file config/samples/freeze-request.json --to issuer-usdx | tee "$out/sent"
request=$(awk '{print $4}' "$out/sent")
for _ in $(seq 1 60); do
  "$CONCORD" case status US-2026-0419 >"$out/case" 2>/dev/null || true
  grep -q "request $request .*EXECUTED" "$out/case" && break
  sleep 1
done
cat "$out/case" | grep -A1 "request $request"
grep -q "request $request .*EXECUTED" "$out/case" || fail "the freeze request did not reach EXECUTED: $(tail -3 "$out/issuer.log")"
grep -A1 "request $request" "$out/case" | grep -qE "FROZEN|ALREADY_FROZEN" || fail "the wallet is not frozen"
for p in "${pids[@]}"; do kill -TERM "$p"; wait "$p" || true; done
pids=()

step "The auditor appends every record, verified or rejected, to its Merkle log"
"$CONCORD_AUDIT" config/audit.toml 2>"$out/audit.log" &
audit_pid=$!
sleep 8
kill -TERM "$audit_pid"; wait "$audit_pid" || fail "the audit service failed: $(tail -3 "$out/audit.log")"
"$CONCORD" log checkpoint | tee "$out/checkpoint"
"$CONCORD" log check | tee "$out/check"

step "Replay the case with every signature re-verified as of its own time"
"$CONCORD" replay --case US-2026-0419 >"$out/replay"
tail -n 3 "$out/replay" | cut -c1-200
grep -q "verified .*FreezeRequest" "$out/replay" || fail "the replay does not show the verified freeze request"

step "Export the case as an evidence bundle and verify it offline with only public keys"
"$CONCORD" evidence export --case US-2026-0419 --out "$out/evidence.json"
"$CONCORD" evidence verify "$out/evidence.json" --directory .pki/agencies.toml
python3 - "$out/evidence.json" "$out/tampered.json" <<'PY'
import base64, json, sys
b = json.load(open(sys.argv[1]))
leaf = bytearray(base64.b64decode(b["records"][-1]["leaf"]))
leaf[-60] ^= 0x01                      # one bit of the stored record
b["records"][-1]["leaf"] = base64.b64encode(bytes(leaf)).decode()
json.dump(b, open(sys.argv[2], "w"))
PY
if "$CONCORD" evidence verify "$out/tampered.json" --directory .pki/agencies.toml 2>"$out/tampered"; then
  fail "a tampered bundle verified"
fi
cat "$out/tampered"

printf '\ndemo: OK — 2 alerts verified and delivered, 1 forgery rejected to concord.dlq.v1 with its reason,\n'
printf '      scam reports turned into alerts, a freeze executed once and tracked to EXECUTED,\n'
printf '      every record in the signed audit log,\n'
printf '      and an evidence bundle that verifies offline and fails when one bit changes.\n'
