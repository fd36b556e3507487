//! `confirmations = N` in the issuer's `[chain]`: FROZEN waits until N later
//! blocks are on top of the freeze's block, and not before (issue #15,
//! item 2); ACKNOWLEDGED goes out at once. The dev chain mines a block per transaction and none otherwise,
//! so the test holds the chain still, sees no outcome, mines the blocks
//! (`anvil_mine`) and then sees FROZEN naming the freeze's block.
//!
//! A binary of its own: another test's transactions would add blocks.

use std::time::{Duration, Instant};

use concord_domain::TargetStatus;
use concord_tests::evm::{address_word, chain_config, freeze_request, fresh_address, uint_word, ChainIssuer, Evm, OWNER};
use concord_tests::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_waits_for_its_confirmations() {
    let _turn = concord_tests::evm::chain_turn().await;
    let run = TestRun::new("chain-confirmations").await;
    let chain = Evm::dev();
    let wallet = fresh_address();
    chain.send(OWNER, "mint(address,uint256)", &[address_word(&wallet), uint_word(9_000_000)]).await.unwrap();
    let mut book = chain_config();
    book.confirmations = 3;
    book.receipt_timeout_secs = 60;
    let issuer = ChainIssuer::start(&run, book).await;
    let issuer_identity = run.identity(ISSUER);

    let enforcement = run.identity(ENFORCEMENT);
    let inbox = enforcement.topics.inbox(&enforcement.agency.id);
    let request = freeze_request("US-2026-1101", &[&wallet]);
    run.producer(ENFORCEMENT)
        .publish(&issuer_identity.topics.inbox(&issuer_identity.agency.id), request.request_id.as_bytes(), &valid(request.clone()))
        .await
        .unwrap();

    // The blacklisting is mined; its outcome waits for three more blocks.
    let start = Instant::now();
    while !chain.listed(&wallet).await {
        assert!(start.elapsed() < Duration::from_secs(60), "the freeze transaction was not mined");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ACKNOWLEDGED at once (the freeze is under way); FROZEN not before its confirmations.
    let early = confirmations_of(&enforcement, &read_topic(&enforcement, &inbox, 2, Duration::from_secs(5)).await).await;
    assert_eq!(
        early.iter().map(|c| c.status).collect::<Vec<_>>(),
        [TargetStatus::Acknowledged],
        "nothing but the ACK before its confirmations"
    );
    chain.rpc("anvil_mine", json!(["0x2"])).await.unwrap();
    let still = read_topic(&enforcement, &inbox, 2, Duration::from_secs(3)).await;
    assert_eq!(still.len(), 1, "two blocks are not three");
    chain.rpc("anvil_mine", json!(["0x1"])).await.unwrap();

    let records = read_topic(&enforcement, &inbox, 2, Duration::from_secs(30)).await;
    issuer.stop().await;
    let seen = confirmations_of(&enforcement, &records).await;
    assert_eq!(seen.iter().map(|c| c.status).collect::<Vec<_>>(), [TargetStatus::Acknowledged, TargetStatus::Frozen], "{seen:?}");
    let event = chain.blacklistings(&wallet).await.remove(0);
    let block = u64::from_str_radix(event["blockNumber"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert!(seen[1].ledger_ref.as_deref().unwrap().ends_with(&format!(":{block}")), "FROZEN names the freeze's own block: {seen:?}");
}

/// Issue #27, item 5: a reorganisation drops the freeze's transaction after
/// the book first saw it mined (anvil reverts to a snapshot taken before).
/// The book broadcasts the same signed transaction again; FROZEN goes out
/// once, only when that transaction has its confirmations on the final
/// chain, and names the block it is in there. Law enforcement's check at
/// the same depth agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorganisation_that_drops_the_freeze_is_survived_and_frozen_is_sent_once() {
    let _turn = concord_tests::evm::chain_turn().await;
    let run = TestRun::new("chain-reorg").await;
    let chain = Evm::dev();
    let wallet = fresh_address();
    chain.send(OWNER, "mint(address,uint256)", &[address_word(&wallet), uint_word(6_000_000)]).await.unwrap();
    let mut book = chain_config();
    book.confirmations = 3;
    book.receipt_timeout_secs = 60;
    book.rebroadcast_secs = 1;
    // Before the freeze: the point the chain goes back to.
    let snapshot = chain.rpc("evm_snapshot", json!([])).await.unwrap();
    let issuer = ChainIssuer::start(&run, book).await;
    let issuer_identity = run.identity(ISSUER);
    let enforcement = run.identity(ENFORCEMENT);
    let inbox = enforcement.topics.inbox(&enforcement.agency.id);
    let request = freeze_request("US-2026-1102", &[&wallet]);
    run.producer(ENFORCEMENT)
        .publish(&issuer_identity.topics.inbox(&issuer_identity.agency.id), request.request_id.as_bytes(), &valid(request.clone()))
        .await
        .unwrap();
    let start = Instant::now();
    while !chain.listed(&wallet).await {
        assert!(start.elapsed() < Duration::from_secs(60), "the freeze transaction was not mined");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first = chain.blacklistings(&wallet).await.remove(0);
    // One block on top (not yet three), then the chain reorganises to before the freeze.
    chain.rpc("anvil_mine", json!(["0x1"])).await.unwrap();
    assert_eq!(chain.rpc("evm_revert", json!([snapshot])).await.unwrap(), json!(true));
    assert!(chain.blacklistings(&wallet).await.is_empty(), "the revert dropped the freeze");
    // The book sends it again; it is mined afresh, then buried under three blocks.
    let start = Instant::now();
    while !chain.listed(&wallet).await {
        assert!(start.elapsed() < Duration::from_secs(30), "the dropped freeze was not broadcast again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let early = confirmations_of(&enforcement, &read_topic(&enforcement, &inbox, 2, Duration::from_secs(3)).await).await;
    assert_eq!(early.iter().map(|c| c.status).collect::<Vec<_>>(), [TargetStatus::Acknowledged], "no FROZEN before its depth");
    chain.rpc("anvil_mine", json!(["0x3"])).await.unwrap();
    let records = read_topic(&enforcement, &inbox, 3, Duration::from_secs(30)).await;
    issuer.stop().await;
    let seen = confirmations_of(&enforcement, &records).await;
    assert_eq!(seen.iter().map(|c| c.status).collect::<Vec<_>>(), [TargetStatus::Acknowledged, TargetStatus::Frozen], "{seen:?}");
    let events = chain.blacklistings(&wallet).await;
    assert_eq!(events.len(), 1, "one blacklisting on the final chain: {events:?}");
    assert_eq!(events[0]["transactionHash"], first["transactionHash"], "the same signed transaction, sent again");
    let block = u64::from_str_radix(events[0]["blockNumber"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    let ledger_ref = seen[1].ledger_ref.clone().unwrap();
    assert!(ledger_ref.ends_with(&format!(":{block}")), "FROZEN names the block on the final chain: {ledger_ref}");
    // The requester's check at the depth it requires.
    let endpoint = concord_chain::Endpoint { deployment: Some(concord_tests::evm::deployment()), ..Default::default() };
    let (provider, token, _) = endpoint.connect().unwrap();
    let user: alloy::primitives::Address = wallet.parse().unwrap();
    let verdict = concord_chain::verify_freeze(&provider, token, user, Some(&ledger_ref), 3).await.unwrap();
    assert!(matches!(verdict, concord_chain::Verdict::Verified(_)), "{verdict:?}");
    let deeper = concord_chain::verify_freeze(&provider, token, user, Some(&ledger_ref), 4).await.unwrap();
    assert!(matches!(deeper, concord_chain::Verdict::Shallow(_)), "a requester wanting 4 blocks waits: {deeper:?}");
}

/// The node's pending transactions from the owner (the book's operator): (hash, nonce, max fee per gas).
async fn pending_from_owner(chain: &Evm) -> Vec<(String, u64, u128)> {
    let pool = chain.rpc("txpool_content", json!([])).await.unwrap();
    let hex = |v: &serde_json::Value| u128::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    let mut found = Vec::new();
    for (from, txs) in pool["pending"].as_object().into_iter().flatten().chain(pool["queued"].as_object().into_iter().flatten()) {
        if from.to_lowercase() == OWNER {
            for tx in txs.as_object().unwrap().values() {
                found.push((tx["hash"].as_str().unwrap().to_owned(), hex(&tx["nonce"]) as u64, hex(&tx["maxFeePerGas"])));
            }
        }
    }
    found
}

/// Issue #27, item 5: the freeze's transaction stays pending because its fee
/// is below what the chain now asks (the next block's base fee jumps a
/// thousandfold after it was signed, and falls back only 12.5 % a block).
/// After `replace_after_secs` the book signs the same call at the same nonce
/// with higher fees; the replacement is mined, the first can then never be,
/// and FROZEN goes out once naming the replacement. The chain mines a block
/// a second throughout, as a real one does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freeze_whose_fee_is_too_low_is_replaced_at_the_same_nonce_and_frozen_once() {
    let _turn = concord_tests::evm::chain_turn().await;
    test_log();
    let run = TestRun::new("chain-fee").await;
    let chain = Evm::dev();
    let wallet = fresh_address();
    chain.send(OWNER, "mint(address,uint256)", &[address_word(&wallet), uint_word(4_000_000)]).await.unwrap();
    let mut book = chain_config();
    book.confirmations = 1;
    book.receipt_timeout_secs = 60;
    book.replace_after_secs = 4;
    book.rebroadcast_secs = 1;
    // Nothing is mined until the test starts the clock.
    let clock = chain.hold_blocks().await;
    let issuer = ChainIssuer::start(&run, book).await;
    let issuer_identity = run.identity(ISSUER);
    let enforcement = run.identity(ENFORCEMENT);
    let inbox = enforcement.topics.inbox(&enforcement.agency.id);
    let request = freeze_request("US-2026-1103", &[&wallet]);
    run.producer(ENFORCEMENT)
        .publish(&issuer_identity.topics.inbox(&issuer_identity.agency.id), request.request_id.as_bytes(), &valid(request.clone()))
        .await
        .unwrap();

    // The book's transaction waits in the node's pool; then the chain's fee jumps past it.
    let start = Instant::now();
    let (stuck, nonce, max_fee) = loop {
        if let Some(tx) = pending_from_owner(&chain).await.pop() {
            break tx;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the freeze transaction never reached the node");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    chain.rpc("anvil_setNextBlockBaseFeePerGas", json!([format!("0x{:x}", max_fee * 1000)])).await.unwrap();
    clock.start(&chain, 1).await;

    let start = Instant::now();
    while !chain.listed(&wallet).await {
        assert!(start.elapsed() < Duration::from_secs(40), "the stuck freeze was never replaced and mined");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let records = read_topic(&enforcement, &inbox, 3, Duration::from_secs(15)).await;
    // Long enough for the first transaction to be mined too, were it still able to be.
    tokio::time::sleep(Duration::from_secs(3)).await;
    issuer.stop().await;
    let events = chain.blacklistings(&wallet).await;
    assert_eq!(events.len(), 1, "one blacklisting: {events:?}");
    let mined = events[0]["transactionHash"].as_str().unwrap();
    assert_ne!(mined, stuck, "the transaction mined is the replacement, not the one whose fee was too low");
    let tx = chain.rpc("eth_getTransactionByHash", json!([mined])).await.unwrap();
    assert_eq!(u64::from_str_radix(tx["nonce"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap(), nonce, "at the same nonce");
    let replacement_fee = u128::from_str_radix(tx["maxFeePerGas"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert!(replacement_fee > max_fee, "with higher fees: {replacement_fee} vs {max_fee}");
    let receipt = chain.rpc("eth_getTransactionReceipt", json!([stuck])).await.unwrap();
    assert!(receipt.is_null(), "the first transaction was never mined: {receipt}");
    let seen = confirmations_of(&enforcement, &records).await;
    assert_eq!(seen.iter().map(|c| c.status).collect::<Vec<_>>(), [TargetStatus::Acknowledged, TargetStatus::Frozen], "{seen:?}");
    assert!(seen[1].ledger_ref.as_deref().unwrap().contains(mined), "FROZEN names the replacement: {seen:?}");
    drop(clock);
}
