//! The audit log on the real stack: every record, verified or rejected, in a
//! Merkle log whose root is reproducible from Kafka; tampering found at its
//! index; evidence bundles that fail precisely; split views detected.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use base64::Engine;
use concord_audit::evidence::{self, Bundle};
use concord_audit::store::{AuditLog, CheckpointOutcome, Tamper, LOCAL, PUBLISHED};
use concord_audit::{AuditConfig, Auditor};
use concord_domain::{LogCheckpoint, TakedownConfirmation, TargetStatus, UnixMillis};
use concord_protocol::statement::{hex, sign_checkpoint};
use concord_tests::*;
use tokio_util::sync::CancellationToken;

fn audit_config(run: &TestRun, name: &str) -> AuditConfig {
    AuditConfig {
        service: concord_runtime::service::ServiceHeader {
            topic_suffix: Some(run.suffix.clone()),
            ..service_header(AUDITOR, run.dir.join(format!("{name}.sqlite")))
        },
        checkpoint_interval_secs: 0,
        ordering_grace_ms: 500,
        catch_up_quiet_ms: 3_000,
    }
}

/// Runs an auditor until its log holds `size` leaves; returns it stopped.
async fn audit_until(run: &TestRun, name: &str, size: u64) -> Auditor {
    let mut auditor = Auditor::new(run.identity(AUDITOR), &audit_config(run, name)).expect("auditor");
    let watch = auditor.size_watch();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        auditor.run(stop).await.expect("auditor runs");
        auditor
    });
    let start = Instant::now();
    while watch.load(Ordering::SeqCst) < size {
        assert!(start.elapsed() < Duration::from_secs(90), "log reached {} of {size} leaves in 90 s", watch.load(Ordering::SeqCst));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    task.await.expect("auditor task")
}

/// A case on the run's topics: two alerts, a forgery, a freeze request, its
/// confirmation, and the dead letter the exchange wrote for the forgery. Six records.
async fn case_traffic(run: &TestRun) -> String {
    let committee = run.identity(COMMITTEE);
    run.producer(COMMITTEE).publish(&committee.topics.alerts(), b"a1", &valid(sample_alert())).await.unwrap();
    run.producer(ENFORCEMENT).publish(&committee.topics.alerts(), b"a2", &valid(sample_alert())).await.unwrap();
    let value = committee.codec.encode(&sample_alert()).await.unwrap();
    let forged = concord_protocol::forge_as(
        committee.signer.clone(),
        &ENFORCEMENT.parse().unwrap(),
        &committee.topics.alerts(),
        Some(b"f".to_vec()),
        value,
    );
    run.send(COMMITTEE, &[forged]).await;
    let request = sample_freeze_request("US-2026-0419");
    let issuer_inbox = committee.topics.inbox(&ISSUER.parse().unwrap());
    run.producer(ENFORCEMENT).publish(&issuer_inbox, request.request_id.as_bytes(), &valid(request.clone())).await.unwrap();
    let confirmation = TakedownConfirmation {
        request_id: request.request_id.clone(),
        target_id: "t1".into(),
        status: TargetStatus::Frozen,
        reason: None,
        amount_frozen: Some("1250000.00".into()),
        asset: Some("USDT".into()),
        ledger_ref: Some("tron:freeze/1".into()),
        executed_at: Some(UnixMillis::now()),
        decided_by: None,
        lifts: None,
        destination: None,
        reissue_ref: None,
        due_at: None,
    };
    let enforcement_inbox = committee.topics.inbox(&ENFORCEMENT.parse().unwrap());
    run.producer(ISSUER).publish(&enforcement_inbox, request.request_id.as_bytes(), &valid(confirmation.clone())).await.unwrap();
    let exchange = run.identity(EXCHANGE);
    let consumer = run.start_consumer(&exchange, &[exchange.topics.alerts()]);
    consumer.wait_settled(3).await;
    consumer.stop().await;
    request.request_id
}

