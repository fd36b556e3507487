//! Law enforcement verifies freezes on the chain (issue #15, item 3) against
//! the dev chain (anvil) and the real stack. A FROZEN or ALREADY_FROZEN
//! confirmation for a target on a chain in `[[verify]]` counts only once the
//! chain shows it: the transaction exists, went to the token, was mined in
//! the block named, emitted `AddedBlackList` for that address, and the
//! address is blacklisted as of that block. Validly signed lies — no such
//! transaction, a real transaction that blacklists something else or
//! nothing, the wrong chain or block, no transaction named, ALREADY_FROZEN
//! for an address that is not — are UNVERIFIED: logged, counted, shown by
//! `concord case status`, and the request is not EXECUTED.

use std::process::Command;
use std::time::{Duration, Instant};

use concord_domain::{TakedownConfirmation, TargetStatus, UnixMillis};
use concord_enforcement::{Enforcement, EnforcementConfig, VerifyChain};
use concord_tests::evm::{address_word, chain_config, deployment, freeze_request, fresh_address, uint_word, Evm, OWNER};
use concord_tests::*;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

fn config(run: &TestRun) -> EnforcementConfig {
    EnforcementConfig {
        service: service_header(ENFORCEMENT, run.dir.join("cases.sqlite")),
        escalation_check_ms: 200,
        escalation_deadline_secs: 3600,
        verify: vec![VerifyChain {
            chain: "ETHEREUM".into(),
            asset: "USDT".into(),
            rpc_url: None,
            token: None,
            deployment: Some(deployment()),
            confirmations: 0,
        }],
    }
}

fn claim(request: &concord_domain::FreezeRequest, status: TargetStatus, ledger_ref: Option<String>) -> TakedownConfirmation {
    TakedownConfirmation {
        request_id: request.request_id.clone(),
        target_id: request.targets[0].target_id.clone(),
        status,
        reason: None,
        amount_frozen: Some("1.000000".into()),
        asset: Some("USDT".into()),
        ledger_ref,
        executed_at: Some(UnixMillis::now()),
        decided_by: None,
        lifts: None,
        destination: None,
        reissue_ref: None,
        due_at: None,
    }
}

