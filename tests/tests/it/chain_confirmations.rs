//! `confirmations = N` in the issuer's `[chain]`: FROZEN waits until N later
//! blocks are on top of the freeze's block, and not before (issue #15,
//! item 2); ACKNOWLEDGED goes out at once. The dev chain mines a block per transaction and none otherwise,
//! so the test holds the chain still, sees no outcome, mines the blocks
//! (`anvil_mine`) and then sees FROZEN naming the freeze's block.
//!
//! A binary of its own: another test's transactions would add blocks.

use std::time::{Duration, Instant};

use concord_domain::TargetStatus;
use concord_tests::evm::{address_word, chain_config, freeze_request, fresh_address, uint_word, Evm, OWNER};
use concord_tests::*;
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_waits_for_its_confirmations() {
    let _turn = concord_tests::evm::chain_turn().await;
    let run = TestRun::new("chain-confirmations").await;
    let chain = Evm::dev();
    let wallet = fresh_address();
    chain.send(OWNER, "mint(address,uint256)", &[address_word(&wallet), uint_word(9_000_000)]).await.unwrap();
    let mut config = issuer_config(&run);
    config.book = concord_issuer::config::BookKind::Evm;
    let mut book = chain_config();
    book.confirmations = 3;
    book.receipt_timeout_secs = 60;
    config.chain = Some(book);
    let issuer_identity = run.identity(ISSUER);
    let (issuer, processor) = concord_issuer::build(issuer_identity.clone(), &config).await.unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(
        concord_issuer::serve(&issuer_identity, &config, issuer, processor, &concord_runtime::metrics::Metrics::new(), stop.clone())
            .unwrap(),
    );

    let enforcement = run.identity(ENFORCEMENT);
    let inbox = enforcement.topics.inbox(&enforcement.agency.id);
    let request = freeze_request("US-2026-1101", &[&wallet]);
    let issuer_identity = run.identity(ISSUER);
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
    stop.cancel();
    task.await.unwrap().unwrap();
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
    let mut config = issuer_config(&run);
    config.book = concord_issuer::config::BookKind::Evm;
    let mut book = chain_config();
    book.confirmations = 3;
    book.receipt_timeout_secs = 60;
    book.rebroadcast_secs = 1;
    config.chain = Some(book);
    // Before the freeze: the point the chain goes back to.
    let snapshot = chain.rpc("evm_snapshot", json!([])).await.unwrap();
    let issuer_identity = run.identity(ISSUER);
    let (issuer, processor) = concord_issuer::build(issuer_identity.clone(), &config).await.unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(
        concord_issuer::serve(&issuer_identity, &config, issuer, processor, &concord_runtime::metrics::Metrics::new(), stop.clone())
            .unwrap(),
    );
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
    stop.cancel();
    task.await.unwrap().unwrap();
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
