//! Every bad input of the protocol, on the real broker and registry: each is
//! rejected to the dead-letter topic with its reason, with its original bytes
//! and headers, the handler never sees it, and the consumer moves on to the
//! valid alert behind it.

use std::time::Duration;

use base64::Engine;
use concord_domain::MessageType;
use concord_protocol::{b64, header, wire, EventClaims, RawRecord, RejectReason, Signer, SIGNATURE_TYP};
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

/// The claims the committee's key signed for `record`.
fn claims_of(record: &RawRecord) -> EventClaims {
    let token = jws(record);
    let payload = token.split('.').nth(1).expect("three parts");
    serde_json::from_slice(&B64.decode(payload).expect("base64url")).expect("claims")
}

/// A compact JWS with an arbitrary header, the record's claims and `signature`.
fn hand_made_jws(header: serde_json::Value, claims: &EventClaims, signature: &[u8]) -> String {
    format!("{}.{}.{}", b64(header.to_string().as_bytes()), b64(serde_json::to_string(claims).unwrap().as_bytes()), b64(signature))
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
async fn alg_none_is_refused_because_the_key_fixes_the_algorithm() {
    let run = TestRun::new("alg-none").await;
    let good = run.signed_alert(COMMITTEE).await;
    let kid = run.identity(COMMITTEE).signer.key().kid().to_owned();
    let token = hand_made_jws(serde_json::json!({"alg": "none", "typ": SIGNATURE_TYP, "kid": kid}), &claims_of(&good), b"");
    let bad = with_signature(good, token);
    run.assert_alerts_rejected(COMMITTEE, &[bad], RejectReason::AlgorithmMismatch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hs256_keyed_with_the_public_key_is_refused() {
    let run = TestRun::new("hs256").await;
    let good = run.signed_alert(COMMITTEE).await;
    let signer = run.identity(COMMITTEE).signer;
    // The classic confusion attack: HMAC with the (public) Ed25519 key bytes as secret.
    let mut jwt_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    jwt_header.typ = Some(SIGNATURE_TYP.into());
    jwt_header.kid = Some(signer.key().kid().into());
    let secret = jsonwebtoken::EncodingKey::from_secret(&signer.key().public_key()).unwrap();
    let token = jsonwebtoken::encode(&jwt_header, &claims_of(&good), &secret).unwrap();
    let bad = with_signature(good, token);
    run.assert_alerts_rejected(COMMITTEE, &[bad], RejectReason::AlgorithmMismatch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_key_id_is_refused() {
    let run = TestRun::new("unknown-kid").await;
    let (ghost, _) = extra_key(COMMITTEE, "committee-ph/ghost-1", None);
    let value = run.identity(COMMITTEE).codec.encode(&sample_alert()).await.unwrap();
    let topic = run.identity(COMMITTEE).topics.alerts();
    let bad = Signer::new(ghost, Duration::from_secs(3600)).sign_record(
        &topic,
        MessageType::IndicatorAlert,
        Some(b"k".to_vec()),
        value,
        OffsetDateTime::now_utc(),
    );
    run.assert_alerts_rejected(COMMITTEE, &[bad], RejectReason::UnknownKey).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agency_signing_as_another_agency_is_refused() {
    let run = TestRun::new("impersonation").await;
    let committee = run.identity(COMMITTEE);
    let value = committee.codec.encode(&sample_alert()).await.unwrap();
    let bad = concord_protocol::forge_as(
        committee.signer.clone(),
        &ENFORCEMENT.parse().unwrap(),
        &committee.topics.alerts(),
        Some(b"k".to_vec()),
        value,
    );
    assert_eq!(header_text(&bad, header::SOURCE), "urn:concord:agency:enforcement-us");
    run.assert_alerts_rejected(COMMITTEE, &[bad], RejectReason::IssuerKeyMismatch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_key_is_refused() {
    let run = TestRun::new("revoked").await;
    let (old, record) = extra_key(COMMITTEE, "committee-ph/stolen-1", Some(OffsetDateTime::now_utc() - time::Duration::hours(1)));
    let mut exchange = run.identity(EXCHANGE);
    exchange.directory = with_key(&exchange.directory, COMMITTEE, record);
    let value = exchange.codec.encode(&sample_alert()).await.unwrap();
    let bad = Signer::new(old, Duration::from_secs(3600)).sign_record(
        &exchange.topics.alerts(),
        MessageType::IndicatorAlert,
        Some(b"k".to_vec()),
        value,
        OffsetDateTime::now_utc(),
    );
    run.assert_rejected_by(&exchange, COMMITTEE, &[bad], RejectReason::KeyRevoked).await;
}

async fn signed_at(run: &TestRun, at: OffsetDateTime) -> RawRecord {
    let committee = run.identity(COMMITTEE);
    let value = committee.codec.encode(&sample_alert()).await.unwrap();
    committee.signer.sign_record(&committee.topics.alerts(), MessageType::IndicatorAlert, Some(b"k".to_vec()), value, at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_signature_is_refused() {
    let run = TestRun::new("expired").await;
    // The signature TTL is 7 days; this one was made 8 days ago.
    let bad = signed_at(&run, OffsetDateTime::now_utc() - time::Duration::days(8)).await;
    run.assert_alerts_rejected(COMMITTEE, &[bad], RejectReason::Expired).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_issued_far_in_the_future_is_refused() {
    let run = TestRun::new("future").await;
    let bad = signed_at(&run, OffsetDateTime::now_utc() + time::Duration::days(1)).await;
    run.assert_alerts_rejected(COMMITTEE, &[bad], RejectReason::IssuedInFuture).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_signed_for_another_topic_is_refused() {
    let run = TestRun::new("cross-topic").await;
    let committee = run.identity(COMMITTEE);
    let value = committee.codec.encode(&sample_alert()).await.unwrap();
    // Signed for the production alerts topic, replayed into this run's copy.
    let mut bad = committee.signer.sign_record(
        "concord.alerts.v1",
        MessageType::IndicatorAlert,
        Some(b"k".to_vec()),
        value,
        OffsetDateTime::now_utc(),
    );
    bad.topic = committee.topics.alerts();
    run.assert_alerts_rejected(COMMITTEE, &[bad], RejectReason::TopicMismatch).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn value_changed_after_signing_is_refused() {
    let run = TestRun::new("value-changed").await;
    let mut bad = run.signed_alert(COMMITTEE).await;
    // Raise the confidence byte-wise: still valid Avro, but not what was signed.
    let value = bad.value.as_mut().unwrap();
    let last = value.len() - 1;
    value[last] ^= 0x02;
    run.assert_alerts_rejected(COMMITTEE, &[bad], RejectReason::ValueDigestMismatch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_changed_after_signing_is_refused() {
    let run = TestRun::new("key-changed").await;
    let mut bad = run.signed_alert(COMMITTEE).await;
    bad.key = Some(b"TSomeOtherWallet".to_vec());
    run.assert_alerts_rejected(COMMITTEE, &[bad], RejectReason::KeyDigestMismatch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudevents_header_changed_after_signing_is_refused() {
    let run = TestRun::new("header-changed").await;
    let mut time_changed = run.signed_alert(COMMITTEE).await;
    time_changed.set_header(header::TIME, "2020-01-01T00:00:00.000Z");
    let mut type_changed = run.signed_alert(COMMITTEE).await;
    type_changed.set_header(header::TYPE, "concord.v1.FreezeRequest");
    run.assert_alerts_rejected(COMMITTEE, &[time_changed, type_changed], RejectReason::HeaderClaimMismatch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_signature_is_refused() {
    let run = TestRun::new("unsigned").await;
    let mut bad = run.signed_alert(COMMITTEE).await;
    bad.headers.retain(|(n, _)| n != header::SIGNATURE);
    run.assert_alerts_rejected(COMMITTEE, &[bad], RejectReason::MissingSignature).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_jws_is_refused() {
    let run = TestRun::new("malformed-jws").await;
    let good = run.signed_alert(COMMITTEE).await;
    let token = jws(&good);
    let parts: Vec<&str> = token.split('.').collect();
    let two_parts = with_signature(run.signed_alert(COMMITTEE).await, format!("{}.{}", parts[0], parts[1]));
    let four_parts = with_signature(run.signed_alert(COMMITTEE).await, format!("{token}.{}", parts[2]));
    let bad_base64 = with_signature(good, format!("{}.{}.{}", parts[0], parts[1], "!!not*base64!!"));
    run.assert_alerts_rejected(COMMITTEE, &[two_parts, four_parts, bad_base64], RejectReason::MalformedSignature).await;
}

/// A record whose signature is valid over `value`, whatever `value` is.
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
async fn value_not_in_confluent_wire_format_is_refused() {
    let run = TestRun::new("not-wire").await;
    let bad = validly_signed(&run, br#"{"alert_id":"json, not avro"}"#.to_vec()).await;
    run.assert_alerts_rejected(COMMITTEE, &[bad], RejectReason::NotWireFormat).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_schema_id_is_refused() {
    let run = TestRun::new("unknown-schema").await;
    let good = run.signed_alert(COMMITTEE).await;
    let (_, payload) = wire::split(good.value.as_deref().unwrap()).unwrap();
    let bad = validly_signed(&run, wire::frame(987_654, payload)).await;
    run.assert_alerts_rejected(COMMITTEE, &[bad], RejectReason::UnknownSchema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_avro_is_refused() {
    let run = TestRun::new("truncated").await;
    let good = run.signed_alert(COMMITTEE).await;
    let value = good.value.unwrap();
    let bad = validly_signed(&run, value[..value.len() / 2].to_vec()).await;
    run.assert_alerts_rejected(COMMITTEE, &[bad], RejectReason::BadAvro).await;
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
