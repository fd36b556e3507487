#!/usr/bin/env python3
"""The demo's hands on the dev chain (anvil, `scripts/evm.sh up`), over plain JSON-RPC.

  chain.py fund ADDRESS UNITS      the token's owner un-lists ADDRESS if a
                                   former run froze it, and mints it up to
                                   UNITS whole tokens
  chain.py transfer FROM TO UNITS  FROM sends UNITS to TO (anvil impersonates
                                   FROM); prints the node's answer, exit 1 if refused
  chain.py show ADDRESS            balance and blacklisting of ADDRESS
  chain.py tx HASH                 the transaction's block, status and events

Reads .stack/evm.json and the compiled artifact it names."""
import json
import sys
import urllib.request

deployment = json.load(open(".stack/evm.json"))
artifact = json.load(open(deployment["artifact"]))
selectors = artifact["selectors"]
token = deployment["token"]
DECIMALS = 6


def rpc(method, params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(deployment["rpc_url"], body, {"Content-Type": "application/json"})
    answer = json.load(urllib.request.urlopen(req, timeout=30))
    if "error" in answer:
        raise RuntimeError(answer["error"].get("message", answer["error"]))
    return answer["result"]


def word(value):
    if isinstance(value, str):
        return value.lower().removeprefix("0x").rjust(64, "0")
    return format(value, "064x")


def data(signature, *args):
    return "0x" + selectors[signature] + "".join(word(a) for a in args)


def call(signature, *args):
    return int(rpc("eth_call", [{"to": token, "data": data(signature, *args)}, "latest"]), 16)


def send(sender, signature, *args):
    tx = rpc("eth_sendTransaction", [{"from": sender, "to": token, "data": data(signature, *args)}])
    while True:
        receipt = rpc("eth_getTransactionReceipt", [tx])
        if receipt:
            return receipt


def units(n):
    return int(n) * 10**DECIMALS


def show(address):
    balance = call("balanceOf(address)", address) / 10**DECIMALS
    listed = call("isBlackListed(address)", address) == 1
    print(f"  {address}: {balance:,.6f} USDT on token {token}, {'BLACKLISTED' if listed else 'not blacklisted'}")


def main(argv):
    owner = deployment["owner"]
    if argv[:1] == ["fund"] and len(argv) == 3:
        address = argv[1]
        if call("isBlackListed(address)", address) == 1:
            send(owner, "removeBlackList(address)", address)
        short = units(argv[2]) - call("balanceOf(address)", address)
        if short > 0:
            send(owner, "mint(address,uint256)", address, short)
        show(address)
    elif argv[:1] == ["transfer"] and len(argv) == 4:
        sender, to, amount = argv[1], argv[2], units(argv[3])
        rpc("anvil_impersonateAccount", [sender])
        rpc("anvil_setBalance", [sender, hex(10**18)])
        try:
            receipt = send(sender, "transfer(address,uint256)", to, amount)
        except RuntimeError as refused:
            print(f"  transfer of {argv[3]} USDT from {sender}: refused by the node: {refused}")
            return 1
        finally:
            rpc("anvil_stopImpersonatingAccount", [sender])
        ok = receipt["status"] == "0x1"
        print(f"  transfer of {argv[3]} USDT from {sender}: {'mined' if ok else 'reverted'} in block {int(receipt['blockNumber'], 16)} ({receipt['transactionHash']})")
        return 0 if ok else 1
    elif argv[:1] == ["show"] and len(argv) == 2:
        show(argv[1])
    elif argv[:1] == ["tx"] and len(argv) == 2:
        receipt = rpc("eth_getTransactionReceipt", [argv[1]])
        if not receipt:
            print(f"  no transaction {argv[1]} on the chain")
            return 1
        status = "succeeded" if receipt["status"] == "0x1" else "reverted"
        print(f"  {argv[1]}: block {int(receipt['blockNumber'], 16)}, to {receipt['to']}, {status}, {len(receipt['logs'])} event(s)")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
