//! Bad input on the real broker and registry: a rejected record goes to the
//! dead-letter topic with its reason, its original bytes and headers, the
//! handler never sees it, and the consumer moves on to the valid alert behind
//! it; replay, redelivery and a registry outage. Which reason each bad input
//! gets is pure logic, checked without a broker by the conformance kit
//! (docs/test-vectors/conformance-v1.json, crates/protocol/tests/conformance_kit.rs).

use std::time::Duration;

use base64::Engine;
use concord_domain::MessageType;
use concord_protocol::{b64, header, RawRecord, RejectReason};
use concord_tests::*;
use time::OffsetDateTime;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn jws(record: &RawRecord) -> String {
    header_text(record, header::SIGNATURE)
}

fn with_signature(mut record: RawRecord, jws: String) -> RawRecord {
    record.set_header(header::SIGNATURE, jws.into_bytes());
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_signature_goes_to_dead_letter_and_is_not_handled() {
    let run = TestRun::new("forged").await;
    let good = run.signed_alert(COMMITTEE).await;
    let token = jws(&good);
    let (message, signature) = token.rsplit_once('.').unwrap();
    let mut sig = B64.decode(signature).unwrap();
    sig[10] ^= 0x01;
    let forged = with_signature(good, format!("{message}.{}", b64(&sig)));
    run.assert_alerts_rejected(COMMITTEE, &[forged], RejectReason::BadSignature).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_event_id_at_another_offset_is_a_replay() {
    let run = TestRun::new("replay").await;
    let record = run.signed_alert(COMMITTEE).await;
    run.send(COMMITTEE, &[record.clone(), record.clone()]).await;
    let exchange = run.identity(EXCHANGE);
    let running = run.start_consumer(&exchange, &[exchange.topics.alerts()]);
    running.wait_settled(2).await;
    assert_eq!(running.stats.rejected(RejectReason::Replayed.code()), 1);
    let seen = running.stop().await;
    assert_eq!(seen.len(), 1, "the event is handled once");
    assert_eq!(seen[0].0.id, event_id(&record));
    let dead = run.dead_letters(1).await;
    assert_eq!(header_text(&dead[0], concord_kafka::dlq_header::REASON), "replayed");
    assert_eq!(dead[0].value, record.value);
    assert!(header_text(&dead[0], concord_kafka::dlq_header::DETAIL).contains("was accepted at"));
}

async fn validly_signed(run: &TestRun, value: Vec<u8>) -> RawRecord {
    let committee = run.identity(COMMITTEE);
    committee.signer.sign_record(
        &committee.topics.alerts(),
        MessageType::IndicatorAlert,
        Some(b"k".to_vec()),
        value,
        OffsetDateTime::now_utc(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_record_is_refused() {
    let run = TestRun::new("oversized").await;
    let good = run.signed_alert(COMMITTEE).await;
    let mut value = good.value.unwrap();
    value.resize(300 * 1024, b'x'); // the consumer's limit is 256 KiB
    let bad = validly_signed(&run, value).await;
    run.assert_alerts_rejected(COMMITTEE, &[bad], RejectReason::Oversized).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_whose_role_may_not_publish_the_type_is_refused() {
    let run = TestRun::new("role").await;
    // Signed by the auditor, whose role publishes no alerts, and slipped onto the
    // alerts topic over the committee's connection: the broker lets the committee
    // write, every consumer still refuses the auditor's alert.
    let auditor = run.identity(AUDITOR);
    let value = auditor.codec.encode(&sample_alert()).await.unwrap();
    let bad = auditor.signer.sign_record(
        &auditor.topics.alerts(),
        MessageType::IndicatorAlert,
        Some(b"k".to_vec()),
        value,
        OffsetDateTime::now_utc(),
    );
    let dead = run.assert_alerts_rejected(COMMITTEE, &[bad], RejectReason::RoleNotAllowed).await;
    assert!(header_text(&dead[0], concord_kafka::dlq_header::DETAIL).contains("role audit may not publish IndicatorAlert"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_after_a_restart_is_handled_again_not_rejected_as_replay() {
    let run = TestRun::new("redelivery").await;
    let record = run.signed_alert(COMMITTEE).await;
    run.send(COMMITTEE, std::slice::from_ref(&record)).await;
    let exchange = run.identity(EXCHANGE);
    // First life: the handler starts, then its database is down; the consumer stops before the offset is stored.
    let recorder = Recorder::default();
    recorder.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let first = run.start_consumer_in(&exchange, &[exchange.topics.alerts()], "restart", recorder);
    first.wait_handled_calls(1).await;
    let seen = first.stop().await;
    assert!(!seen[0].1, "the first delivery is not a redelivery");
    // Second life, same group and replay guard: the same record comes back at the same offset.
    let second = run.start_consumer_in(&exchange, &[exchange.topics.alerts()], "restart", Recorder::default());
    second.wait_settled(1).await;
    assert_eq!(second.stats.rejected(RejectReason::Replayed.code()), 0);
    let seen = second.stop().await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0.id, event_id(&record));
    assert!(seen[0].1, "the handler is told it is a redelivery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_outage_is_retried_and_keeps_the_offset() {
    let run = TestRun::new("registry-down").await;
    let record = run.signed_alert(COMMITTEE).await;
    run.send(COMMITTEE, std::slice::from_ref(&record)).await;
    // The exchange's registry is unreachable: the record is neither handled nor dead-lettered.
    let mut cut_off = run.identity(EXCHANGE);
    cut_off.codec = concord_protocol::AvroCodec::new("http://127.0.0.1:9/apis/ccompat/v7").unwrap();
    let first = run.start_consumer_in(&cut_off, &[cut_off.topics.alerts()], "outage", Recorder::default());
    let start = std::time::Instant::now();
    while first.stats.retries.load(std::sync::atomic::Ordering::Relaxed) < 3 {
        assert!(start.elapsed() < Duration::from_secs(60), "no retries within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(first.stats.settled(), 0, "a transient failure neither handles nor rejects");
    assert!(first.stop().await.is_empty());
    // Back online, same group: the record was not skipped.
    let exchange = run.identity(EXCHANGE);
    let second = run.start_consumer_in(&exchange, &[exchange.topics.alerts()], "outage", Recorder::default());
    second.wait_settled(1).await;
    let seen = second.stop().await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0.id, event_id(&record));
    let auditor = run.identity(AUDITOR);
    let dead = read_topic(&auditor, &auditor.topics.dead_letter(), 1, Duration::from_secs(5)).await;
    assert!(dead.is_empty(), "nothing was dead-lettered");
}

/// The dead-letter topic is bounded per sender (issue #25 1d): 2,000 records
/// signed with a key the directory does not know, all claiming the committee,
/// become the burst of 100 letters and then one letter in a hundred — 119 in
/// all, each signed and saying how many of the committee's rejections before it
/// have no letter of their own — and every rejection is counted in the
/// consumer's metrics. A valid alert behind the flood is still handled.
/// (On the old code: 2,000 letters.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_sender_is_bounded_on_the_dead_letter_topic_and_counted() {
    use concord_kafka::dlq_header;
    let run = TestRun::new("dlq-flood").await;
    let committee = run.identity(COMMITTEE);
    let stranger = concord_protocol::SigningKey::from_seed(committee.agency.id.clone(), "committee-ph/not-in-directory", &[7; 32]).unwrap();
    let stranger = concord_protocol::Signer::new(stranger, Duration::from_secs(600));
    let value = committee.codec.encode(&sample_alert()).await.unwrap();
    let flood: Vec<RawRecord> = (0..2_000)
        .map(|_| {
            stranger.sign_record(
                &committee.topics.alerts(),
                MessageType::IndicatorAlert,
                Some(b"k".to_vec()),
                value.clone(),
                OffsetDateTime::now_utc(),
            )
        })
        .collect();
    let producer = run.producer(COMMITTEE);
    futures::future::try_join_all(flood.iter().map(|r| producer.send_raw(r))).await.unwrap();
    run.send(COMMITTEE, &[run.signed_alert(COMMITTEE).await]).await;

    let exchange = run.identity(EXCHANGE);
    let running = run.start_consumer(&exchange, &[exchange.topics.alerts()]);
    running.wait_settled(2_001).await;
    assert_eq!(running.stats.rejected(RejectReason::UnknownKey.code()), 2_000, "every record is still rejected and counted");
    assert_eq!(running.stats.suppressed(COMMITTEE), 2_000 - 119, "and every letter left out is counted for its sender");
    let stats = running.stats.clone();
    let seen = running.stop().await;
    assert_eq!(seen.len(), 1, "the valid alert behind the flood is handled");
    let metrics = concord_runtime::metrics::Metrics::new();
    metrics.consumer("alerts", stats);
    let text = metrics.render();
    let line = r#"concord_dead_letters_suppressed_total{consumer="alerts",sender="committee-ph"} 1881"#;
    assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");

    let auditor = run.identity(AUDITOR);
    let letters = read_topic(&auditor, &auditor.topics.dead_letter(), 120, Duration::from_secs(10)).await;
    assert_eq!(letters.len(), 119, "the burst of 100, then one in a hundred");
    let directory = exchange.directory.current();
    let mut reported = 0;
    for letter in &letters {
        let checked = concord_protocol::dead_letter::verify_dead_letter(letter, &directory).expect("each letter is signed by the exchange");
        reported += checked.claims.suppressed;
        assert_eq!(header_text(letter, dlq_header::REASON), "unknown_key");
    }
    assert_eq!(letters.len() as u64 + reported, 2_000, "each rejection has a letter or is counted in the next one");
}
