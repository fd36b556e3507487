//! The exchange on the real stack: an account freeze by deposit address is
//! executed once and confirmed with the amount; an address it does not hold is
//! NOT_FOUND; a wallet freeze (an issuer's action) is REJECTED. Its deposits are
//! screened against live alerts both ways — a deposit seen before the alert
//! and one seen after — and each hit is published once as an alert that
//! references the original; a malformed deposit line is refused.

use std::collections::BTreeMap;
use std::time::Duration;

use concord_domain::{IndicatorAlert, TargetAction, TargetStatus};
use concord_exchange::store;
use concord_exchange::DepositScreen;
use concord_protocol::{Mode, Payload};
use concord_tests::*;
use tokio_util::sync::CancellationToken;

const SCAM_WALLET: &str = "TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9n";
const EARLIER_WALLET: &str = "TNTYNTqJeWHSidt4ybiqG4wTL8s2bJ8Xdn";
const CLEAN_WALLET: &str = "TA6PS8tQ7D87VTBBhVfMMCDy74Lg2Mt7VV";
const MULE_DEPOSIT: &str = "TPDjZSjLd4HeGH5CPbkauubfdn8Q2xMvMy"; // ACC-77120
const CUSTOMER_DEPOSIT: &str = "TXrHJA5PcFAuLW2VwYHcdQLVVDC33kaipi"; // ACC-10001