/// `evm:31337:<hash>:<block>` of a receipt, with the chain id and block moved by `chain`, `block`.
fn reference(receipt: &Value, chain: u64, block: u64) -> String {
    let number = u64::from_str_radix(receipt["blockNumber"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    format!("evm:{}:{}:{}", 31337 + chain, receipt["transactionHash"].as_str().unwrap(), number + block)
}

fn metric(text: &str, name: &str) -> f64 {
    let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} not in:\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_freeze_the_chain_does_not_show_is_unverified_and_not_executed() {
    let _turn = concord_tests::evm::chain_turn().await;
    let run = TestRun::new("enforcement-chain").await;
    let chain = Evm::dev();
    let metrics = concord_runtime::metrics::Metrics::new();
    let enforcement = Enforcement::new(run.identity(ENFORCEMENT), config(&run)).unwrap().with_metrics(&metrics);
    let tracker = enforcement.tracker();

    // On the chain: a mint (a real transaction of the token that blacklists
    // nothing) and one real blacklisting, of `listed`.
    let minted = fresh_address();
    let mint = chain.send(OWNER, "mint(address,uint256)", &[address_word(&minted), uint_word(5_000_000)]).await.unwrap();
    let listed = fresh_address();
    let blacklisting = chain.send(OWNER, "addBlackList(address)", &[address_word(&listed)]).await.unwrap();
    let unknown = format!("evm:31337:0x{}:1", "ab".repeat(32));

    // (wallet, what the holder claims, true?)
    let claims = [
        (fresh_address(), TargetStatus::Frozen, Some(unknown), "no transaction"),
        (minted.clone(), TargetStatus::Frozen, Some(reference(&mint, 0, 0)), "does not blacklist"),
        (fresh_address(), TargetStatus::Frozen, Some(reference(&blacklisting, 0, 0)), "does not blacklist"),
        (listed.clone(), TargetStatus::Frozen, Some(reference(&blacklisting, 1, 0)), "names chain 31338"),
        (listed.clone(), TargetStatus::Frozen, Some(reference(&blacklisting, 0, 1)), "not "),
        (listed.clone(), TargetStatus::Frozen, Some("ledger-7".into()), "names no transaction"),
        (fresh_address(), TargetStatus::Frozen, None, "not blacklisted"),
        (fresh_address(), TargetStatus::AlreadyFrozen, None, "not blacklisted"),
        // True claims, though made by hand: the chain shows them.
        (listed.clone(), TargetStatus::Frozen, Some(reference(&blacklisting, 0, 0)), ""),
        (listed.clone(), TargetStatus::AlreadyFrozen, None, ""),
    ];
    let issuer = run.producer(ISSUER);
    let me = run.identity(ENFORCEMENT);
    let inbox = me.topics.inbox(&me.agency.id);
    let mut requests = Vec::new();
    for (i, (wallet, status, ledger_ref, _)) in claims.iter().enumerate() {
        let request = freeze_request(&format!("US-2026-08{i:02}"), &[wallet]);
        enforcement.send(&valid(request.clone()), ISSUER).await.unwrap();
        issuer.publish(&inbox, request.request_id.as_bytes(), &valid(claim(&request, *status, ledger_ref.clone()))).await.unwrap();
        requests.push(request);
    }

    let stop = CancellationToken::new();
    let running = tokio::spawn(enforcement.run(stop.clone()));
    let start = Instant::now();
    let states = loop {
        let states: Vec<_> = requests.iter().map(|r| tracker.lock().unwrap().case(&r.case_ref).unwrap().remove(0)).collect();
        if states.iter().all(|s| s.targets[0].status != "REQUESTED") {
            break states;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "after 60 s: {states:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.cancel();
    running.await.unwrap().unwrap();

    for ((wallet, status, ledger_ref, why), state) in claims.iter().zip(&states) {
        let target = &state.targets[0];
        if why.is_empty() {
            assert_eq!(state.state, "EXECUTED", "a true claim counts: {state:?}");
            assert_eq!(target.status, status.as_str());
            assert!(target.detail.starts_with("verified on chain: "), "{target:?}");
        } else {
            assert_eq!(target.status, "UNVERIFIED", "{wallet} {status:?} {ledger_ref:?}: {target:?}");
            assert_ne!(state.state, "EXECUTED");
            assert!(target.detail.contains(&format!("{} claimed, not on chain", status.as_str())), "{target:?}");
            assert!(target.detail.contains(why), "{ledger_ref:?} should be refused for {why:?}: {target:?}");
        }
    }
    let text = metrics.render();
    assert_eq!(metric(&text, "concord_chain_verified_total"), 2.0, "{text}");
    assert_eq!(metric(&text, "concord_chain_unverified_total"), 8.0, "{text}");

    // `concord case status` shows it per target.
    let file = run.dir.join("enforcement.toml");
    std::fs::write(
        &file,
        format!(
            "hub = {:?}\nagency = {ENFORCEMENT:?}\ndatabase = {:?}\nadmin_listen = \"\"\ntopic_suffix = {:?}\n",
            root().join("config/concord.toml").display().to_string(),
            run.dir.join("cases.sqlite").display().to_string(),
            run.suffix
        ),
    )
    .unwrap();
    let status = |case: &str| {
        let out = Command::new(binary("concord"))
            .args(["case", "status", case, "--enforcement-config"])
            .arg(&file)
            .current_dir(root())
            .output()
            .expect("the concord binary is built (make build)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let lie = status(&requests[0].case_ref);
    assert!(lie.contains("UNVERIFIED") && lie.contains("FROZEN claimed, not on chain: no transaction"), "{lie}");
    assert!(lie.contains("ACKNOWLEDGED"), "the request stays open: {lie}");
    let truth = status(&requests[8].case_ref);
    assert!(truth.contains("EXECUTED") && truth.contains("verified on chain: blacklisted by"), "{truth}");
}

/// The real issuer with the chain book freezes; law enforcement checks it on
/// the chain and counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freeze_by_the_chain_book_is_verified_on_chain_and_executed() {
    let _turn = concord_tests::evm::chain_turn().await;
    let run = TestRun::new("enforcement-chain-real").await;
    let chain = Evm::dev();
    let wallet = fresh_address();
    chain.send(OWNER, "mint(address,uint256)", &[address_word(&wallet), uint_word(3_000_000)]).await.unwrap();
    let metrics = concord_runtime::metrics::Metrics::new();
    let enforcement = Enforcement::new(run.identity(ENFORCEMENT), config(&run)).unwrap().with_metrics(&metrics);
    let tracker = enforcement.tracker();
    let mut issuer_config = issuer_config(&run);
    issuer_config.book = concord_issuer::config::BookKind::Evm;
    issuer_config.chain = Some(chain_config());
    let issuer_identity = run.identity(ISSUER);
    let (issuer, processor) = concord_issuer::build(issuer_identity.clone(), &issuer_config).await.unwrap();
    let stop = CancellationToken::new();
    let issuer_task = tokio::spawn(
        concord_issuer::serve(&issuer_identity, &issuer_config, issuer, processor, &concord_runtime::metrics::Metrics::new(), stop.clone())
            .unwrap(),
    );

    let request = freeze_request("US-2026-0901", &[&wallet]);
    enforcement.send(&valid(request.clone()), ISSUER).await.unwrap();
    let running = tokio::spawn(enforcement.run(stop.clone()));
    let start = Instant::now();
    let state = loop {
        let state = tracker.lock().unwrap().case("US-2026-0901").unwrap().remove(0);
        if state.state == "EXECUTED" || state.targets[0].status == "UNVERIFIED" {
            break state;
        }
        assert!(start.elapsed() < Duration::from_secs(90), "after 90 s: {state:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.cancel();
    running.await.unwrap().unwrap();
    issuer_task.await.unwrap().unwrap();
    assert_eq!(state.state, "EXECUTED", "{state:?}");
    let event = chain.blacklistings(&wallet).await.remove(0);
    let hash = event["transactionHash"].as_str().unwrap();
    assert!(state.targets[0].detail.starts_with(&format!("verified on chain: blacklisted by {hash} in block ")), "{state:?}");
    assert!(state.targets[0].detail.contains("3.000000 USDT"), "{state:?}");
    assert_eq!(metric(&metrics.render(), "concord_chain_verified_total"), 1.0);
}

/// Issue #27: a freeze goes on to its end on the chain. Law enforcement
/// freezes two wallets, then asks the issuer to release one (the court lifted
/// its order) and to seize the other (a forfeiture order, to an address the
/// government names). The chain book calls `removeBlackList`, and
/// `destroyBlackFunds` followed by a mint of the same amount to the
/// destination; law enforcement checks each on the chain (the event, the
/// balances, the destination's credit) before it counts, and the freezes'
/// case closes. A second release of the same freeze, and a seizure of the
/// released one, are refused with the reason; the chain sees nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_and_a_seizure_by_the_chain_book_are_verified_on_chain_and_close_the_case() {
    use concord_domain::{FreezeRef, FreezeTarget, LegalBasisKind, ReleaseReason, TargetAction};
    let _turn = concord_tests::evm::chain_turn().await;
    test_log();
    let run = TestRun::new("enforcement-chain-end").await;
    let chain = Evm::dev();
    let (released, seized, government) = (fresh_address(), fresh_address(), fresh_address());
    chain.send(OWNER, "mint(address,uint256)", &[address_word(&released), uint_word(3_000_000)]).await.unwrap();
    chain.send(OWNER, "mint(address,uint256)", &[address_word(&seized), uint_word(5_000_000)]).await.unwrap();
    let metrics = concord_runtime::metrics::Metrics::new();
    let enforcement = Enforcement::new(run.identity(ENFORCEMENT), config(&run)).unwrap().with_metrics(&metrics);
    let tracker = enforcement.tracker();
    // A second handle on the same case file sends while the first one reads confirmations.
    let sender = Enforcement::new(run.identity(ENFORCEMENT), config(&run)).unwrap();
    let mut issuer_config = issuer_config(&run);
    issuer_config.book = concord_issuer::config::BookKind::Evm;
    issuer_config.chain = Some(chain_config());
    issuer_config.policy.legal_bases.push(LegalBasisKind::ForfeitureOrder);
    // Seizure has its own tier; here it executes on the order alone (the review of a seizure is tested in review.rs).
    issuer_config.policy.rules.insert(
        0,
        concord_holder::Rule {
            actions: vec![TargetAction::SeizeWallet],
            legal_bases: vec![LegalBasisKind::ForfeitureOrder],
            ..concord_holder::Rule::new("seizure", concord_holder::RuleOutcome::Auto)
        },
    );
    let issuer_identity = run.identity(ISSUER);
    let (issuer, processor) = concord_issuer::build(issuer_identity.clone(), &issuer_config).await.unwrap();
    let stop = CancellationToken::new();
    let issuer_task = tokio::spawn(
        concord_issuer::serve(&issuer_identity, &issuer_config, issuer, processor, &concord_runtime::metrics::Metrics::new(), stop.clone())
            .unwrap(),
    );
    let running = tokio::spawn(enforcement.run(stop.clone()));
    const CASE: &str = "US-2026-0902";
    let state_of = |request_id: &str| {
        tracker.lock().unwrap().case(CASE).unwrap().into_iter().find(|r| r.request_id == request_id).expect("the request is tracked")
    };
    let wait = |request_id: String, done: fn(&concord_enforcement::store::RequestState) -> bool| {
        let state_of = &state_of;
        async move {
            let start = Instant::now();
            loop {
                let state = state_of(&request_id);
                if done(&state) {
                    return state;
                }
                assert!(start.elapsed() < Duration::from_secs(120), "after 120 s: {state:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };

    let freeze = freeze_request(CASE, &[&released, &seized]);
    sender.send(&valid(freeze.clone()), ISSUER).await.unwrap();
    let frozen = wait(freeze.request_id.clone(), |s| s.state == "EXECUTED").await;
    assert!(frozen.targets.iter().all(|t| t.detail.starts_with("verified on chain: blacklisted by")), "{frozen:?}");
    let follow_up = |target: &str, action: TargetAction, of: &str, basis: LegalBasisKind| {
        let mut r = freeze_request(CASE, &[if of == "t0" { &released } else { &seized }]);
        r.targets[0] = FreezeTarget {
            freeze: Some(FreezeRef { request_id: freeze.request_id.clone(), target_id: of.into() }),
            release_reason: (action == TargetAction::ReleaseWallet).then_some(ReleaseReason::CourtOrderLifted),
            destination: (action == TargetAction::SeizeWallet).then(|| government.clone()),
            action,
            ..r.targets[0].clone()
        };
        r.targets[0].target_id = target.into();
        r.legal_basis.kind = basis;
        if basis == LegalBasisKind::ForfeitureOrder {
            r.legal_basis.court = Some("US District Court for the District of Columbia".into());
        }
        r
    };
    let release = follow_up("r0", TargetAction::ReleaseWallet, "t0", LegalBasisKind::CourtOrder);
    let seizure = follow_up("s0", TargetAction::SeizeWallet, "t1", LegalBasisKind::ForfeitureOrder);
    sender.send(&valid(release.clone()), ISSUER).await.unwrap();
    sender.send(&valid(seizure.clone()), ISSUER).await.unwrap();
    let lifted = wait(release.request_id.clone(), |s| s.state != "REQUESTED" && s.state != "ACKNOWLEDGED").await;
    let taken = wait(seizure.request_id.clone(), |s| s.state != "REQUESTED" && s.state != "ACKNOWLEDGED").await;
    assert_eq!((lifted.state.as_str(), lifted.targets[0].status.as_str()), ("EXECUTED", "RELEASED"), "{lifted:?}");
    assert!(lifted.targets[0].detail.contains("verified on chain"), "{lifted:?}");
    assert_eq!((taken.state.as_str(), taken.targets[0].status.as_str()), ("EXECUTED", "SEIZED"), "{taken:?}");
    assert!(taken.targets[0].detail.contains("verified on chain"), "{taken:?}");
    let closed = wait(freeze.request_id.clone(), |s| s.state == "CLOSED").await;
    let lifecycle: Vec<_> = closed.targets.iter().map(|t| t.lifecycle.clone().unwrap_or_default()).collect();
    assert_eq!(lifecycle, ["RELEASED", "SEIZED"], "{closed:?}");

    // The chain: the released wallet is free with its balance; the seized one is empty; the destination holds the amount.
    assert!(!chain.listed(&released).await, "released: off the blacklist");
    assert_eq!(chain.balance(&released).await, 3_000_000);
    assert_eq!(chain.balance(&seized).await, 0, "seized: the frozen balance was destroyed");
    assert_eq!(chain.balance(&government).await, 5_000_000, "and the same amount issued to the named address");

    // Once only: the same release again (a new request), and a seizure of the released freeze.
    let again = follow_up("r0", TargetAction::ReleaseWallet, "t0", LegalBasisKind::CourtOrder);
    let late = follow_up("s0", TargetAction::SeizeWallet, "t0", LegalBasisKind::ForfeitureOrder);
    let late = concord_domain::FreezeRequest {
        targets: vec![FreezeTarget { indicator: again.targets[0].indicator.clone(), ..late.targets[0].clone() }],
        ..late
    };
    sender.send(&valid(again.clone()), ISSUER).await.unwrap();
    sender.send(&valid(late.clone()), ISSUER).await.unwrap();
    for r in [&again, &late] {
        let refused = wait(r.request_id.clone(), |s| s.state == "REJECTED").await;
        assert!(refused.targets[0].detail.contains("was released by"), "{refused:?}");
    }
    stop.cancel();
    running.await.unwrap().unwrap();
    issuer_task.await.unwrap().unwrap();
    assert_eq!(chain.balance(&government).await, 5_000_000, "nothing more was issued");
    assert_eq!(metric(&metrics.render(), "concord_chain_verified_total"), 4.0, "two freezes, a release, a seizure");
}
