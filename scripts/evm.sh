#!/usr/bin/env bash
# The local EVM chain freezes happen on (issue #15): Foundry's anvil, from the
# npm registry (@foundry-rs/anvil-linux-amd64), and the ConcordStablecoin
# contract (chain/ConcordStablecoin.sol) compiled by solc-js (npm `solc`, the
# version the pragma pins) and deployed at start.
#
#   scripts/evm.sh ensure   install anvil and solc into the cache if missing
#   scripts/evm.sh up       start anvil, compile and deploy the token, check the
#                           deployed code is the compiled one; idempotent;
#                           writes $STACK/evm.json (rpc, chain id, token, owner)
#   scripts/evm.sh status   say whether anvil answers
#   scripts/evm.sh compile OUT   compile the contract afresh into OUT (tests compare)
#   scripts/evm.sh down     stop anvil
#
# Environment: CONCORD_CACHE (default ~/.cache/concord), CONCORD_STACK_DIR
# (default ./.stack), CONCORD_EVM_PORT (default 18545), CONCORD_EVM_BLOCK_TIME
# (seconds between blocks; unset: a block per transaction, at once).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ANVIL_VERSION=1.7.1
SOLC_VERSION=0.8.37
CACHE=${CONCORD_CACHE:-$HOME/.cache/concord}
STACK=${CONCORD_STACK_DIR:-$ROOT/.stack}
PORT=${CONCORD_EVM_PORT:-18545}
BLOCK_TIME=${CONCORD_EVM_BLOCK_TIME:-}
NPM_DIR=$CACHE/npm-evm-anvil-$ANVIL_VERSION-solc-$SOLC_VERSION
ANVIL=$NPM_DIR/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
URL=http://127.0.0.1:$PORT
CHAIN_ID=31337
# anvil's first dev account (its well-known test mnemonic): it deploys the
# token and owns it, i.e. it is the issuer's operator on this dev chain.
OWNER=0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266

say() { printf 'evm: %s\n' "$*"; }
die() { printf 'evm: error: %s\n' "$*" >&2; exit 1; }

ensure() {
  [ -x "$ANVIL" ] && [ -f "$NPM_DIR/node_modules/solc/package.json" ] && return 0
  command -v npm >/dev/null || die "npm is needed to fetch anvil and solc (install Node.js)"
  say "installing anvil $ANVIL_VERSION and solc $SOLC_VERSION from the npm registry into $NPM_DIR"
  mkdir -p "$NPM_DIR"
  npm install --silent --no-audit --no-fund --prefix "$NPM_DIR" \
    "@foundry-rs/anvil-linux-amd64@$ANVIL_VERSION" "solc@$SOLC_VERSION" >&2 \
    || die "npm install of anvil and solc failed"
  [ -x "$ANVIL" ] || die "the npm package did not ship $ANVIL"
}

# rpc METHOD PARAMS_JSON: the result, as JSON; fails on an RPC error.
rpc() {
  curl -fsS -m 10 -H 'content-type: application/json' \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$1\",\"params\":$2}" "$URL" \
    | python3 -c 'import json,sys
r=json.load(sys.stdin)
if "error" in r: sys.exit("rpc error: "+json.dumps(r["error"]))
print(json.dumps(r["result"]))'
}

answers() { rpc eth_chainId '[]' >/dev/null 2>&1; }
alive() { [ -f "$STACK/anvil.pid" ] && kill -0 "$(cat "$STACK/anvil.pid")" 2>/dev/null; }
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

