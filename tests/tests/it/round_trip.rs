//! Each message type, signed by its sender, through the real registry and the
//! mutual-TLS listener, read back verified by its recipient exactly as sent.

use concord_domain::{FreezeRequest, TakedownConfirmation, TargetStatus, UnixMillis};
use concord_protocol::Payload;
use concord_tests::*;

fn freeze_request() -> FreezeRequest {
    sample_freeze_request("US-2026-0419")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_round_trips_from_committee_to_exchange() {
    let run = TestRun::new("rt-alert").await;
    let alert = sample_alert();
    let committee = run.identity(COMMITTEE);
    let published = run.producer(COMMITTEE).publish(&committee.topics.alerts(), b"TXfTi8", &valid(alert.clone())).await.unwrap();
    let exchange = run.identity(EXCHANGE);
    let running = run.start_consumer(&exchange, &[exchange.topics.alerts()]);
    running.wait_settled(1).await;
    let seen = running.stop().await;
    let event = &seen[0].0;
    assert_eq!(event.id, published.id);
    assert_eq!(event.sender.as_str(), COMMITTEE);
    assert_eq!(event.kid, "committee-ph/dev-1");
    assert_eq!(event.key.as_deref(), Some(&b"TXfTi8"[..]));
    assert_eq!(event.payload, Payload::IndicatorAlert(valid(alert.clone())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeze_request_round_trips_from_enforcement_to_issuer_inbox() {
    let run = TestRun::new("rt-freeze").await;
    let request = freeze_request();
    let issuer = run.identity(ISSUER);
    let inbox = issuer.topics.inbox(&issuer.agency.id);
    run.producer(ENFORCEMENT).publish(&inbox, request.request_id.as_bytes(), &valid(request.clone())).await.unwrap();
    let running = run.start_consumer(&issuer, std::slice::from_ref(&inbox));
    running.wait_settled(1).await;
    let seen = running.stop().await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0.sender.as_str(), ENFORCEMENT);
    assert_eq!(seen[0].0.payload, Payload::FreezeRequest(valid(request.clone())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmation_round_trips_from_issuer_to_enforcement_inbox() {
    let run = TestRun::new("rt-confirm").await;
    let confirmation = TakedownConfirmation {
        request_id: uuid::Uuid::new_v4().to_string(),
        target_id: "t1".into(),
        status: TargetStatus::Frozen,
        reason: None,
        amount_frozen: Some("225000000.00".into()),
        asset: Some("USDT".into()),
        ledger_ref: Some("tron:0x5c7f…a1".into()),
        executed_at: Some(UnixMillis::now()),
        decided_by: None,
        lifts: None,
        destination: None,
        reissue_ref: None,
        due_at: None,
    };
    let enforcement = run.identity(ENFORCEMENT);
    let inbox = enforcement.topics.inbox(&enforcement.agency.id);
    run.producer(ISSUER).publish(&inbox, confirmation.request_id.as_bytes(), &valid(confirmation.clone())).await.unwrap();
    let running = run.start_consumer(&enforcement, std::slice::from_ref(&inbox));
    running.wait_settled(1).await;
    let seen = running.stop().await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0.sender.as_str(), ISSUER);
    assert_eq!(seen[0].0.payload, Payload::TakedownConfirmation(valid(confirmation.clone())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeze_request_from_a_committee_to_enforcement_is_refused_by_policy() {
    // The broker lets the committee write to the enforcement inbox (for its
    // confirmations); the consumer's role policy refuses a FreezeRequest from it.
    let run = TestRun::new("rt-policy").await;
    let enforcement = run.identity(ENFORCEMENT);
    let inbox = enforcement.topics.inbox(&enforcement.agency.id);
    let request = freeze_request();
    run.producer(COMMITTEE).publish(&inbox, request.request_id.as_bytes(), &valid(request.clone())).await.unwrap();
    let running = run.start_consumer(&enforcement, std::slice::from_ref(&inbox));
    running.wait_settled(1).await;
    assert_eq!(running.stats.rejected("role_not_allowed"), 1);
    assert!(running.stop().await.is_empty());
}
