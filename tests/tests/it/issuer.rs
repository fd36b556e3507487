//! The issuer on the real stack: a freeze request from law enforcement freezes
//! the wallet once and is confirmed; an unacceptable legal basis is rejected
//! with the reason; a wallet it does not hold is NOT_FOUND; a duplicate request
//! is not confirmed twice; trusted alerts (and only those) freeze a
//! held wallet without a request, and the publisher is told.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use concord_domain::{LegalBasisKind, TargetStatus};
use concord_issuer::store;
use concord_tests::*;
use tokio_util::sync::CancellationToken;

const WALLET: &str = "TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_freezes_once_confirms_each_target_and_refuses_with_reasons() {
    let run = TestRun::new("issuer").await;
    let config = issuer_config(&run);
    store::put_wallet(&store::open(&config.service.database, &config.holdings).unwrap(), "TRON", WALLET, "USDT", "1250000.00").unwrap();

    let issuer = run.identity(ISSUER);
    let inbox = issuer.topics.inbox(&issuer.agency.id);
    let enforcement = run.producer(ENFORCEMENT);
    let valid = sample_freeze_request("US-2026-0419");
    let mut administrative = sample_freeze_request("US-2026-0420");
    administrative.legal_basis.kind = LegalBasisKind::Administrative;
    let mut elsewhere = sample_freeze_request("US-2026-0421");
    elsewhere.targets[0].indicator.value = concord_domain::indicators::numbered_tron_address("not-held", 0);
    for request in [&valid, &administrative, &elsewhere, &valid] {
        // The last one is the same request sent again: a new event, the same request id.
        enforcement.publish(&inbox, request.request_id.as_bytes(), &concord_tests::valid(request.clone())).await.unwrap();
    }

    let (consumer, processor) = concord_issuer::build(issuer.clone(), &config).await.unwrap();
    let stats = consumer.stats();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        concord_issuer::serve(&issuer, &config, consumer, processor, &concord_runtime::metrics::Metrics::new(), shutdown.clone()).unwrap(),
    );
    let start = Instant::now();
    while stats.settled() < 4 {
        assert!(start.elapsed() < Duration::from_secs(60), "{} of 4 requests settled", stats.settled());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    task.await.unwrap().unwrap();

    let enforcement_id = run.identity(ENFORCEMENT);
    let records = read_topic(&enforcement_id, &enforcement_id.topics.inbox(&enforcement_id.agency.id), 7, Duration::from_secs(10)).await;
    let confirmations = confirmations_of(&enforcement_id, &records).await;
    let mut by_request: BTreeMap<String, Vec<TargetStatus>> = BTreeMap::new();
    for c in &confirmations {
        by_request.entry(c.request_id.clone()).or_default().push(c.status);
    }
    assert_eq!(confirmations.len(), 6, "ACKNOWLEDGED and an outcome for each of three requests; nothing for the duplicate");
    assert_eq!(by_request[&valid.request_id], [TargetStatus::Acknowledged, TargetStatus::Frozen]);
    assert_eq!(by_request[&administrative.request_id], [TargetStatus::Acknowledged, TargetStatus::Rejected]);
    assert_eq!(by_request[&elsewhere.request_id], [TargetStatus::Acknowledged, TargetStatus::NotFound]);
    let frozen = confirmations.iter().find(|c| c.status == TargetStatus::Frozen).unwrap();
    assert_eq!(frozen.amount_frozen.as_deref(), Some("1250000.00"));
    assert_eq!(frozen.asset.as_deref(), Some("USDT"));
    let rejected = confirmations.iter().find(|c| c.status == TargetStatus::Rejected).unwrap();
    assert!(rejected.reason.as_deref().unwrap().contains("Administrative"), "{:?}", rejected.reason);

    let ledger = store::open(&config.service.database, &config.holdings).unwrap();
    assert_eq!(store::is_frozen(&ledger, "TRON", WALLET, "USDT").unwrap(), Some(true));
    assert_eq!(ledger.count(TargetStatus::Frozen).unwrap(), 1, "the wallet was frozen exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_freezes_proactively_on_trusted_alerts_only_and_tells_the_publisher() {
    let run = TestRun::new("issuer-proactive").await;
    let mut config = issuer_config(&run);
    config.policy.proactive = Some(concord_holder::ProactivePolicy {
        roles: vec![concord_domain::Role::Enforcement],
        agencies: vec![],
        min_confidence: 90,
        max_held: None,
    });
    let ledger = store::open(&config.service.database, &config.holdings).unwrap();
    let wallets = ["TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9n", "TPDjZSjLd4HeGH5CPbkauubfdn8Q2xMvMy", "TXrHJA5PcFAuLW2VwYHcdQLVVDC33kaipi"];
    for w in wallets {
        store::put_wallet(&ledger, "TRON", w, "USDT", "700000.00").unwrap();
    }
    let alert = |wallet: &str, confidence: i32| {
        let mut a = sample_alert();
        a.indicators[0].value = wallet.into();
        a.confidence = confidence;
        a
    };
    let trusted = alert(wallets[0], 95);
    let unsure = alert(wallets[1], 80); // law enforcement, below 90
    let untrusted_role = alert(wallets[2], 99); // a committee: not a trusted role
    let issuer = run.identity(ISSUER);
    let topic = issuer.topics.alerts();
    let enforcement = run.producer(ENFORCEMENT);
    enforcement.publish(&topic, b"k", &valid(trusted.clone())).await.unwrap();
    enforcement.publish(&topic, b"k", &valid(unsure.clone())).await.unwrap();
    run.producer(COMMITTEE).publish(&topic, b"k", &valid(untrusted_role.clone())).await.unwrap();
    enforcement.publish(&topic, b"k", &valid(trusted.clone())).await.unwrap(); // the same alert sent again

    let (consumer, processor) = concord_issuer::build(issuer.clone(), &config).await.unwrap();
    let stats = consumer.stats();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        concord_issuer::serve(&issuer, &config, consumer, processor, &concord_runtime::metrics::Metrics::new(), shutdown.clone()).unwrap(),
    );
    wait_for("4 alerts settled", Duration::from_secs(60), || stats.settled() >= 4).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();

    let enforcement_id = run.identity(ENFORCEMENT);
    let records = read_topic(&enforcement_id, &enforcement_id.topics.inbox(&enforcement_id.agency.id), 2, Duration::from_secs(10)).await;
    let confirmations = confirmations_of(&enforcement_id, &records).await;
    assert_eq!(confirmations.len(), 1, "one confirmation, for the trusted alert, once: {confirmations:?}");
    let c = &confirmations[0];
    assert_eq!(
        (c.request_id.as_str(), c.status, c.amount_frozen.as_deref()),
        (trusted.alert_id.as_str(), TargetStatus::Frozen, Some("700000.00"))
    );
    assert!(c.reason.as_deref().unwrap().starts_with("proactive"), "{:?}", c.reason);
    let frozen: Vec<Option<bool>> = wallets.iter().map(|w| store::is_frozen(&ledger, "TRON", w, "USDT").unwrap()).collect();
    assert_eq!(frozen, [Some(true), Some(false), Some(false)]);
    let committee = run.identity(COMMITTEE);
    assert!(read_topic(&committee, &committee.topics.inbox(&committee.agency.id), 1, Duration::from_secs(2)).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_breaks_a_rule_is_dead_lettered_whole_and_nothing_is_executed() {
    let run = TestRun::new("issuer-rules").await;
    let config = issuer_config(&run);
    let ledger = store::open(&config.service.database, &config.holdings).unwrap();
    store::put_wallet(&ledger, "TRON", WALLET, "USDT", "1250000.00").unwrap();
    let issuer = run.identity(ISSUER);
    let inbox = issuer.topics.inbox(&issuer.agency.id);
    // Two targets under one id: before, the second was skipped silently and never confirmed.
    let mut repeated = sample_freeze_request("US-2026-0422");
    let mut second = repeated.targets[0].clone();
    second.indicator.value = concord_domain::indicators::numbered_tron_address("second", 0);
    repeated.targets.push(second);
    // An indicator not in canonical form (a lower-cased EVM address, which the gateway would have checksummed).
    let mut unnormalized = sample_freeze_request("US-2026-0423");
    unnormalized.targets[0].indicator = concord_domain::Indicator {
        kind: concord_domain::IndicatorKind::CryptoAddress,
        value: "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed".into(),
        chain: Some("ETHEREUM".into()),
        asset: Some("USDT".into()),
        platform: None,
    };
    // An id in braces: another spelling of a UUID.
    let mut braces = sample_freeze_request("US-2026-0424");
    braces.request_id = format!("{{{}}}", braces.request_id);
    for request in [&repeated, &unnormalized, &braces] {
        run.publish_unchecked(ENFORCEMENT, &inbox, request.request_id.as_bytes(), request).await;
    }

    let (consumer, processor) = concord_issuer::build(issuer.clone(), &config).await.unwrap();
    let stats = consumer.stats();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        concord_issuer::serve(&issuer, &config, consumer, processor, &concord_runtime::metrics::Metrics::new(), shutdown.clone()).unwrap(),
    );
    wait_for("3 requests settled", Duration::from_secs(60), || stats.settled() >= 3).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();

    assert_eq!(stats.rejected("invalid_message"), 3, "each refused whole: {:?}", stats.rejected.lock().unwrap());
    let letters = run.dead_letters(3).await;
    let details: Vec<String> = letters.iter().map(|d| header_text(d, concord_kafka::dlq_header::DETAIL)).collect();
    assert!(details.iter().any(|d| d.starts_with("/targets/1/target_id") && d.contains("used twice")), "{details:?}");
    assert!(details.iter().any(|d| d.starts_with("/targets/0/indicator/value")), "{details:?}");
    assert!(details.iter().any(|d| d.starts_with("/request_id")), "{details:?}");
    let enforcement_id = run.identity(ENFORCEMENT);
    assert!(
        read_topic(&enforcement_id, &enforcement_id.topics.inbox(&enforcement_id.agency.id), 1, Duration::from_secs(3)).await.is_empty(),
        "nothing confirmed"
    );
    assert_eq!(store::is_frozen(&ledger, "TRON", WALLET, "USDT").unwrap(), Some(false), "nothing frozen");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_tiers_decide_each_target_by_the_amount_held_and_say_which_rule_did() {
    let run = TestRun::new("issuer-tiers").await;
    let mut config = issuer_config(&run);
    config.policy = toml::from_str(
        r#"requesters = ["enforcement-us"]
        legal_bases = ["COURT_ORDER", "EMERGENCY"]
        [[rule]]
        name = "emergency-above-a-million"
        legal_bases = ["EMERGENCY"]
        min_held = "1000000"
        outcome = "reject"
        reason = "an emergency request above 1,000,000 USDT needs a court order"
        [[rule]]
        name = "court-orders"
        legal_bases = ["COURT_ORDER"]
        outcome = "auto""#,
    )
    .unwrap();
    assert!(config.policy.problems().is_empty());
    let ledger = store::open(&config.service.database, &config.holdings).unwrap();
    let (big, small) =
        (concord_domain::indicators::numbered_tron_address("big", 0), concord_domain::indicators::numbered_tron_address("small", 0));
    store::put_wallet(&ledger, "TRON", &big, "USDT", "225000000.00").unwrap();
    store::put_wallet(&ledger, "TRON", &small, "USDT", "999999.99").unwrap();
    // One emergency request naming both wallets, one court order for the big one.
    let mut emergency = sample_freeze_request("US-2026-0430");
    emergency.legal_basis.kind = LegalBasisKind::Emergency;
    emergency.targets[0].indicator.value = big.clone();
    let mut second = emergency.targets[0].clone();
    second.target_id = "t2".into();
    second.indicator.value = small.clone();
    emergency.targets.push(second);
    let mut order = sample_freeze_request("US-2026-0431");
    order.targets[0].indicator.value = big.clone();
    let issuer = run.identity(ISSUER);
    let inbox = issuer.topics.inbox(&issuer.agency.id);
    let enforcement = run.producer(ENFORCEMENT);
    for request in [&emergency, &order] {
        enforcement.publish(&inbox, request.request_id.as_bytes(), &valid(request.clone())).await.unwrap();
    }
    let (consumer, processor) = concord_issuer::build(issuer.clone(), &config).await.unwrap();
    let stats = consumer.stats();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        concord_issuer::serve(&issuer, &config, consumer, processor, &concord_runtime::metrics::Metrics::new(), shutdown.clone()).unwrap(),
    );
    wait_for("2 requests settled", Duration::from_secs(60), || stats.settled() >= 2).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();

    let enforcement_id = run.identity(ENFORCEMENT);
    let records = read_topic(&enforcement_id, &enforcement_id.topics.inbox(&enforcement_id.agency.id), 6, Duration::from_secs(10)).await;
    let outcomes: BTreeMap<(String, String), concord_domain::TakedownConfirmation> = confirmations_of(&enforcement_id, &records)
        .await
        .into_iter()
        .filter(|c| c.status != TargetStatus::Acknowledged)
        .map(|c| ((c.request_id.clone(), c.target_id.clone()), c))
        .collect();
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    let rule = |c: &concord_domain::TakedownConfirmation| c.decided_by.as_ref().and_then(|d| d.rule.clone()).unwrap_or_default();
    let refused = &outcomes[&(emergency.request_id.clone(), "t1".to_owned())];
    assert_eq!((refused.status, rule(refused).as_str()), (TargetStatus::Rejected, "emergency-above-a-million"));
    assert!(refused.reason.as_deref().unwrap().contains("needs a court order"), "{:?}", refused.reason);
    let under = &outcomes[&(emergency.request_id.clone(), "t2".to_owned())];
    assert_eq!((under.status, rule(under).as_str()), (TargetStatus::Frozen, "default"), "below the amount no rule matches");
    let ordered = &outcomes[&(order.request_id.clone(), "t1".to_owned())];
    assert_eq!((ordered.status, rule(ordered).as_str()), (TargetStatus::Frozen, "court-orders"));
    assert_eq!(ordered.decided_by.as_ref().unwrap().kind, concord_domain::DecisionKind::Automatic);
    assert_eq!(ordered.amount_frozen.as_deref(), Some("225000000.00"));
    assert_eq!(store::is_frozen(&ledger, "TRON", &big, "USDT").unwrap(), Some(true));
}
