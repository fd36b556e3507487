//! Law enforcement tracks its requests from the confirmations it receives and
//! escalates an overdue one. With the issuer running, a freeze request goes
//! REQUESTED → EXECUTED with the amount; a request to an exchange that does not
//! answer is re-sent as an escalation after its deadline, and the escalation
//! and the time to each confirmation are in the service's metrics.
//! A confirmation from an agency the request was not sent to changes nothing.

use std::time::{Duration, Instant};

use concord_domain::{FreezeRequest, UnixMillis};
use concord_enforcement::{Enforcement, EnforcementConfig};
use concord_protocol::{Mode, Payload};
use concord_tests::*;
use tokio_util::sync::CancellationToken;

fn config(run: &TestRun) -> EnforcementConfig {
    EnforcementConfig {
        service: service_header(ENFORCEMENT, run.dir.join("cases.sqlite")),
        escalation_check_ms: 200,
        escalation_deadline_secs: 3600,
        verify: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_is_tracked_to_executed_and_an_overdue_one_escalates() {
    let run = TestRun::new("enforcement").await;
    let metrics = concord_runtime::metrics::Metrics::new();
    let enforcement = Enforcement::new(run.identity(ENFORCEMENT), config(&run)).unwrap().with_metrics(&metrics);
    let tracker = enforcement.tracker();

    // The issuer holds the wallet and runs.
    let issuer_config = issuer_config(&run);
    let wallet = sample_alert().indicators[0].value.clone();
    let ledger = concord_issuer::store::open(&issuer_config.service.database, &issuer_config.holdings).unwrap();
    concord_issuer::store::put_wallet(&ledger, "TRON", &wallet, "USDT", "225000000.00").unwrap();
    let issuer_identity = run.identity(ISSUER);
    let (issuer, processor) = concord_issuer::build(issuer_identity.clone(), &issuer_config).await.unwrap();
    let stop = CancellationToken::new();
    let issuer_task = tokio::spawn(
        concord_issuer::serve(&issuer_identity, &issuer_config, issuer, processor, &concord_runtime::metrics::Metrics::new(), stop.clone())
            .unwrap(),
    );

    let to_issuer = sample_freeze_request("US-2026-0419");
    enforcement.send(&valid(to_issuer.clone()), ISSUER).await.unwrap();
    // The exchange runs nothing here: this one will be overdue in a second.
    let mut to_exchange: FreezeRequest = sample_freeze_request("US-2026-0419");
    to_exchange.targets[0].action = concord_domain::TargetAction::FreezeExchangeAccount;
    to_exchange.deadline = UnixMillis(UnixMillis::now().0 + 1_000);
    enforcement.send(&valid(to_exchange.clone()), EXCHANGE).await.unwrap();

    let running = tokio::spawn(enforcement.run(stop.clone()));
    let start = Instant::now();
    let case = loop {
        let case = tracker.lock().unwrap().case("US-2026-0419").unwrap();
        let executed = case.iter().any(|r| r.request_id == to_issuer.request_id && r.state == "EXECUTED");
        let escalated = case.iter().any(|r| r.request_id == to_exchange.request_id && r.escalations >= 1);
        if executed && escalated {
            break case;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "case state after 60 s: {case:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.cancel();
    running.await.unwrap().unwrap();
    issuer_task.await.unwrap().unwrap();

    let executed = case.iter().find(|r| r.request_id == to_issuer.request_id).unwrap();
    assert_eq!(executed.targets[0].status, "FROZEN");
    assert!(executed.targets[0].detail.contains("225000000.00 USDT"), "{:?}", executed.targets[0]);
    assert!(executed.targets[0].detail.contains("decided by rule default"), "the holder says who decided: {:?}", executed.targets[0]);
    assert!(executed.targets[0].latency_ms.is_some());
    let open = case.iter().find(|r| r.request_id == to_exchange.request_id).unwrap();
    assert_eq!(open.state, "REQUESTED");

    // The exchange's inbox holds the request and its escalation, marked as such.
    let exchange = run.identity(EXCHANGE);
    let verifier = exchange.verifier();
    let inbox = read_topic(&exchange, &exchange.topics.inbox(&exchange.agency.id), 2, Duration::from_secs(10)).await;
    let mut escalations = Vec::new();
    for r in &inbox {
        let Payload::FreezeRequest(request) = verifier.verify(r, Mode::live()).await.unwrap().payload else { panic!("not a request") };
        assert_eq!(request.request_id, to_exchange.request_id);
        escalations.push(request.escalation);
    }
    escalations.sort();
    assert_eq!(escalations, [0, 1]);

    // The metrics say the same: one escalation (at least: the check runs every
    // 200 ms and the new deadline is an hour away), one ACK and one outcome timed.
    let text = metrics.render();
    let value = |name: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} not in:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(value("concord_escalations_total"), 1.0, "{text}");
    assert_eq!(value("concord_outcome_latency_seconds_count"), 1.0, "{text}");
    assert_eq!(value("concord_acknowledgement_latency_seconds_count"), 1.0, "{text}");
    assert!(value("concord_outcome_latency_seconds_sum") > 0.0);
}

/// A confirmation counts only from the agency the request was sent to: another
/// holder — validly signed, allowed to confirm into law enforcement's inbox —
/// that claims FROZEN for a request sent to the issuer is dead-lettered as
/// `not_the_recipient` and changes nothing; the issuer's own acknowledgement,
/// after it on the same partition, is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_from_an_agency_the_request_was_not_sent_to_changes_nothing() {
    use concord_domain::{TakedownConfirmation, TargetStatus};

    let run = TestRun::new("enf-recipient").await;
    let enforcement = Enforcement::new(run.identity(ENFORCEMENT), config(&run)).unwrap();
    let tracker = enforcement.tracker();
    let request = sample_freeze_request("US-2026-0420");
    enforcement.send(&valid(request.clone()), ISSUER).await.unwrap();
    let inbox = run.identity(ENFORCEMENT).topics.inbox(&ENFORCEMENT.parse().unwrap());
    let claim = |status| TakedownConfirmation::new(&request.request_id, &request.targets[0].target_id, status);
    let key = request.request_id.as_bytes();
    let forged = run.producer(EXCHANGE).publish(&inbox, key, &valid(claim(TargetStatus::Frozen))).await.unwrap();
    run.producer(ISSUER).publish(&inbox, key, &valid(claim(TargetStatus::Acknowledged))).await.unwrap();

    let stop = CancellationToken::new();
    let running = tokio::spawn(enforcement.run(stop.clone()));
    let start = Instant::now();
    let state = loop {
        let state = tracker.lock().unwrap().case("US-2026-0420").unwrap().remove(0);
        if state.targets[0].status != "REQUESTED" {
            break state;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "request state after 60 s: {state:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(state.targets[0].status, "ACKNOWLEDGED", "the issuer's word, not the exchange's: {state:?}");
    let letters = run.dead_letters(1).await;
    let letter = letters.iter().find(|d| event_id(d) == forged.id).expect("the exchange's claim dead-lettered");
    assert_eq!(header_text(letter, concord_kafka::dlq_header::REASON), "not_the_recipient");
    stop.cancel();
    running.await.unwrap().unwrap();
}

/// A refused record claims nothing (issue #25 1a). §8a makes a holder's
/// confirmation ids computable from the request id, so the exchange signs an
/// ACKNOWLEDGED and a FROZEN under the issuer's ids and gets them into law
/// enforcement's inbox first. They are dead-lettered as `not_the_recipient`,
/// and they must not use up the ids: the issuer's genuine confirmations after
/// them still close the case — at law enforcement and at the gateway, which
/// serves law enforcement's events. (On the old code the replay guard, keyed
/// by the id alone, had recorded the forged ids, the genuine ones went to the
/// dead-letter topic as `replayed`, and the case stayed REQUESTED for good.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_confirmation_claims_no_event_id_and_the_genuine_one_still_closes_the_case() {
    use concord_domain::{AgencyId, MessageType, TakedownConfirmation, TargetStatus};

    let run = TestRun::new("enf-claims").await;
    let gateway = run.start_gateway().await;
    let enforcement = Enforcement::new(run.identity(ENFORCEMENT), config(&run)).unwrap();
    let tracker = enforcement.tracker();
    let request = sample_freeze_request("US-2026-0421");
    enforcement.send(&valid(request.clone()), ISSUER).await.unwrap();
    let inbox = run.identity(ENFORCEMENT).topics.inbox(&ENFORCEMENT.parse().unwrap());
    let issuer: AgencyId = ISSUER.parse().unwrap();
    let step = |status| TakedownConfirmation {
        request_id: request.request_id.clone(),
        target_id: request.targets[0].target_id.clone(),
        status,
        reason: None,
        amount_frozen: (status == TargetStatus::Frozen).then(|| "225000000.00".to_owned()),
        asset: (status == TargetStatus::Frozen).then(|| "USDT".to_owned()),
        ledger_ref: (status == TargetStatus::Frozen).then(|| "usdx:freeze:1".to_owned()),
        executed_at: (status == TargetStatus::Frozen).then(UnixMillis::now),
        decided_by: None,
        lifts: None,
        destination: None,
        reissue_ref: None,
        due_at: None,
    };
    // Each signer's records under the issuer's deterministic ids, forged ones first.
    let mut ids = Vec::new();
    for signer in [EXCHANGE, ISSUER] {
        let identity = run.identity(signer);
        let mut records = Vec::new();
        for status in [TargetStatus::Acknowledged, TargetStatus::Frozen] {
            let c = step(status);
            let id = c.event_id(&issuer);
            let value = identity.codec.encode(&c).await.unwrap();
            let key = Some(request.request_id.as_bytes().to_vec());
            records.push(identity.signer.sign_record_with_id(
                &id,
                &inbox,
                MessageType::TakedownConfirmation,
                key,
                value,
                time::OffsetDateTime::now_utc(),
            ));
            ids.push(id);
        }
        run.send(signer, &records).await;
    }
    assert_eq!(ids[..2], ids[2..], "the exchange used exactly the issuer's ids");

    let stop = CancellationToken::new();
    let metrics = concord_runtime::metrics::Metrics::new();
    let counted = metrics.clone();
    let running = {
        let stop = stop.clone();
        tokio::spawn(async move { enforcement.run_counted(stop, Some(&counted)).await })
    };
    let start = Instant::now();
    let state = loop {
        let state = tracker.lock().unwrap().case("US-2026-0421").unwrap().remove(0);
        if state.state == "EXECUTED" {
            break state;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the issuer's genuine FROZEN never counted: {state:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(state.targets[0].status, "FROZEN", "{state:?}");
    let letters = run.dead_letters(2).await;
    let reasons: Vec<String> = letters.iter().map(|d| header_text(d, concord_kafka::dlq_header::REASON)).collect();
    assert_eq!(reasons, ["not_the_recipient", "not_the_recipient"], "the forged pair, and nothing of the issuer's");

    // The gateway serves law enforcement both of the issuer's confirmations.
    let token = token_for(ENFORCEMENT, &["inbox:read"]);
    let start = Instant::now();
    loop {
        let page = gateway.client.get("/v1/events?after=0&limit=100", &token).await.unwrap().json();
        let from_issuer = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["sender"] == ISSUER && e["type"] == "TakedownConfirmation")
            .map(|e| e["event_id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>();
        if from_issuer.len() == 2 {
            assert_eq!(from_issuer, ids[2..], "{page:#}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the gateway's events of law enforcement: {page:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Law enforcement's record metrics say what its log says.
    let text = metrics.render();
    for line in [
        r#"concord_records_rejected_total{consumer="confirmations",reason="not_the_recipient"} 2"#,
        r#"concord_records_verified_total{consumer="confirmations"} 2"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
    }
    stop.cancel();
    running.await.unwrap().unwrap();
    gateway.stop().await;
}