fn outcomes(log: &AuditLog) -> Vec<String> {
    (0..log.size()).map(|i| concord_audit::leaf::Leaf::from_bytes(&log.leaf_bytes(i).unwrap()).unwrap().outcome).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_the_log_from_offset_zero_gives_the_same_root() {
    let run = TestRun::new("audit-rebuild").await;
    case_traffic(&run).await;
    let first = audit_until(&run, "first", 6).await;
    let mut seen = outcomes(first.log());
    seen.sort();
    assert_eq!(
        seen,
        ["dead_letter:issuer_key_mismatch", "issuer_key_mismatch", "verified", "verified", "verified", "verified"],
        "every record is in the log, verified or rejected"
    );
    let rebuilt = audit_until(&run, "rebuilt", 6).await;
    assert_eq!(rebuilt.log().size(), 6);
    assert_eq!(hex(&rebuilt.log().root(6).unwrap()), hex(&first.log().root(6).unwrap()));

    // A restart continues where the log stopped: nothing is appended twice.
    let restarted = audit_until(&run, "first", 6).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(restarted.log().size(), 6);
}

/// A copy of `log`'s database at `path`, opened as a log: what someone holding the file can edit.
fn copy_of(log: &AuditLog, path: &std::path::Path) -> AuditLog {
    log.connection().execute("VACUUM INTO ?1", [path.display().to_string()]).unwrap();
    AuditLog::open(path, AUDITOR).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tampering_with_the_stored_log_is_found_and_named() {
    let run = TestRun::new("audit-tamper").await;
    case_traffic(&run).await;
    let mut auditor = audit_until(&run, "log", 6).await;
    auditor.publish_checkpoint().await.unwrap();
    let identity = run.identity(AUDITOR);
    let directory = &identity.directory.current();
    let published = concord_audit::published_checkpoints(&identity).await.unwrap();
    assert_eq!(published.len(), 1, "the checkpoint is on the run's checkpoints topic");
    let check = |log: &AuditLog| log.check(directory, &published).unwrap();

    let untouched = check(auditor.log());
    assert!(untouched.problems.is_empty(), "an untouched log checks out: {:?}", untouched.problems);
    assert_eq!((untouched.covered, untouched.checkpoints), (6, 1));

    // One flipped byte in a stored leaf.
    let log = copy_of(auditor.log(), &run.dir.join("flipped.sqlite"));
    let mut leaf: Vec<u8> = log.connection().query_row("SELECT leaf FROM leaves WHERE idx = 3", [], |r| r.get(0)).unwrap();
    let middle = leaf.len() / 2;
    leaf[middle] ^= 0x01;
    log.connection().execute("UPDATE leaves SET leaf = ?1 WHERE idx = 3", [leaf]).unwrap();
    let problems = check(&log).problems;
    assert_eq!(problems, vec![Tamper::LeafAltered { index: 3 }, Tamper::RootDiffers { size: 6, origin: LOCAL }], "only leaf 3 is reported");

    // The last five leaves deleted.
    let log = copy_of(auditor.log(), &run.dir.join("tail.sqlite"));
    log.connection().execute("DELETE FROM leaves WHERE idx >= 1", []).unwrap();
    assert_eq!(check(&log).problems, vec![Tamper::Truncated { size: 6, have: 1, origin: LOCAL }]);

    // One leaf deleted in the middle.
    let log = copy_of(auditor.log(), &run.dir.join("middle.sqlite"));
    log.connection().execute("DELETE FROM leaves WHERE idx = 3", []).unwrap();
    let problems = check(&log).problems;
    assert_eq!(problems[0], Tamper::IndexGap { after: 2, next: 4 }, "{problems:?}");
    assert!(problems.contains(&Tamper::Truncated { size: 6, have: 5, origin: LOCAL }), "{problems:?}");

    // The checkpoints table emptied, then the tail deleted: the published checkpoint still vouches.
    let log = copy_of(auditor.log(), &run.dir.join("no-checkpoints.sqlite"));
    log.connection().execute("DELETE FROM checkpoints", []).unwrap();
    let root = hex(&auditor.log().root(6).unwrap());
    assert_eq!(check(&log).problems, vec![Tamper::CheckpointMissing { size: 6, root: root.clone() }]);
    log.connection().execute("DELETE FROM leaves WHERE idx >= 4", []).unwrap();
    assert_eq!(
        check(&log).problems,
        vec![Tamper::CheckpointMissing { size: 6, root }, Tamper::Truncated { size: 6, have: 4, origin: PUBLISHED }]
    );

    // A leaf rewritten with its hash, and the stored checkpoint's root rewritten to match.
    let log = copy_of(auditor.log(), &run.dir.join("rewritten.sqlite"));
    let db = log.connection();
    let mut leaf: Vec<u8> = db.query_row("SELECT leaf FROM leaves WHERE idx = 2", [], |r| r.get(0)).unwrap();
    let at = leaf.len() - 10;
    leaf[at] ^= 0x04;
    db.execute(
        "UPDATE leaves SET leaf = ?1, leaf_hash = ?2 WHERE idx = 2",
        rusqlite::params![leaf, concord_merkle::leaf_hash(&leaf).to_vec()],
    )
    .unwrap();
    let rewritten = AuditLog::open(&run.dir.join("rewritten.sqlite"), AUDITOR).unwrap();
    let new_root = hex(&rewritten.root(6).unwrap());
    rewritten.connection().execute("UPDATE checkpoints SET root = ?1", [&new_root]).unwrap();
    let problems = check(&rewritten).problems;
    let signed = hex(&auditor.log().root(6).unwrap());
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(matches!(&problems[0], Tamper::CheckpointInvalid { size: 6, why } if why.contains("but it signs size 6 root")), "{problems:?}");
    assert_eq!(problems[1..], [Tamper::CheckpointMissing { size: 6, root: signed }, Tamper::RootDiffers { size: 6, origin: PUBLISHED }]);

    // A stored checkpoint re-signed by another agency's key.
    let log = copy_of(auditor.log(), &run.dir.join("forged.sqlite"));
    let committee = run.identity(COMMITTEE);
    let forged = sign_checkpoint(&committee.signer, AUDITOR, 6, &auditor.log().root(6).unwrap(), time::OffsetDateTime::now_utc()).1;
    log.connection().execute("UPDATE checkpoints SET jws = ?1", [forged]).unwrap();
    let problems = check(&log).problems;
    assert!(matches!(&problems[0], Tamper::CheckpointInvalid { size: 6, why } if why.contains("not to an auditor")), "{problems:?}");
    assert!(matches!(&problems[1..], [Tamper::CheckpointMissing { size: 6, .. }]), "{problems:?}");
}

async fn case_bundle(run: &TestRun) -> (Bundle, concord_domain::Directory, concord_domain::TopicModel) {
    let request_id = case_traffic(run).await;
    let mut auditor = audit_until(run, "evidence", 6).await;
    let earlier = auditor.publish_checkpoint().await.unwrap();
    // More traffic, then the checkpoint the bundle is proven against.
    let committee = run.identity(COMMITTEE);
    run.producer(COMMITTEE).publish(&committee.topics.alerts(), b"a3", &valid(sample_alert())).await.unwrap();
    drop(auditor);
    // The new alert and the earlier checkpoint's own record.
    let mut auditor = audit_until(run, "evidence", 8).await;
    let latest = auditor.publish_checkpoint().await.unwrap();
    let indices = auditor.log().case_indices("US-2026-0419").unwrap();
    assert_eq!(indices.len(), 2, "the request and its confirmation ({request_id})");
    let identity = run.identity(AUDITOR);
    let bundle = evidence::export(
        auditor.log(),
        &identity.signer,
        "case US-2026-0419",
        &indices,
        (latest.tree_size as u64, latest.jws),
        Some((earlier.tree_size as u64, earlier.jws)),
        Some(run.suffix.clone()),
    )
    .unwrap();
    // The verifier gets the published topic model; the bundle names the run's suffix.
    let topics =
        concord_domain::TopicModel::from_toml_str(&std::fs::read_to_string(root().join("config/topics.toml")).unwrap(), "topics.toml")
            .unwrap();
    (bundle, (*identity.directory.current()).clone(), topics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_bundle_verifies_offline_and_fails_precisely_when_changed() {
    let run = TestRun::new("audit-evidence").await;
    let (bundle, directory, topics) = case_bundle(&run).await;
    let ok = evidence::verify(&bundle, Some(&directory), None, &topics).expect("the bundle verifies");
    assert_eq!((ok.records, ok.subject.as_str()), (2, "case US-2026-0419"));
    assert!(ok.consistency_checked, "the consistency proof from the earlier checkpoint is checked");

    // A removed record.
    let mut removed = bundle.clone();
    let gone = removed.records.remove(0).index;
    let problems = evidence::verify(&removed, Some(&directory), None, &topics).unwrap_err();
    assert_eq!(problems, vec![format!("record at leaf index {gone} is listed in the signed manifest but missing from the bundle")]);

    // An altered record: one byte of the stored value changed.
    let mut altered = bundle.clone();
    let engine = base64::engine::general_purpose::STANDARD;
    let mut leaf = engine.decode(&altered.records[1].leaf).unwrap();
    let at = leaf.len() - 40;
    leaf[at] ^= 0x20;
    altered.records[1].leaf = engine.encode(leaf);
    let index = altered.records[1].index;
    let problems = evidence::verify(&altered, Some(&directory), None, &topics).unwrap_err();
    assert_eq!(problems, vec![format!("record at leaf index {index} was altered: its leaf hash differs from the signed manifest")]);

    // A proof with one hash too few.
    let mut short = bundle.clone();
    short.records[0].proof.pop();
    let index = short.records[0].index;
    let problems = evidence::verify(&short, Some(&directory), None, &topics).unwrap_err();
    assert!(problems[0].starts_with(&format!("record at leaf index {index}: inclusion proof fails")), "{problems:?}");

    // A checkpoint signed by an agency that is not the auditor.
    let mut foreign = bundle.clone();
    let committee = run.identity(COMMITTEE);
    foreign.checkpoint = sign_checkpoint(&committee.signer, AUDITOR, 8, &[0; 32], time::OffsetDateTime::now_utc()).1;
    let problems = evidence::verify(&foreign, Some(&directory), None, &topics).unwrap_err();
    assert!(problems[0].contains("not to an auditor"), "{problems:?}");

    // The subject changed: what the bundle claims to be about is what the auditor signed.
    let mut renamed = bundle.clone();
    renamed.subject = "case XX-9999-0001".into();
    let problems = evidence::verify(&renamed, Some(&directory), None, &topics).unwrap_err();
    assert_eq!(
        problems,
        vec!["the bundle says it is about \"case XX-9999-0001\", but its signed manifest is about \"case US-2026-0419\"".to_owned()]
    );

    // A record repeated.
    let mut repeated = bundle.clone();
    repeated.records.push(repeated.records[0].clone());
    let index = repeated.records[0].index;
    let problems = evidence::verify(&repeated, Some(&directory), None, &topics).unwrap_err();
    assert_eq!(problems, vec![format!("record at leaf index {index} appears 2 times; a bundle holds each record once")]);

    // A broken consistency proof.
    let mut inconsistent = bundle.clone();
    inconsistent.previous.as_mut().unwrap().consistency[0] = hex(&[7; 32]);
    let problems = evidence::verify(&inconsistent, Some(&directory), None, &topics).unwrap_err();
    assert!(problems[0].starts_with("consistency from size 6 to"), "{problems:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_signed_checkpoints_of_one_size_with_different_roots_raise_a_split_view_alarm() {
    let run = TestRun::new("audit-split").await;
    let auditor_id = run.identity(AUDITOR);
    let producer = run.producer(AUDITOR);
    for root in [[1u8; 32], [2u8; 32]] {
        let (claims, jws) = sign_checkpoint(&auditor_id.signer, AUDITOR, 42, &root, time::OffsetDateTime::now_utc());
        let checkpoint =
            LogCheckpoint { log_id: claims.log, tree_size: 42, root_hash: claims.root, issued_at: UnixMillis(claims.iat * 1000), jws };
        producer.publish(&auditor_id.topics.checkpoints(), b"audit-hub", &valid(checkpoint.clone())).await.unwrap();
    }
    let auditor = audit_until(&run, "split", 2).await;
    let kept = auditor.log().checkpoints_of_size(AUDITOR, 42).unwrap();
    assert_eq!(kept.len(), 2, "both checkpoints are kept");
    let alarms = auditor.log().alarms().unwrap();
    assert_eq!(alarms.len(), 1);
    assert_eq!(alarms[0].0, "split_view");
    // Recording either again is not a new alarm.
    let (claims, jws) =
        (concord_protocol::statement::verify_checkpoint(&kept[0].1, &auditor_id.directory.current()).unwrap(), kept[0].1.clone());
    assert!(matches!(auditor.log().record_checkpoint(&claims, &jws).unwrap(), CheckpointOutcome::SplitView { .. }));
    assert_eq!(auditor.log().alarms().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_blaming_another_agency_is_logged_as_unverified() {
    use concord_kafka::dlq_header;
    use concord_protocol::dead_letter::dead_letter;
    let run = TestRun::new("audit-dlq").await;
    // Six records, among them the exchange's own dead letter for a forgery.
    case_traffic(&run).await;
    let committee = run.identity(COMMITTEE);
    let dlq = committee.topics.dead_letter();
    let original = run.signed_alert(COMMITTEE).await;
    let now = time::OffsetDateTime::now_utc();
    // The committee writes a letter with its own key but naming the issuer as the rejecter…
    let edit = |l: &mut concord_protocol::RawRecord, name: &str, value: &str| {
        let at = l.headers.iter().position(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name}"));
        l.headers[at].1 = Some(value.as_bytes().to_vec());
    };
    let mut blaming = dead_letter(&committee.signer, &original, &dlq, "bad_signature", "forged by the committee", now);
    edit(&mut blaming, dlq_header::CONSUMER, ISSUER);
    // …one with the issuer named and no signature at all (a letter as written before signing)…
    let mut unsigned = blaming.clone();
    unsigned.headers.retain(|(name, _)| name != dlq_header::SIGNATURE);
    // …and its own genuine letter with the reason changed afterwards.
    let mut edited = dead_letter(&committee.signer, &original, &dlq, "bad_signature", "genuine", now);
    edit(&mut edited, dlq_header::REASON, "replayed");
    run.send(COMMITTEE, &[blaming, unsigned, edited]).await;

    let auditor = audit_until(&run, "dlq", 9).await;
    let leaves: Vec<concord_audit::leaf::Leaf> =
        (0..auditor.log().size()).map(|i| concord_audit::leaf::Leaf::from_bytes(&auditor.log().leaf_bytes(i).unwrap()).unwrap()).collect();
    let letters: Vec<(&str, &str)> =
        leaves.iter().filter(|l| l.outcome.starts_with("dead_letter")).map(|l| (l.outcome.as_str(), l.detail.as_str())).collect();
    assert_eq!(letters.len(), 4, "{letters:?}");
    assert!(
        letters
            .contains(&("dead_letter:issuer_key_mismatch", letters.iter().find(|l| l.0 == "dead_letter:issuer_key_mismatch").unwrap().1)),
        "the exchange's own letter verifies: {letters:?}"
    );
    let unverified: Vec<&(&str, &str)> = letters.iter().filter(|l| l.0.starts_with("dead_letter_unverified:")).collect();
    assert_eq!(unverified.len(), 3, "{letters:?}");
    assert!(
        unverified.iter().any(|l| l.0 == "dead_letter_unverified:bad_signature"
            && l.1.starts_with("not shown to come from issuer-usdx: the letter's concord-dlq-consumer differs")),
        "{letters:?}"
    );
    assert!(unverified.iter().any(|l| l.1.contains("no single concord-dlq-signature header")), "{letters:?}");
    assert!(
        unverified.iter().any(|l| l.0 == "dead_letter_unverified:replayed" && l.1.contains("concord-dlq-reason differs")),
        "{letters:?}"
    );
}

/// Every header a dead letter relies on is signed, and a letter about a
/// record the auditor holds is checked against it (issue #25 1b). The
/// exchange reads a real alert; its genuine letter about it is logged as
/// `dead_letter`. Edited copies of that letter — `concord-dlq-at` changed,
/// the value replaced by the `concord-dlq-value-omitted` marker, the
/// original's own `ce_source` changed — are `dead_letter_unverified`; letters
/// the exchange signs with its own key about a record at a position of a topic
/// it cannot read, about the real alert's position with an invented value,
/// and about a position past the partition's end are `dead_letter_contradicted`.
/// (On the old code all six forgeries were logged as verified letters.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_must_be_signed_in_every_header_and_describe_the_record_it_names() {
    use concord_kafka::dlq_header;
    use concord_protocol::dead_letter::dead_letter;
    let run = TestRun::new("audit-dlq-claims").await;
    let exchange = run.identity(EXCHANGE);
    run.send(COMMITTEE, &[run.signed_alert(COMMITTEE).await]).await;
    let original = read_topic(&exchange, &exchange.topics.alerts(), 1, Duration::from_secs(30)).await.remove(0);
    let dlq = exchange.topics.dead_letter();
    let now = time::OffsetDateTime::now_utc();
    let letter = |of: &concord_protocol::RawRecord, detail: &str| dead_letter(&exchange.signer, of, &dlq, "bad_signature", detail, now);
    let edit = |mut l: concord_protocol::RawRecord, name: &str, value: &[u8]| {
        let at = l.headers.iter().position(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name}"));
        l.headers[at].1 = Some(value.to_vec());
        l
    };
    let genuine = letter(&original, "genuine");
    let moved_in_time = edit(letter(&original, "at edited"), dlq_header::AT, b"2020-01-01T00:00:00.000Z");
    let mut no_value = letter(&original, "value dropped");
    no_value.value = None;
    let signature = no_value.headers.len() - 1;
    no_value.headers.insert(signature, (dlq_header::VALUE_OMITTED.to_owned(), Some(b"message too large for the broker".to_vec())));
    let other_source = edit(letter(&original, "source edited"), "ce_source", b"urn:concord:agency:enforcement-us");
    let mut unreadable = original.clone();
    unreadable.topic = exchange.topics.inbox(&ISSUER.parse().unwrap());
    unreadable.value = Some(b"\0\0\0\0\x02invented".to_vec());
    let unreadable = letter(&unreadable, "a record of the issuer's inbox");
    let mut invented = original.clone();
    invented.value = Some(b"\0\0\0\0\x01invented".to_vec());
    let invented = letter(&invented, "another value");
    let mut ahead = original.clone();
    ahead.offset += 1000;
    let ahead = letter(&ahead, "a record that does not exist");
    run.send(EXCHANGE, &[genuine, moved_in_time, no_value, other_source, unreadable, invented, ahead]).await;

    let auditor = audit_until(&run, "dlq-claims", 8).await;
    let leaves: Vec<concord_audit::leaf::Leaf> =
        (0..auditor.log().size()).map(|i| concord_audit::leaf::Leaf::from_bytes(&auditor.log().leaf_bytes(i).unwrap()).unwrap()).collect();
    let outcome = |detail: &str| -> String {
        leaves
            .iter()
            .find(|l| l.record.topic == dlq && header_text(&l.record, dlq_header::DETAIL) == detail)
            .map(|l| format!("{} | {}", l.outcome, l.detail))
            .unwrap_or_else(|| panic!("no letter {detail:?} in {leaves:#?}"))
    };
    assert!(outcome("genuine").starts_with("dead_letter:bad_signature | genuine"), "{}", outcome("genuine"));
    for (detail, why) in
        [("at edited", "concord-dlq-at differs"), ("value dropped", "exactly"), ("source edited", "original headers differs")]
    {
        let got = outcome(detail);
        assert!(got.starts_with("dead_letter_unverified:bad_signature") && got.contains(why), "{detail}: {got}");
    }
    for (detail, why) in [
        ("a record of the issuer's inbox", "may not read"),
        ("another value", "the value differs"),
        ("a record that does not exist", "no record at"),
    ] {
        let got = outcome(detail);
        assert!(got.starts_with("dead_letter_contradicted:bad_signature") && got.contains(why), "{detail}: {got}");
    }
}

/// Directory versions in the log (docs/protocol.md §12.5): each record is
/// judged against the version in force at its own time — by the auditor, by
/// the auditor restarted, by a log rebuilt from offset 0, by replay, and by a
/// bundle's verifier who holds only the pinned governors. Enforcement is
/// offboarded by version 2: its alert from before stays verified, its alerts
/// after are refused, and an under-signed version 3 that would bring it back
/// is logged as refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_judged_by_the_directory_version_in_force_at_their_time() {
    let run = TestRun::new("audit-versions").await;
    let identity = run.identity(AUDITOR);
    let alerts = identity.topics.alerts();
    let all: Vec<concord_domain::Agency> = hub().load_directory().unwrap().agencies().cloned().collect();
    let offboarded: Vec<concord_domain::Agency> = all.iter().filter(|a| a.id.as_str() != ENFORCEMENT).cloned().collect();
    let enforcement = run.producer(ENFORCEMENT);

    publish_version(&run, &signed_by(version(1, all.clone()), &["governor-1", "governor-2"]), false);
    enforcement.publish(&alerts, b"e1", &valid(sample_alert())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    publish_version(&run, &signed_by(version(2, offboarded.clone()), &["governor-2", "governor-3"]), false);
    publish_version(&run, &signed_by(version(3, all.clone()), &["governor-1"]), true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    enforcement.publish(&alerts, b"e2", &valid(sample_alert())).await.unwrap();

    let expected =
        ["directory_version", "verified", "directory_version", "directory_refused:too_few_signatures", "unknown_key", "unknown_key"];
    let auditor = audit_until(&run, "versions", 5).await;
    assert_eq!(outcomes(auditor.log()), expected[..5], "in the log's order");
    drop(auditor);

    // Restarted, the auditor rebuilds the versions from its own log: the offboarded agency stays out.
    enforcement.publish(&alerts, b"e3", &valid(sample_alert())).await.unwrap();
    let mut auditor = audit_until(&run, "versions", 6).await;
    assert_eq!(outcomes(auditor.log()), expected);
    let rebuilt = audit_until(&run, "versions-rebuilt", 6).await;
    assert_eq!(hex(&rebuilt.log().root(6).unwrap()), hex(&auditor.log().root(6).unwrap()), "a rebuild judges alike");

    let filter = concord_audit::replay::Filter { topics: vec![alerts.clone(), identity.topics.directory()], ..Default::default() };
    let (entries, _) = concord_audit::replay::replay(&identity, &filter, |_, _| {}).await.unwrap();
    assert_eq!(entries.iter().map(|e| e.outcome.as_str()).collect::<Vec<_>>(), expected, "replay judges alike");

    // A bundle of enforcement's alerts carries every directory version with its proof.
    let checkpoint = auditor.publish_checkpoint().await.unwrap();
    let bundle = evidence::export(
        auditor.log(),
        &identity.signer,
        "enforcement's alerts",
        &[1, 4, 5],
        (checkpoint.tree_size as u64, checkpoint.jws),
        None,
        Some(run.suffix.clone()),
    )
    .unwrap();
    assert_eq!(bundle.records.iter().map(|r| r.index).collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5]);
    let topics =
        concord_domain::TopicModel::from_toml_str(&std::fs::read_to_string(root().join("config/topics.toml")).unwrap(), "topics.toml")
            .unwrap();
    let governors = hub().load_governors().unwrap().expect("the stack pins governors");
    let ok = evidence::verify(&bundle, None, Some(&governors), &topics).expect("verifies with the pinned governors alone");
    assert_eq!(ok.records, 6);

    // One directory for every record (how bundles were checked before versions): the
    // newest has no enforcement, so its alert from before the offboarding fails.
    let newest = concord_domain::Directory::new(offboarded).unwrap();
    let problems = evidence::verify(&bundle, Some(&newest), None, &topics).unwrap_err();
    assert!(
        problems.iter().any(|p| p.contains("leaf index 1: the log says \"verified\", re-verification says \"unknown_key\"")),
        "{problems:?}"
    );
    // Version 2 taken out of the bundle.
    let mut cut = bundle.clone();
    cut.records.retain(|r| r.index != 2);
    let problems = evidence::verify(&cut, None, Some(&governors), &topics).unwrap_err();
    assert!(problems.iter().any(|p| p.contains("leaf index 2 is listed in the signed manifest but missing")), "{problems:?}");
    // Governors nobody pinned: no version in the bundle is theirs.
    let strangers = concord_protocol::governance::Governors {
        threshold: 1,
        keys: vec![concord_protocol::governance::Governor {
            id: "stranger".into(),
            public_key: concord_protocol::governance::public_key(&[7; 32]),
        }],
    };
    let problems = evidence::verify(&bundle, None, Some(&strangers), &topics).unwrap_err();
    assert!(problems[0].contains("holds no valid directory version"), "{problems:?}");

    // The command a recipient runs, with only the governors file.
    let file = run.dir.join("versions-bundle.json");
    std::fs::write(&file, serde_json::to_string(&bundle).unwrap()).unwrap();
    let out = std::process::Command::new(binary("concord"))
        .current_dir(root())
        .args(["evidence", "verify"])
        .arg(&file)
        .arg("--governors")
        .arg(hub().pki_dir.join("governors.toml"))
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.contains("evidence OK: 6 records"), "{said}");
}