up() {
  ensure
  mkdir -p "$STACK/evm"
  NODE_PATH="$NPM_DIR/node_modules" node "$ROOT/chain/compile.cjs" "$STACK/evm/ConcordStablecoin.json"
  if ! alive; then
    # The chain's state is kept across a clean stop (SIGTERM) and reloaded.
    # shellcheck disable=SC2046 # the block time is one option or none
    "$ANVIL" --host 127.0.0.1 --port "$PORT" --chain-id "$CHAIN_ID" --state "$STACK/evm/state.json" \
      $( [ -n "$BLOCK_TIME" ] && printf -- '--block-time %s' "$BLOCK_TIME" ) \
      >"$STACK/evm/anvil.log" 2>&1 &
    echo $! >"$STACK/anvil.pid"
  fi
  for _ in $(seq 1 100); do answers && break; sleep 0.2; done
  answers || { tail -20 "$STACK/evm/anvil.log" >&2; die "anvil did not answer on $URL in 20 s; see $STACK/evm/anvil.log"; }
  # The owner's key (anvil's first dev key, public test material): the dev issuer's operator key.
  if [ ! -s "$STACK/evm/operator.key" ]; then
    grep -m1 -o '^(0) 0x[0-9a-f]\{64\}' "$STACK/evm/anvil.log" | cut -d' ' -f2 >"$STACK/evm/operator.key"
    [ -s "$STACK/evm/operator.key" ] || die "no dev key in $STACK/evm/anvil.log"
    chmod 600 "$STACK/evm/operator.key"
  fi
  local artifact=$STACK/evm/ConcordStablecoin.json token="" code
  if [ -f "$STACK/evm.json" ]; then token=$(field "$STACK/evm.json" token); fi
  code=$( [ -n "$token" ] && rpc eth_getCode "[\"$token\",\"latest\"]" | tr -d '"' || echo 0x)
  if [ "$code" != "$(field "$artifact" deployed_bytecode)" ]; then
    local data receipt hash
    data="$(field "$artifact" bytecode)000000000000000000000000${OWNER#0x}"
    hash=$(rpc eth_sendTransaction "[{\"from\":\"$OWNER\",\"data\":\"$data\"}]" | tr -d '"')
    for _ in $(seq 1 150); do
      receipt=$(rpc eth_getTransactionReceipt "[\"$hash\"]")
      [ "$receipt" != null ] && break
      sleep 0.2
    done
    [ "$receipt" != null ] || die "the token's deployment $hash was not mined"
    token=$(printf '%s' "$receipt" | python3 -c 'import json,sys; r=json.load(sys.stdin); sys.exit("deployment reverted") if r["status"]!="0x1" else print(r["contractAddress"])')
    code=$(rpc eth_getCode "[\"$token\",\"latest\"]" | tr -d '"')
    [ "$code" = "$(field "$artifact" deployed_bytecode)" ] || die "the code at $token is not the compiled ConcordStablecoin"
    say "ConcordStablecoin deployed at $token (tx $hash), owned by $OWNER"
  fi
  printf '{"rpc_url": "%s", "chain_id": %s, "token": "%s", "owner": "%s", "operator_key": "%s", "artifact": "%s"}\n' \
    "$URL" "$CHAIN_ID" "$token" "$OWNER" "$STACK/evm/operator.key" "$artifact" >"$STACK/evm.json"
  say "up: anvil $URL (chain $CHAIN_ID), token $token"
}

down() {
  if alive; then
    local pid; pid=$(cat "$STACK/anvil.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { say "anvil did not stop in 10 s; killing"; kill -9 "$pid" 2>/dev/null || true; }
    say "anvil stopped"
  fi
  rm -f "$STACK/anvil.pid"
}

status() {
  if alive && answers; then say "anvil: running (pid $(cat "$STACK/anvil.pid")), $URL answers"
  else say "anvil: not running"; return 1; fi
}

case "${1:-}" in
  ensure) ensure ;;
  up) up ;;
  down) down ;;
  status) status ;;
  compile) ensure; NODE_PATH="$NPM_DIR/node_modules" node "$ROOT/chain/compile.cjs" "${2:?usage: $0 compile OUT}" ;;
  *) echo "usage: $0 ensure|up|status|down|compile OUT" >&2; exit 2 ;;
esac
