//! The issuer on the real stack: a freeze request from law enforcement freezes
//! the wallet once and is confirmed; an unacceptable legal basis is rejected
//! with the reason; a wallet it does not hold is NOT_FOUND; a duplicate request
//! is not confirmed twice.

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
    store::put_wallet(&store::open(&config.database, &config.holdings).unwrap(), "TRON", WALLET, "USDT", "1250000.00").unwrap();

    let issuer = run.identity(ISSUER);
    let inbox = issuer.topics.inbox(&issuer.agency.id);
    let enforcement = run.producer(ENFORCEMENT);
    let valid = sample_freeze_request("US-2026-0419");
    let mut administrative = sample_freeze_request("US-2026-0420");
    administrative.legal_basis.kind = LegalBasisKind::Administrative;
    let mut elsewhere = sample_freeze_request("US-2026-0421");
    elsewhere.targets[0].indicator.value = "TNotHeldByThisIssuer0000000000000".into();
    for request in [&valid, &administrative, &elsewhere, &valid] {
        // The last one is the same request sent again: a new event, the same request id.
        enforcement.publish(&inbox, request.request_id.as_bytes(), request).await.unwrap();
    }

    let (consumer, processor) = concord_issuer::build(issuer.clone(), &config).unwrap();
    let stats = consumer.stats();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(consumer.run(processor, shutdown.clone()));
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

    let ledger = store::open(&config.database, &config.holdings).unwrap();
    assert_eq!(store::is_frozen(&ledger, "TRON", WALLET, "USDT").unwrap(), Some(true));
    assert_eq!(ledger.count(TargetStatus::Frozen).unwrap(), 1, "the wallet was frozen exactly once");
}
