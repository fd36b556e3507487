//! A freeze request from a role that may not request freezes is rejected with
//! a reason and nothing is executed — at the broker when the role may not write
//! to the holder's inbox at all, and at the consumer when it may write there
//! for another purpose (an exchange confirming to a committee).

use std::time::Duration;

use concord_domain::{FreezeTarget, Indicator, IndicatorKind, TargetAction, TargetStatus};
use concord_tests::*;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeze_request_from_a_role_that_may_not_request_is_rejected_and_nothing_is_executed() {
    let run = TestRun::new("roles").await;

    // The broker: a committee may not write to an issuer's inbox.
    let issuer = run.identity(ISSUER);
    let request = sample_freeze_request("PH-2026-0007");
    let refused = run
        .producer(COMMITTEE)
        .publish(&issuer.topics.inbox(&issuer.agency.id), request.request_id.as_bytes(), &valid(request.clone()))
        .await;
    let err = refused.expect_err("the broker refuses the write").to_string();
    assert!(err.contains("TopicAuthorizationFailed"), "{err}");

    // The consumer: an exchange may write to a committee's inbox (confirmations),
    // but not a takedown request — even one the committee's policy would accept.
    let mut config = committee_config(&run, &run.dir.join("reports"));
    config.policy.requesters.push(EXCHANGE.into());
    let committee = run.identity(COMMITTEE);
    let mut takedown = sample_freeze_request("XX-2026-0001");
    takedown.targets = vec![FreezeTarget {
        target_id: "phone".into(),
        action: TargetAction::BlockPhoneNumber,
        indicator: Indicator { kind: IndicatorKind::PhoneNumber, value: "+639171234567".into(), chain: None, asset: None, platform: None },
        freeze: None,
        release_reason: None,
        destination: None,
    }];
    let inbox = committee.topics.inbox(&committee.agency.id);
    run.producer(EXCHANGE)
        .publish(&inbox, takedown.request_id.as_bytes(), &valid(takedown.clone()))
        .await
        .expect("the broker lets an exchange write here");

    let (consumer, processor) = concord_committee::takedowns(committee.clone(), &config).unwrap();
    let ledger = processor.ledger();
    let stats = consumer.stats();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(consumer.run(processor, shutdown.clone()));
    wait_for("the request settled", Duration::from_secs(60), || stats.settled() >= 1).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();

    assert_eq!(stats.rejected("role_not_allowed"), 1);
    let dead = run.dead_letters(1).await;
    assert_eq!(header_text(&dead[0], concord_kafka::dlq_header::REASON), "role_not_allowed");
    let detail = header_text(&dead[0], concord_kafka::dlq_header::DETAIL);
    assert!(detail.contains("exchange") && detail.contains("FreezeRequest"), "{detail}");
    let exchange = run.identity(EXCHANGE);
    assert!(
        read_topic(&exchange, &exchange.topics.inbox(&exchange.agency.id), 1, Duration::from_secs(3)).await.is_empty(),
        "no confirmation"
    );
    let ledger = ledger.lock().unwrap();
    assert!(!concord_committee::takedown::is_blocked(&ledger, IndicatorKind::PhoneNumber, "+639171234567").unwrap(), "nothing blocked");
    assert_eq!(ledger.count(TargetStatus::TakenDown).unwrap(), 0);
}