fn alert_on(wallet: &str) -> IndicatorAlert {
    let mut alert = sample_alert();
    alert.indicators[0].value = wallet.into();
    alert
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_freezes_accounts_once_and_screens_deposits_against_alerts() {
    let run = TestRun::new("exchange").await;
    let config = exchange_config(&run);
    let deposits = &config.screening.deposits_dir;
    std::fs::create_dir_all(deposits).unwrap();
    std::fs::write(
        deposits.join("a.csv"),
        format!(
            "tx_id,chain,from_address,to_address,asset,amount\n\
             tx-clean,TRON,{CLEAN_WALLET},{CUSTOMER_DEPOSIT},USDT,120.00\n\
             tx-earlier,tron,{EARLIER_WALLET},{CUSTOMER_DEPOSIT},usdt,560.00\n\
             tx-bad,TRON,not-an-address,{CUSTOMER_DEPOSIT},USDT,1.00\n"
        ),
    )
    .unwrap();

    let identity = run.identity(EXCHANGE);
    let (consumer, processor) = concord_exchange::build(identity.clone(), &config).unwrap();
    let ledger = processor.ledger();
    let screen = DepositScreen::new(identity.clone(), processor.ledger(), config.clone()).unwrap();
    let pass = screen.once().await.unwrap();
    assert_eq!((pass.files, pass.deposits, pass.hits), (1, 2, 0), "no alert yet, no hit");
    assert_eq!(pass.refused.len(), 1);
    assert!(pass.refused[0].starts_with("a.csv:4: from_address"), "{:?}", pass.refused);

    // The committee flags two wallets; law enforcement asks for three account freezes.
    let committee = run.producer(COMMITTEE);
    let (scam_alert, earlier_alert) = (alert_on(SCAM_WALLET), alert_on(EARLIER_WALLET));
    for alert in [&scam_alert, &earlier_alert] {
        committee.publish(&identity.topics.alerts(), alert.indicators[0].value.as_bytes(), &valid(alert.clone())).await.unwrap();
    }
    let mut freeze = sample_freeze_request("US-2026-0419");
    freeze.targets[0].action = TargetAction::FreezeExchangeAccount;
    freeze.targets[0].indicator.value = MULE_DEPOSIT.into();
    let mut unknown = freeze.clone();
    unknown.request_id = uuid::Uuid::new_v4().to_string();
    unknown.targets[0].indicator.value = CLEAN_WALLET.into();
    let mut wrong_action = sample_freeze_request("US-2026-0419");
    wrong_action.targets[0].indicator.value = MULE_DEPOSIT.into();
    let inbox = identity.topics.inbox(&identity.agency.id);
    let enforcement = run.producer(ENFORCEMENT);
    for request in [&freeze, &unknown, &wrong_action, &freeze] {
        enforcement.publish(&inbox, request.request_id.as_bytes(), &valid(request.clone())).await.unwrap();
    }

    let stats = consumer.stats();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(consumer.run(processor, shutdown.clone()));
    wait_for("2 alerts and 4 requests settled", Duration::from_secs(60), || stats.settled() >= 6).await;

    // A deposit after the alert: from the flagged wallet into the mule account.
    std::fs::write(
        deposits.join("b.csv"),
        format!("tx_id,chain,from_address,to_address,asset,amount\ntx-after,TRON,{SCAM_WALLET},{MULE_DEPOSIT},USDT,3900000.00\n"),
    )
    .unwrap();
    let pass = screen.once().await.unwrap();
    assert_eq!((pass.files, pass.deposits, pass.hits), (1, 1, 1));
    assert_eq!(screen.once().await.unwrap(), concord_exchange::Pass::default(), "files are read once, hits published once");
    // Its own hit comes back on the alerts topic and is passed over.
    wait_for("the exchange's own hit read back", Duration::from_secs(30), || stats.settled() >= 8).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();

    // Alerts: the committee's two, and exactly one hit for each.
    let records = read_topic(&identity, &identity.topics.alerts(), 5, Duration::from_secs(10)).await;
    assert_eq!(records.len(), 4, "two alerts and two hits, nothing twice");
    let verifier = run.identity(ENFORCEMENT).verifier();
    let mut hits: BTreeMap<String, IndicatorAlert> = BTreeMap::new();
    for r in &records {
        let event = verifier.verify(r, Mode::live()).await.expect("every alert verifies");
        let Payload::IndicatorAlert(alert) = event.payload else { panic!("not an alert") };
        if event.sender.as_str() == EXCHANGE {
            assert_eq!(alert.related_alert_ids.len(), 1);
            hits.insert(alert.related_alert_ids[0].clone(), alert.clone().into_inner());
        }
    }
    let after = &hits[&scam_alert.alert_id];
    assert_eq!(after.indicators.iter().map(|i| i.value.as_str()).collect::<Vec<_>>(), [SCAM_WALLET, MULE_DEPOSIT]);
    assert!(after.description.contains("3900000.00 USDT"), "{}", after.description);
    assert_eq!(after.alert_id, store::hit_id(&scam_alert.alert_id, "tx-after"));
    let before = &hits[&earlier_alert.alert_id];
    assert_eq!(before.indicators[0].value, EARLIER_WALLET, "the deposit seen before the alert is a hit too");
    assert_eq!(before.evidence_refs, ["tx:TRON:tx-earlier"]);

    // The committee hears what each of its alerts did: one HIT feedback per hit, on its restricted
    // topic, naming the hit (whether the hit came from the alert's record or from a deposit file).
    let committee = run.identity(COMMITTEE);
    let records = read_topic(&committee, &committee.topics.restricted(&committee.agency.id), 3, Duration::from_secs(10)).await;
    let mut feedback: BTreeMap<String, concord_domain::AlertFeedback> = BTreeMap::new();
    for r in &records {
        let event = committee.verifier().verify(r, Mode::live()).await.expect("feedback verifies");
        assert_eq!(event.sender.as_str(), EXCHANGE);
        let Payload::AlertFeedback(f) = event.payload else { panic!("not feedback") };
        assert!(feedback.insert(f.alert_id.clone(), f.into_inner()).is_none(), "one feedback per alert");
    }
    assert_eq!(feedback.len(), 2, "{feedback:?}");
    for (original, hit) in [(&scam_alert.alert_id, after), (&earlier_alert.alert_id, before)] {
        let f = &feedback[original.as_str()];
        assert_eq!((f.kind, f.reference.as_deref()), (concord_domain::FeedbackKind::Hit, Some(hit.alert_id.as_str())));
    }

    // Confirmations: ACK + outcome for three requests, nothing for the duplicate.
    let enforcement_id = run.identity(ENFORCEMENT);
    let records = read_topic(&enforcement_id, &enforcement_id.topics.inbox(&enforcement_id.agency.id), 7, Duration::from_secs(10)).await;
    let confirmations = confirmations_of(&enforcement_id, &records).await;
    assert_eq!(confirmations.len(), 6, "{confirmations:?}");
    let outcome = |id: &str| confirmations.iter().find(|c| c.request_id == id && c.status.is_final()).unwrap().clone();
    let frozen = outcome(&freeze.request_id);
    assert_eq!(
        (frozen.status, frozen.amount_frozen.as_deref(), frozen.asset.as_deref()),
        (TargetStatus::Frozen, Some("4180000.00"), Some("USDT"))
    );
    assert!(frozen.ledger_ref.unwrap().starts_with("account-hold:ACC-77120:"));
    assert_eq!(outcome(&unknown.request_id).status, TargetStatus::NotFound);
    let rejected = outcome(&wrong_action.request_id);
    assert_eq!(rejected.status, TargetStatus::Rejected);
    assert!(rejected.reason.unwrap().contains("FREEZE_WALLET"));

    let ledger = ledger.lock().unwrap();
    assert_eq!(store::is_frozen(&ledger, "ACC-77120").unwrap(), Some(true));
    assert_eq!(store::is_frozen(&ledger, "ACC-10001").unwrap(), Some(false));
    assert_eq!(store::freezes(&ledger).unwrap(), 1, "the account was frozen exactly once");
}
