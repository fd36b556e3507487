//! The chain in the stack (issue #15): the token contract that `make up`
//! deploys on anvil is the one compiled from chain/ConcordStablecoin.sol, and
//! it has USDT's freeze semantics on the real node — the owner blacklists, a
//! blacklisted address cannot send, every change is an event, and what the
//! contract forbids reverts.

use concord_tests::evm::{address_word as address, uint_word as uint, Evm, OWNER};
use concord_tests::*;
use serde_json::{json, Value};

/// anvil's dev accounts (its well-known test mnemonic), unlocked on the dev chain.
const HOLDER: &str = "0x90f79bf6eb2c4f870365e785982e1f101e93b906";
const PAYEE: &str = "0x15d34aaf54267db7d7c367839aaf71a00a2c6a65";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployed_token_is_the_contract_compiled_from_its_source() {
    let _turn = concord_tests::evm::chain_turn().await;
    let chain = Evm::dev();
    let out = std::env::temp_dir().join(format!("concord-compiled-{}.json", std::process::id()));
    let compiled = std::process::Command::new("bash").arg(root().join("scripts/evm.sh")).arg("compile").arg(&out).output().unwrap();
    assert!(compiled.status.success(), "{}", String::from_utf8_lossy(&compiled.stderr));
    let artifact: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let code = chain.rpc("eth_getCode", json!([chain.token, "latest"])).await.unwrap();
    assert!(code.as_str().unwrap().len() > 1000, "code at the token: {code}");
    assert_eq!(code, artifact["deployed_bytecode"], "the code on the chain is the source's, compiled by {}", artifact["compiler"]);
    assert_eq!(chain.call("owner()", &[]).await, format!("0x{}", address(OWNER)), "owned by the issuer's operator account");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blacklisted_address_cannot_send_and_every_change_is_an_event() {
    let _turn = concord_tests::evm::chain_turn().await;
    let chain = Evm::dev();
    // A clean start for the holder (a rerun on the same chain finds it listed).
    if chain.listed(HOLDER).await {
        chain.send(OWNER, "removeBlackList(address)", &[address(HOLDER)]).await.unwrap();
    }
    chain.send(OWNER, "mint(address,uint256)", &[address(HOLDER), uint(1_000_000)]).await.unwrap();
    let before = chain.balance(HOLDER).await;
    chain.send(HOLDER, "transfer(address,uint256)", &[address(PAYEE), uint(10)]).await.expect("an unlisted holder sends");
    assert_eq!(chain.balance(HOLDER).await, before - 10);

    // Only the owner blacklists.
    assert!(chain.send(PAYEE, "addBlackList(address)", &[address(HOLDER)]).await.is_err(), "NotOwner reverts");
    let events = chain.blacklistings(HOLDER).await.len();
    let receipt = chain.send(OWNER, "addBlackList(address)", &[address(HOLDER)]).await.expect("the owner blacklists");
    let logs = receipt["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1, "one event: {logs:?}");
    assert_eq!(logs[0]["address"], chain.token);
    assert_eq!(logs[0]["topics"][1], format!("0x{}", address(HOLDER)), "the event names the address");
    assert_eq!(chain.blacklistings(HOLDER).await.len(), events + 1, "found by its topic");
    assert!(chain.listed(HOLDER).await);
    assert_eq!(chain.call("getBlackListStatus(address)", &[address(HOLDER)]).await, format!("0x{}", uint(1)));

    // A blacklisted address cannot send; its balance stays.
    let refused = chain.send(HOLDER, "transfer(address,uint256)", &[address(PAYEE), uint(10)]).await;
    assert!(refused.is_err(), "a transfer from a blacklisted address reverts: {refused:?}");
    assert_eq!(chain.balance(HOLDER).await, before - 10);
    // A second freeze is no second event: it reverts. So does freezing the zero address.
    assert!(chain.send(OWNER, "addBlackList(address)", &[address(HOLDER)]).await.is_err());
    assert!(chain.send(OWNER, "addBlackList(address)", &[address("0x0")]).await.is_err());
    // Unfreezing restores it.
    chain.send(OWNER, "removeBlackList(address)", &[address(HOLDER)]).await.unwrap();
    chain.send(HOLDER, "transfer(address,uint256)", &[address(PAYEE), uint(10)]).await.expect("unfrozen, it sends again");
}
