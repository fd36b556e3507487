//! TLP AMBER+STRICT and RED reach only the recipients their publisher names.
//! A RED alert for the exchange, sent with `concord publish --to` and over
//! HTTPS with `?to=`, lands on the exchange's restricted-alert topic only; a
//! non-recipient (the issuer) cannot read that topic (the broker refuses),
//! finds neither on the broadcast topic, and sees neither through the gateway's
//! events or TAXII; a publisher that puts a RED alert on the broadcast topic
//! anyway has it refused by every consumer (`misdirected`), so no consumer acts
//! on it and the gateway serves it to nobody; and the auditor logs all three.

use std::process::Command;
use std::time::Duration;

use concord_domain::Tlp;
use concord_protocol::{Mode, Payload, RejectReason};
use concord_tests::*;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use reqwest::Method;
use serde_json::Value;

const TAXII: &str = "application/taxii+json;version=2.1";

fn red_alert() -> concord_domain::IndicatorAlert {
    let mut alert = sample_alert();
    alert.tlp = Tlp::Red;
    alert
}

fn concord(run: &TestRun, args: &[&str]) -> std::process::Output {
    Command::new(binary("concord"))
        .args(["--topic-suffix", &run.suffix])
        .args(args)
        .current_dir(root())
        .output()
        .expect("the concord binary is built")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_red_alert_reaches_only_its_recipients_by_every_route_and_the_auditor_logs_it() {
    let run = TestRun::new("tlp").await;
    let gateway = run.start_gateway().await;
    let exchange = run.identity(EXCHANGE);
    let issuer = run.identity(ISSUER);

    // The CLI refuses to broadcast it, and sends it to the named recipient.
    let by_cli = red_alert();
    let file = run.dir.join("red.json");
    std::fs::write(&file, serde_json::to_string(&by_cli).unwrap()).unwrap();
    let path = file.display().to_string();
    let refused = concord(&run, &["publish", "--as", COMMITTEE, "--file", &path]);
    assert!(!refused.status.success(), "a RED alert without --to is not broadcast");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("name its recipients with --to"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let sent = concord(&run, &["publish", "--as", COMMITTEE, "--file", &path, "--to", EXCHANGE]);
    assert!(sent.status.success(), "{}{}", String::from_utf8_lossy(&sent.stdout), String::from_utf8_lossy(&sent.stderr));
    assert!(String::from_utf8_lossy(&sent.stdout).contains(&exchange.topics.restricted(&exchange.agency.id)));

    // The gateway refuses to broadcast it (422), and sends it with ?to=.
    let by_gateway = red_alert();
    let token = token_for(COMMITTEE, &["alerts:publish"]);
    let body = serde_json::to_vec(&by_gateway).unwrap();
    let json_type = [("content-type", "application/json")];
    let answer = gateway.client.send(Method::POST, "/v1/alerts", Some(&token), &json_type, Some(body.clone())).await.unwrap();
    assert_eq!(answer.status, 422, "{}", String::from_utf8_lossy(&answer.body));
    let answer =
        gateway.client.send(Method::POST, &format!("/v1/alerts?to={EXCHANGE}"), Some(&token), &json_type, Some(body)).await.unwrap();
    assert_eq!(answer.status, 202, "{}", String::from_utf8_lossy(&answer.body));

    // A publisher that puts one on the broadcast topic anyway: every consumer refuses it.
    let leaked = red_alert();
    let record = run
        .producer(COMMITTEE)
        .prepare(&issuer.topics.alerts(), leaked.indicators[0].value.as_bytes(), &valid(leaked.clone()))
        .await
        .unwrap();
    run.send(COMMITTEE, std::slice::from_ref(&record)).await;
    let consumer = run.start_consumer(&issuer, &[issuer.topics.alerts()]);
    consumer.wait_settled(1).await;
    assert_eq!(consumer.stats.rejected(RejectReason::Misdirected.code()), 1, "the issuer's consumer refuses it");
    assert!(consumer.stop().await.is_empty(), "its handler never sees it");
    // The dead letters of both consumers that read it (the issuer's, the gateway's) say why.
    let letters = run.dead_letters(2).await;
    let mut rejecters: Vec<String> = letters
        .iter()
        .filter(|d| d.value == record.value)
        .map(|d| {
            assert_eq!(header_text(d, concord_kafka::dlq_header::REASON), "misdirected");
            header_text(d, concord_kafka::dlq_header::CONSUMER)
        })
        .collect();
    rejecters.sort();
    assert_eq!(rejecters, [GATEWAY, ISSUER]);

    // Kafka, the recipient: both copies on its restricted-alert topic, verified.
    let restricted = exchange.topics.restricted(&exchange.agency.id);
    let records = read_topic(&exchange, &restricted, 3, Duration::from_secs(15)).await;
    let mut ids = Vec::new();
    for r in &records {
        let Payload::IndicatorAlert(a) = exchange.verifier().verify(r, Mode::live()).await.expect("the recipient verifies it").payload
        else {
            panic!()
        };
        assert_eq!(a.tlp, Tlp::Red);
        ids.push(a.alert_id.clone());
    }
    ids.sort();
    let mut expected = vec![by_cli.alert_id.clone(), by_gateway.alert_id.clone()];
    expected.sort();
    assert_eq!(ids, expected);

    // Kafka, a non-recipient: the broker refuses it the exchange's topic …
    let consumer: StreamConsumer = issuer
        .kafka
        .client_config(&[("group.id", &issuer.group("tlp-probe")), ("auto.offset.reset", "earliest")])
        .unwrap()
        .create()
        .unwrap();
    consumer.subscribe(&[&restricted]).unwrap();
    let mut refused = false;
    for _ in 0..6 {
        match tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await {
            Ok(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::TopicAuthorizationFailed))) => {
                refused = true;
                break;
            }
            Ok(Ok(_)) => panic!("the issuer read a record of the exchange's restricted-alert topic"),
            _ => {}
        }
    }
    assert!(refused, "the broker refuses the issuer the exchange's restricted-alert topic");
    // … and the broadcast topic holds only the leaked copy (which every consumer refuses) and the run's valid alert.
    let broadcast = read_topic(&issuer, &issuer.topics.alerts(), 10, Duration::from_secs(5)).await;
    for r in &broadcast {
        let verdict = issuer.verifier().verify(r, Mode::live()).await;
        if let Ok(event) = &verdict {
            let Payload::IndicatorAlert(a) = &event.payload else { panic!() };
            assert!(!expected.contains(&a.alert_id) && a.tlp != Tlp::Red, "a RED alert verified on the broadcast topic");
        }
    }

    // The gateway: the recipient's events hold both copies, the issuer's none of the three.
    let events = |agency: &'static str| {
        let client = gateway.client.clone();
        async move {
            let token = token_for(agency, &["inbox:read", "alerts:read"]);
            let page = client.get("/v1/events?limit=1000", &token).await.unwrap();
            assert_eq!(page.status, 200);
            page.json()["events"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["type"] == "IndicatorAlert")
                .map(|e| e["message"]["alert_id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    wait_for_async(|| async { events(EXCHANGE).await.len() >= 2 }).await;
    let mut seen = events(EXCHANGE).await;
    seen.retain(|id| expected.contains(id) || *id == leaked.alert_id);
    seen.sort();
    assert_eq!(seen, expected, "the recipient sees its two copies, not the leaked broadcast");
    let issuer_sees = events(ISSUER).await;
    for id in expected.iter().chain([&leaked.alert_id]) {
        assert!(!issuer_sees.contains(id), "the issuer sees RED alert {id} through the gateway");
    }

    // TAXII: no collection of either agency holds any of them.
    for agency in [ISSUER, EXCHANGE] {
        let token = token_for(agency, &["alerts:read"]);
        let accept = [("accept", TAXII)];
        let collections =
            gateway.client.send(Method::GET, "/taxii2/concord/collections/", Some(&token), &accept, None).await.unwrap().json();
        for c in collections["collections"].as_array().unwrap() {
            let path = format!("/taxii2/concord/collections/{}/objects/", c["id"].as_str().unwrap());
            let objects: Value = gateway.client.send(Method::GET, &path, Some(&token), &accept, None).await.unwrap().json();
            let text = objects.to_string();
            for id in expected.iter().chain([&leaked.alert_id]) {
                assert!(!text.contains(id.as_str()), "{agency} gets RED alert {id} over TAXII in {}", c["title"]);
            }
        }
    }
    gateway.stop().await;

    // The auditor logs the two copies as verified and the leaked one as misdirected.
    let config = concord_audit::AuditConfig {
        service: concord_runtime::service::ServiceHeader {
            topic_suffix: Some(run.suffix.clone()),
            ..service_header(AUDITOR, run.dir.join("audit.sqlite"))
        },
        checkpoint_interval_secs: 0,
        ordering_grace_ms: 200,
        catch_up_quiet_ms: 1_000,
    };
    let mut auditor = concord_audit::Auditor::new(run.identity(AUDITOR), &config).unwrap();
    let watch = auditor.size_watch();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        auditor.run(stop).await.unwrap();
        auditor
    });
    // Two restricted copies, the leak and the valid alert, and at least the issuer's dead letter.
    wait_for_async(|| async { watch.load(std::sync::atomic::Ordering::SeqCst) >= 5 }).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    shutdown.cancel();
    let auditor = task.await.unwrap();
    let log = auditor.log();
    let leaves: Vec<concord_audit::leaf::Leaf> =
        (0..log.size()).map(|i| concord_audit::leaf::Leaf::from_bytes(&log.leaf_bytes(i).unwrap()).unwrap()).collect();
    let on = |topic: &str, outcome: &str| leaves.iter().filter(|l| l.record.topic == topic && l.outcome == outcome).count();
    assert_eq!(on(&restricted, "verified"), 2, "both copies are in the log, verified");
    assert_eq!(on(&issuer.topics.alerts(), "misdirected"), 1, "the leak is in the log, as misdirected");
}

/// Polls `done` every 200 ms for up to 30 s.
async fn wait_for_async<F, Fut>(done: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while !done().await {
        assert!(start.elapsed() < Duration::from_secs(30), "not within 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
