//! The issuer's book on the chain (`book = "evm"`, issue #15) against the dev
//! chain (anvil) and the real stack: a freeze request becomes one
//! `addBlackList` transaction of the token contract; FROZEN names the chain,
//! the transaction and its block and the balance frozen, and the address can
//! no longer send; a second request for it is ALREADY_FROZEN; what the
//! contract would revert is REJECTED with its reason, with no transaction;
//! and a crash at any step around the transaction — after signing, after
//! sending, after the receipt — ends with the same single transaction, one
//! event on the chain and one outcome confirmed.

use std::time::{Duration, Instant};

use concord_domain::{FreezeRequest, TakedownConfirmation, TargetStatus};
use concord_tests::evm::{address_word, chain_config, freeze_request as request, fresh_address, issuer_toml, uint_word, Evm, OWNER};
use concord_tests::*;
use tokio_util::sync::CancellationToken;

async fn confirmations(run: &TestRun, n: usize) -> Vec<TakedownConfirmation> {
    let enforcement = run.identity(ENFORCEMENT);
    let records = read_topic(&enforcement, &enforcement.topics.inbox(&enforcement.agency.id), n, Duration::from_secs(30)).await;
    confirmations_of(&enforcement, &records).await
}

/// `evm:<chain id>:<tx hash>:<block>` of a FROZEN confirmation.
fn transaction_of(c: &TakedownConfirmation) -> (String, u64) {
    let r = c.ledger_ref.as_deref().expect("FROZEN names its transaction");
    let parts: Vec<&str> = r.split(':').collect();
    assert_eq!((parts.len(), parts[0], parts[1]), (4, "evm", "31337"), "{r}");
    (parts[2].to_owned(), parts[3].parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freeze_is_one_blacklisting_transaction_and_a_revert_is_rejected_with_its_reason() {
    let _turn = concord_tests::evm::chain_turn().await;
    let run = TestRun::new("issuer-chain").await;
    let chain = Evm::dev();
    let wallet = fresh_address();
    chain.send(OWNER, "mint(address,uint256)", &[address_word(&wallet), uint_word(2_500_000_000)]).await.unwrap();
    let mut config = issuer_config(&run);
    config.book = concord_issuer::config::BookKind::Evm;
    config.chain = Some(chain_config());

    let issuer = run.identity(ISSUER);
    let inbox = issuer.topics.inbox(&issuer.agency.id);
    let enforcement = run.producer(ENFORCEMENT);
    let first = request("US-2026-0501", &[&wallet]);
    let again = request("US-2026-0502", &[&wallet]);
    let zero = request("US-2026-0503", &["0x0000000000000000000000000000000000000000"]);
    for r in [&first, &again, &zero] {
        enforcement.publish(&inbox, r.request_id.as_bytes(), &valid(r.clone())).await.unwrap();
    }
    let (consumer, processor) = concord_issuer::build(issuer.clone(), &config).await.unwrap();
    let stats = consumer.stats();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        concord_issuer::serve(&issuer, &config, consumer, processor, &concord_runtime::metrics::Metrics::new(), shutdown.clone()).unwrap(),
    );
    let start = Instant::now();
    while stats.settled() < 3 {
        assert!(start.elapsed() < Duration::from_secs(60), "{} of 3 requests settled", stats.settled());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Outcomes on the chain come from the outbox once the confirmer saw them mined.
    let confirmations = confirmations(&run, 6).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let outcome = |r: &FreezeRequest| {
        confirmations.iter().find(|c| c.request_id == r.request_id && c.status != TargetStatus::Acknowledged).unwrap().clone()
    };
    // The two requests for the wallet are on different partitions: either may come first.
    let (frozen, already) = match outcome(&first).status {
        TargetStatus::Frozen => (outcome(&first), outcome(&again)),
        _ => (outcome(&again), outcome(&first)),
    };
    assert_eq!(frozen.status, TargetStatus::Frozen, "{frozen:?}");
    assert_eq!((frozen.amount_frozen.as_deref(), frozen.asset.as_deref()), (Some("2500.000000"), Some("USDT")));
    let (hash, block) = transaction_of(&frozen);
    let receipt = chain.rpc("eth_getTransactionReceipt", serde_json::json!([hash])).await.unwrap();
    assert_eq!(receipt["status"], "0x1");
    assert_eq!(receipt["to"], chain.token, "a transaction of the token contract");
    assert_eq!(u64::from_str_radix(receipt["blockNumber"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap(), block);
    assert!(chain.listed(&wallet).await, "blacklisted on the chain");
    assert_eq!(chain.blacklistings(&wallet).await.len(), 1, "one blacklisting event for the address");
    chain.impersonate(&wallet).await;
    let escape = chain.send(&wallet, "transfer(address,uint256)", &[address_word(OWNER), uint_word(1)]).await;
    assert!(escape.is_err(), "a transfer out of the frozen wallet fails: {escape:?}");

    assert_eq!(already.status, TargetStatus::AlreadyFrozen, "{already:?}");
    assert_eq!(already.amount_frozen.as_deref(), Some("2500.000000"));
    let rejected = outcome(&zero);
    assert_eq!(rejected.status, TargetStatus::Rejected);
    assert!(rejected.reason.as_deref().unwrap_or_default().contains("refuses to freeze"), "{rejected:?}");
    assert_eq!(chain.blacklistings(&wallet).await.len(), 1, "the second request sent nothing");
}

/// The issuer binary with the chain book dies at each step around a freeze
/// transaction in turn — after signing it (not yet sent), after sending it,
/// after its receipt (the ledger not yet committed) — and comes back each
/// time; two requests are in flight. Afterwards each wallet has exactly one
/// blacklisting event on the chain, and one ACKNOWLEDGED and one FROZEN at
/// the requester naming that very transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_each_step_of_a_freeze_leaves_one_transaction_and_one_outcome() {
    let _turn = concord_tests::evm::chain_turn().await;
    let run = TestRun::new("issuer-chain-crash").await;
    let chain = Evm::dev();
    let wallets = [fresh_address(), fresh_address()];
    for w in &wallets {
        chain.send(OWNER, "mint(address,uint256)", &[address_word(w), uint_word(1_000_000_000)]).await.unwrap();
    }
    let config = issuer_toml(&run);
    let issuer = run.identity(ISSUER);
    let inbox = issuer.topics.inbox(&issuer.agency.id);
    let requests = [request("US-2026-0601", &[&wallets[0]]), request("US-2026-0602", &[&wallets[1]])];
    for r in &requests {
        run.producer(ENFORCEMENT).publish(&inbox, r.request_id.as_bytes(), &valid(r.clone())).await.unwrap();
    }

    let mut holder = Holder::start_with("concord-issuer", config, run.dir.join("issuer.log"), &[("CONCORD_FAILPOINTS", "chain-signed:@1")]);
    for next in ["chain-sent:@1", "chain-mined:@1", ""] {
        let start = Instant::now();
        while holder.is_running() {
            assert!(start.elapsed() < Duration::from_secs(120), "the failpoint was not reached: {}", holder.stop());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        holder.set_env("CONCORD_FAILPOINTS", next);
        holder.keep_running();
    }
    // Each restart waits out the killed member's session before it gets the inbox.
    let start = Instant::now();
    let confirmations = loop {
        let seen = confirmations(&run, 4).await;
        if seen.len() >= 4 || start.elapsed() > Duration::from_secs(180) {
            break seen;
        }
        holder.keep_running();
    };
    let log = std::fs::read_to_string(run.dir.join("issuer.log")).unwrap();
    holder.stop();
    for point in ["chain-signed", "chain-sent", "chain-mined"] {
        assert!(log.contains(&format!("failpoint {point}: aborting")), "the issuer died at {point}");
    }
    assert_eq!(confirmations.len(), 4, "{confirmations:?}");
    for (r, wallet) in requests.iter().zip(&wallets) {
        // Once each. A crash between the ledger and the broker can put the
        // FROZEN (from the outbox) before the ACKNOWLEDGED (the request read
        // again); a requester takes the furthest step (docs/protocol.md §8).
        let mut mine: Vec<&TakedownConfirmation> = confirmations.iter().filter(|c| c.request_id == r.request_id).collect();
        mine.sort_by_key(|c| c.status != TargetStatus::Acknowledged);
        assert_eq!(mine.iter().map(|c| c.status).collect::<Vec<_>>(), [TargetStatus::Acknowledged, TargetStatus::Frozen]);
        let events = chain.blacklistings(wallet).await;
        assert_eq!(events.len(), 1, "one blacklisting transaction for {wallet}: {events:?}");
        let (hash, _) = transaction_of(mine[1]);
        assert_eq!(events[0]["transactionHash"], hash, "FROZEN names the one transaction");
        assert!(chain.listed(wallet).await);
    }
}

/// The issuer signs and records a freeze and dies before sending it; then
/// another transaction of the operator's key takes that nonce (the
/// operator's own wallet, a second tool, a parallel run). The recorded
/// transaction can never be mined: the restarted issuer must see that and
/// sign the freeze again — once — rather than wait for it for ever (which it
/// did, retrying "no receipt" until CI's test gave up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_freeze_whose_nonce_another_transaction_took_is_signed_again_once() {
    let _turn = concord_tests::evm::chain_turn().await;
    let run = TestRun::new("issuer-chain-nonce").await;
    let chain = Evm::dev();
    let wallet = fresh_address();
    chain.send(OWNER, "mint(address,uint256)", &[address_word(&wallet), uint_word(7_000_000)]).await.unwrap();
    let config = issuer_toml(&run);
    let issuer = run.identity(ISSUER);
    let r = request("US-2026-0701", &[&wallet]);
    run.producer(ENFORCEMENT).publish(&issuer.topics.inbox(&issuer.agency.id), r.request_id.as_bytes(), &valid(r.clone())).await.unwrap();

    let mut holder = Holder::start_with("concord-issuer", config, run.dir.join("issuer.log"), &[("CONCORD_FAILPOINTS", "chain-signed:@1")]);
    let start = Instant::now();
    while holder.is_running() {
        assert!(start.elapsed() < Duration::from_secs(120), "the failpoint was not reached: {}", holder.stop());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The operator's key sends something else: it takes the signed freeze's nonce.
    chain.send(OWNER, "mint(address,uint256)", &[address_word(&fresh_address()), uint_word(1)]).await.unwrap();
    holder.set_env("CONCORD_FAILPOINTS", "");
    holder.keep_running();
    let start = Instant::now();
    let seen = loop {
        let seen = confirmations(&run, 2).await;
        if seen.len() >= 2 || start.elapsed() > Duration::from_secs(180) {
            break seen;
        }
        holder.keep_running();
    };
    let log = std::fs::read_to_string(run.dir.join("issuer.log")).unwrap();
    holder.stop();
    assert!(log.contains("failpoint chain-signed: aborting"), "the issuer died after signing");
    assert!(log.contains("took this step's nonce"), "the issuer saw the dead transaction:\n{log}");
    let mut seen = seen;
    seen.sort_by_key(|c| c.status != TargetStatus::Acknowledged); // either may come first after a crash
    assert_eq!(seen.iter().map(|c| c.status).collect::<Vec<_>>(), [TargetStatus::Acknowledged, TargetStatus::Frozen], "{seen:?}");
    let events = chain.blacklistings(&wallet).await;
    assert_eq!(events.len(), 1, "one blacklisting transaction: {events:?}");
    assert_eq!(events[0]["transactionHash"], transaction_of(&seen[1]).0, "FROZEN names the transaction signed again");
    assert!(chain.listed(&wallet).await);
}
