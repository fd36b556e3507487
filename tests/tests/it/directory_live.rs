//! The live directory on the real stack (docs/protocol.md §12): three running
//! consumers — the issuer and exchange binaries and the gateway binary, each
//! following the run's directory topic — while enforcement's alerts flow.
//!
//! - A revocation published with `concord directory publish` is in force at
//!   every consumer within 5 s, with no restart: every alert signed with the
//!   revoked key and sent 5 s after publication or later is dead-lettered as
//!   `key_revoked` by each of them, nothing sent before the revocation is, and
//!   every record is either handled or dead-lettered (none lost).
//! - Versions with too few signatures, a rollback, and bytes that are no
//!   version are refused by every consumer, counted by reason, and the version
//!   in force stays (the revoked key stays revoked).
//! - A new key added by a later version is trusted live.
//! - A consumer restarted after all this reads the topic before its work, so
//!   a restart does not reopen the revoked key.
//! - The gateway refuses bearer tokens signed with a key revoked live.
//! - Key rotation with an overlap, governor rotation, a retired governor's
//!   version refused, a version for another topic model alarmed.
//! - A process started while the topic is unreachable starts on the versions
//!   it kept locally, which a forged addition to that file cannot extend.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use concord_domain::{Agency, Directory};
use concord_kafka::SignedProducer;
use concord_protocol::dead_letter::header as dlq_header;
use concord_protocol::governance::{record_key, DirectoryVersion, SignedVersion};
use concord_protocol::Signer;
use concord_tests::*;
use time::OffsetDateTime;

const GATEWAY: &str = "gateway-hub";

/// One consumer under test: the binary and its admin port.
struct Consumer {
    name: &'static str,
    agency: &'static str,
    process: Holder,
    admin: u16,
}

impl Consumer {
    fn start(run: &TestRun, name: &'static str, agency: &'static str, body: &str) -> Consumer {
        let admin = free_port();
        let text = format!(
            "hub = {:?}\nagency = {agency:?}\ndatabase = {:?}\ntopic_suffix = {:?}\nadmin_listen = \"127.0.0.1:{admin}\"\n{body}",
            root().join("config/concord.toml").display().to_string(),
            run.dir.join(format!("{name}.sqlite")).display().to_string(),
            run.suffix,
        );
        let config = run.dir.join(format!("{name}.toml"));
        std::fs::write(&config, text).unwrap();
        let process = Holder::start_with(
            match name {
                "issuer" => "concord-issuer",
                "exchange" => "concord-exchange",
                _ => "concord-gateway",
            },
            config,
            run.dir.join(format!("{name}.log")),
            &[("RUST_LOG", "info")],
        );
        Consumer { name, agency, process, admin }
    }

    /// The sum of the samples of `metric` whose labels contain every one of `labels`.
    async fn metric(&self, metric: &str, labels: &[&str]) -> u64 {
        let url = format!("http://127.0.0.1:{}/metrics", self.admin);
        let Ok(response) = reqwest::get(&url).await else { return 0 };
        let text = response.text().await.unwrap_or_default();
        text.lines()
            .filter(|l| l.split(['{', ' ']).next() == Some(metric) && labels.iter().all(|want| l.contains(want)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    async fn verified(&self) -> u64 {
        self.metric("concord_records_verified_total", &[]).await
    }

    async fn revoked(&self) -> u64 {
        self.metric("concord_records_rejected_total", &["reason=\"key_revoked\""]).await
    }
}

async fn eventually(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "{what}: not reached in {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends alerts signed by `producer` at 10/s for `span`; their event ids and send times.
async fn stream(producer: &SignedProducer, topic: &str, span: Duration) -> Vec<(String, i64)> {
    let mut sent = Vec::new();
    let start = Instant::now();
    while start.elapsed() < span {
        let alert = sample_alert();
        let at = now_ms();
        let published = producer.publish(topic, alert.record_key().as_bytes(), &valid(alert.clone())).await.expect("alert sent");
        sent.push((published.id, at));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_published_on_the_directory_topic_holds_at_every_running_consumer_within_five_seconds() {
    let run = TestRun::new("dirlive").await;
    let holder = "[policy]\nrequesters = [\"enforcement-us\"]\nlegal_bases = [\"COURT_ORDER\"]\n\
                  [policy.proactive]\nroles = [\"enforcement\"]\nmin_confidence = 90\n";
    let deposits = run.dir.join("deposits");
    std::fs::create_dir_all(&deposits).unwrap();
    let mut consumers = vec![
        Consumer::start(&run, "issuer", ISSUER, &format!("{holder}[holdings]\nchains = [\"TRON\"]\nassets = [\"USDT\"]\n")),
        Consumer::start(
            &run,
            "exchange",
            EXCHANGE,
            &format!(
                "{holder}[screening]\ndeposits_dir = {:?}\nmin_confidence = 50\npoll_interval_ms = 500\n",
                deposits.display().to_string()
            ),
        ),
        Consumer::start(&run, "gateway", GATEWAY, "listen = \"127.0.0.1:0\"\n"),
    ];
    let enforcement = run.identity(ENFORCEMENT);
    let alerts = enforcement.topics.alerts();
    let producer = run.producer(ENFORCEMENT);

    // Before: every consumer is up, following version 0, and handles the stream.
    let mut before = Vec::new();
    for c in &consumers {
        eventually(&format!("{} handles alerts", c.name), Duration::from_secs(90), async || {
            let alert = sample_alert();
            before.push(producer.publish(&alerts, alert.record_key().as_bytes(), &valid(alert.clone())).await.unwrap().id);
            tokio::time::sleep(Duration::from_millis(200)).await;
            c.verified().await > 0
        })
        .await;
    }
    before.extend(stream(&producer, &alerts, Duration::from_secs(2)).await.into_iter().map(|(id, _)| id));
    for c in &consumers {
        let n = before.len() as u64;
        eventually(&format!("{} handles all {n} alerts before the revocation", c.name), Duration::from_secs(30), async || {
            c.verified().await >= n
        })
        .await;
        assert_eq!(c.metric("concord_directory_version", &[]).await, 0, "{}: the directory file is in force", c.name);
    }

    // The revocation: enforcement's key revoked from now on, published while alerts flow.
    let file = hub().load_directory().unwrap();
    let kid = file.current_key(ENFORCEMENT, OffsetDateTime::now_utc()).unwrap().kid.clone();
    let revoked_at = OffsetDateTime::now_utc();
    let agencies: Vec<Agency> = file
        .agencies()
        .cloned()
        .map(|mut a| {
            for k in a.keys.iter_mut().filter(|k| k.kid == kid) {
                k.revoked_at = Some(revoked_at);
            }
            a
        })
        .collect();
    let streaming = {
        let producer = run.producer(ENFORCEMENT);
        let alerts = alerts.clone();
        tokio::spawn(async move { stream(&producer, &alerts, Duration::from_secs(9)).await })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let said = publish_version(&run, &signed_by(version(1, agencies.clone()), &["governor-1", "governor-3"]), false);
    let published_at = now_ms();
    assert!(said.contains("version 1 published"), "{said}");
    let during = streaming.await.unwrap();
    let total = (before.len() + during.len()) as u64;
    for c in &consumers {
        eventually(&format!("{}: every alert handled or dead-lettered", c.name), Duration::from_secs(60), async || {
            c.verified().await + c.revoked().await >= total
        })
        .await;
        assert_eq!(c.verified().await + c.revoked().await, total, "{}: nothing lost, nothing twice", c.name);
    }

    // Which alerts each consumer refused, from the dead-letter topic.
    let refused_total: u64 = {
        let mut n = 0;
        for c in &consumers {
            n += c.revoked().await;
        }
        n
    };
    let letters = run.dead_letters(refused_total as usize).await;
    assert_eq!(letters.len() as u64, refused_total, "one dead letter per refusal");
    let before_ids: BTreeSet<&str> = before.iter().map(String::as_str).collect();
    for c in &consumers {
        let refused: BTreeSet<String> = letters
            .iter()
            .filter(|l| header_text(l, dlq_header::CONSUMER) == c.agency)
            .inspect(|l| assert_eq!(header_text(l, dlq_header::REASON), "key_revoked"))
            .map(event_id)
            .collect();
        assert!(refused.iter().all(|id| !before_ids.contains(id.as_str())), "{}: an alert from before the revocation was refused", c.name);
        let late: Vec<&(String, i64)> = during.iter().filter(|(_, at)| *at >= published_at + 5_000).collect();
        assert!(!late.is_empty(), "the stream ran past publication + 5 s");
        for (id, at) in &late {
            assert!(refused.contains(id), "{}: alert {id} sent {} ms after publication was accepted", c.name, at - published_at);
        }
        let last_accepted = during.iter().filter(|(id, _)| !refused.contains(id)).map(|(_, at)| at - published_at).max().unwrap_or(0);
        println!(
            "{}: the last alert it accepted was sent {last_accepted} ms after `concord directory publish` returned; {} refused",
            c.name,
            refused.len()
        );
        assert_eq!(c.metric("concord_directory_version", &[]).await, 1, "{}: version 1 in force", c.name);
    }

    // Refused versions: too few signatures, a rollback that would un-revoke, no version at all.
    publish_version(&run, &signed_by(version(2, agencies.clone()), &["governor-2"]), true);
    let unrevoked: Vec<Agency> = file.agencies().cloned().collect();
    publish_version(&run, &signed_by(version(1, unrevoked.clone()), &["governor-1", "governor-2"]), true);
    let admin = run.identity(AUDITOR).admin_settings();
    let raw: rdkafka::producer::FutureProducer = admin.client_config(&[]).unwrap().create().unwrap();
    let topic = enforcement.topics.directory();
    raw.send(
        rdkafka::producer::FutureRecord::to(&topic).key(&record_key(7)).payload("{\"version\": 7}").partition(0),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    for c in &consumers {
        for reason in ["too_few_signatures", "rollback", "malformed"] {
            let label = format!("reason=\"{reason}\"");
            eventually(&format!("{} refuses a {reason} version", c.name), Duration::from_secs(10), async || {
                c.metric("concord_directory_refused_total", &[&label]).await == 1
            })
            .await;
        }
        assert_eq!(c.metric("concord_directory_version", &[]).await, 1, "{}: the version in force stays", c.name);
    }
    let revoked_before: Vec<u64> = {
        let mut v = Vec::new();
        for c in &consumers {
            v.push(c.revoked().await);
        }
        v
    };
    let alert = sample_alert();
    producer.publish(&alerts, alert.record_key().as_bytes(), &valid(alert.clone())).await.unwrap();

    // A new key for enforcement in version 3: trusted live, without a restart.
    let (new_key, record) = extra_key(ENFORCEMENT, "enforcement-us/rotated", None);
    let rotated: Vec<Agency> = with_key(&Directory::new(agencies.clone()).unwrap(), ENFORCEMENT, record).agencies().cloned().collect();
    publish_version(&run, &signed_by(version(3, rotated), &["governor-2", "governor-3"]), false);
    for c in &consumers {
        eventually(&format!("{} applies version 3", c.name), Duration::from_secs(5), async || {
            c.metric("concord_directory_version", &[]).await == 3
        })
        .await;
        // Readiness names the version in force, as the metric does (it named version 0 before).
        let ready = reqwest::get(format!("http://127.0.0.1:{}/readyz", c.admin)).await.unwrap().text().await.unwrap();
        assert!(ready.contains("directory: version 3, the topic read to its end"), "{}: /readyz says {ready:?}", c.name);
    }
    let fresh =
        SignedProducer::new(&enforcement.kafka, Signer::new(new_key, enforcement.hub.signature_ttl()), enforcement.codec.clone()).unwrap();
    let alert = sample_alert();
    fresh.publish(&alerts, alert.record_key().as_bytes(), &valid(alert.clone())).await.unwrap();
    for (c, revoked) in consumers.iter().zip(&revoked_before) {
        eventually(&format!("{}: the rolled-back key still refused, the new key trusted", c.name), Duration::from_secs(30), async || {
            c.revoked().await == revoked + 1 && c.verified().await + c.revoked().await == total + 2
        })
        .await;
    }

    // A restart reads the topic before its work: the revoked key stays out.
    let issuer = &mut consumers[0];
    issuer.process.kill(Duration::ZERO);
    let alert = sample_alert();
    producer.publish(&alerts, alert.record_key().as_bytes(), &valid(alert.clone())).await.unwrap();
    let issuer = &consumers[0];
    eventually("the restarted issuer refuses the revoked key", Duration::from_secs(90), async || {
        issuer.revoked().await == 1 && issuer.metric("concord_directory_version", &[]).await == 3
    })
    .await;
    assert_eq!(issuer.verified().await, 0, "after the restart, nothing signed with the revoked key is handled");
    for c in &mut consumers {
        c.process.stop();
    }
}

/// A process started while the directory topic cannot be reached (its brokers
/// do not answer) starts on the versions it kept locally once
/// `LOCAL_FALLBACK` has passed, says so in its status (the `/readyz` line), and
/// refuses the key those versions revoked. The kept file cannot add trust: a
/// version appended to it without the governors' threshold is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_started_without_the_topic_starts_on_the_versions_it_kept() {
    use concord_runtime::directory::{follow, LocalState, Status, LOCAL_FALLBACK};
    use concord_runtime::metrics::Metrics;
    use tokio_util::sync::CancellationToken;

    let run = TestRun::new("dir-state").await;
    let file = hub().load_directory().unwrap();
    publish_version(&run, &signed_by(version(1, revoking(ENFORCEMENT)), &["governor-1", "governor-2"]), false);

    // With the topic: version 1 in force, and kept.
    let state = LocalState::beside(&run.dir.join("issuer.sqlite"));
    let online = run.identity(ISSUER);
    let (shutdown, status) = (CancellationToken::new(), Status::default());
    let task = follow(&online, &Metrics::new(), &shutdown, Some(state.clone()), &status).await.unwrap().expect("following");
    assert_eq!(online.directory.version(), 1);
    assert_eq!(status.get(), "directory: version 1, the topic read to its end");
    shutdown.cancel();
    task.await.unwrap();
    let kept: Vec<String> = serde_json::from_str(&std::fs::read_to_string(state.path()).unwrap()).unwrap();
    assert_eq!(kept.len(), 1, "the accepted version is kept");

    // Someone with the disk appends a version that un-revokes, signed by one governor.
    let unrevoked: Vec<Agency> = file.agencies().cloned().collect();
    let forged = serde_json::to_string(&signed_by(version(2, unrevoked), &["governor-3"])).unwrap();
    std::fs::write(state.path(), serde_json::to_string(&[kept[0].clone(), forged]).unwrap()).unwrap();

    // Restarted with brokers that do not answer.
    let mut offline = run.identity(ISSUER);
    offline.kafka.bootstrap_servers = format!("127.0.0.1:{}", free_port());
    let (shutdown, status) = (CancellationToken::new(), Status::default());
    let started = Instant::now();
    let task = follow(&offline, &Metrics::new(), &shutdown, Some(state.clone()), &status).await.unwrap().expect("following");
    let waited = started.elapsed();
    assert!(waited >= LOCAL_FALLBACK && waited < LOCAL_FALLBACK + Duration::from_secs(10), "started after {waited:?}");
    assert_eq!(offline.directory.version(), 1, "the kept version 1, not the forged 2");
    assert!(
        status.get().starts_with("directory: version 1 from the local state") && status.get().contains("not reachable at start"),
        "{}",
        status.get()
    );
    let alert = run.identity(ENFORCEMENT).codec.encode(&sample_alert()).await.unwrap();
    let enforcement = run.identity(ENFORCEMENT);
    let record = concord_protocol::forge_as(enforcement.signer.clone(), &enforcement.agency.id, &offline.topics.alerts(), None, alert);
    let refused = offline.verifier().check_envelope(&record, concord_protocol::Mode::live()).unwrap_err();
    assert_eq!(refused.reason.code(), "key_revoked", "{refused:?}");
    shutdown.cancel();
    task.await.unwrap();
}

/// The directory file's agencies with `agency`'s current key revoked from now on.
fn revoking(agency: &str) -> Vec<Agency> {
    let file = hub().load_directory().unwrap();
    let kid = file.current_key(agency, OffsetDateTime::now_utc()).unwrap().kid.clone();
    let revoked_at = OffsetDateTime::now_utc();
    file.agencies()
        .cloned()
        .map(|mut a| {
            for k in a.keys.iter_mut().filter(|k| k.kid == kid) {
                k.revoked_at = Some(revoked_at);
            }
            a
        })
        .collect()
}

/// The gateway's bearer-token check reads the live directory: once a version
/// revoking enforcement's key is published, a token signed with that key is
/// refused within 5 s, without a restart, while another agency's still works.
/// A key delegated to the gateway and revoked live stops signing (403
/// `no_delegated_key`) within 5 s too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_refuses_tokens_signed_with_a_key_revoked_live() {
    let run = TestRun::new("dir-gw-token").await;
    let identity = run.identity(GATEWAY);
    let follower = Following::start(&identity).await;
    let gateway = run.start_gateway_as(identity, run.gateway_config()).await;
    let path = "/v1/events?limit=1";
    let status = async |agency: &str| gateway.client.get(path, &token_for(agency, &["inbox:read"])).await.unwrap().status;
    assert_eq!(status(ENFORCEMENT).await, 200, "enforcement's token before the revocation");
    assert_eq!(status(EXCHANGE).await, 200);

    publish_version(&run, &signed_by(version(1, revoking(ENFORCEMENT)), &["governor-1", "governor-2"]), false);
    let published = Instant::now();
    eventually("enforcement's token refused", Duration::from_secs(5), async || status(ENFORCEMENT).await == 401).await;
    println!("the gateway refused the revoked key's token {} ms after publish returned", published.elapsed().as_millis());
    let answer = gateway.client.get(path, &token_for(ENFORCEMENT, &["inbox:read"])).await.unwrap();
    assert!(String::from_utf8_lossy(&answer.body).contains("revoked"), "{}", String::from_utf8_lossy(&answer.body));
    assert_eq!(status(EXCHANGE).await, 200, "another agency's token still works");

    // A key delegated to the gateway, revoked live: the gateway stops signing with it.
    let post = async || {
        let alert = serde_json::to_value(sample_alert()).unwrap();
        gateway.client.post_json("/v1/alerts", &token_for(COMMITTEE, &["alerts:publish"]), &alert).await.unwrap()
    };
    let before = post().await;
    assert_eq!(before.status, 202, "{}", String::from_utf8_lossy(&before.body));
    let file = hub().load_directory().unwrap();
    let delegated = file.current_delegated_key(COMMITTEE, OffsetDateTime::now_utc()).unwrap().kid.clone();
    let agencies: Vec<Agency> = revoking(ENFORCEMENT)
        .into_iter()
        .map(|mut a| {
            for k in a.keys.iter_mut().filter(|k| k.kid == delegated) {
                k.revoked_at = Some(OffsetDateTime::now_utc());
            }
            a
        })
        .collect();
    publish_version(&run, &signed_by(version(2, agencies), &["governor-2", "governor-3"]), false);
    eventually("the revoked delegated key no longer signs", Duration::from_secs(5), async || post().await.status == 403).await;
    let after = post().await;
    assert!(String::from_utf8_lossy(&after.body).contains("no_delegated_key"), "{}", String::from_utf8_lossy(&after.body));
    gateway.stop().await;
    follower.stop().await;
}

/// Rotations, live at a following consumer (docs/protocol.md §12):
/// - a key rotation with an overlap: both keys verify while both are valid,
///   then only the new one (the old is `key_not_valid`), nothing lost between;
/// - the governors rotated by a version signed by a threshold of the old and
///   of the new: the new ones sign the next version, a version signed by the
///   retired ones is refused (`retired_governor`) and counted;
/// - a version made for another topic model: `publish` refuses it, and
///   published anyway it is applied and alarmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_governors_rotate_live_and_a_retired_governor_is_refused() {
    use concord_protocol::governance::{public_key, sign_version, Governor, Governors};
    use concord_runtime::directory::{follow, Status};
    use concord_runtime::metrics::Metrics;
    use tokio_util::sync::CancellationToken;

    let run = TestRun::new("dir-rotate").await;
    let exchange = run.identity(EXCHANGE);
    let metrics = Metrics::new();
    let shutdown = CancellationToken::new();
    let follower = follow(&exchange, &metrics, &shutdown, None, &Status::default()).await.unwrap().expect("following");
    let in_force = async |n: u64| {
        eventually(&format!("version {n} in force"), Duration::from_secs(5), async || exchange.directory.version() == n).await
    };
    let enforcement = run.identity(ENFORCEMENT);
    let value = enforcement.codec.encode(&sample_alert()).await.unwrap();
    let verdict = |signer: &Signer| {
        let record = concord_protocol::forge_as(signer.clone(), &enforcement.agency.id, &exchange.topics.alerts(), None, value.clone());
        match exchange.verifier().check_envelope(&record, concord_protocol::Mode::live()) {
            Ok(_) => "verified".to_owned(),
            Err(r) => r.reason.code().to_owned(),
        }
    };

    // Key rotation: a new key from now, the old one valid 4 s more.
    let file = hub().load_directory().unwrap();
    let old_kid = file.current_key(ENFORCEMENT, OffsetDateTime::now_utc()).unwrap().kid.clone();
    let (new_key, record) = extra_key(ENFORCEMENT, "enforcement-us/rotated-2", None);
    let overlap_ends = OffsetDateTime::now_utc() + time::Duration::seconds(4);
    let rotated: Vec<Agency> = with_key(&file, ENFORCEMENT, record)
        .agencies()
        .cloned()
        .map(|mut a| {
            for k in a.keys.iter_mut().filter(|k| k.kid == old_kid) {
                k.not_after = Some(overlap_ends);
            }
            a
        })
        .collect();
    publish_version(&run, &signed_by(version(1, rotated.clone()), &["governor-1", "governor-2"]), false);
    in_force(1).await;
    let new_signer = Signer::new(new_key, enforcement.hub.signature_ttl());
    assert_eq!((verdict(&enforcement.signer), verdict(&new_signer)), ("verified".into(), "verified".into()), "both keys in the overlap");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!((verdict(&enforcement.signer), verdict(&new_signer)), ("key_not_valid".into(), "verified".into()), "after it");

    // Governor rotation: three new governors, 2 of 3, signed by 2 old and 2 new.
    let seeds = [[41u8; 32], [42; 32], [43; 32]];
    let new_governors = Governors {
        threshold: 2,
        keys: seeds.iter().enumerate().map(|(i, s)| Governor { id: format!("new-{i}"), public_key: public_key(s) }).collect(),
    };
    let by_new = |v: DirectoryVersion, which: &[usize]| SignedVersion {
        signatures: which.iter().map(|i| sign_version(&v, &format!("new-{i}"), &seeds[*i])).collect(),
        version: v,
    };
    let mut handover = version(2, rotated.clone());
    handover.governors = Some(new_governors);
    let mut signed = signed_by(handover, &["governor-1", "governor-3"]);
    signed.signatures.extend(by_new(signed.version.clone(), &[0, 1]).signatures);
    publish_version(&run, &signed, false);
    in_force(2).await;

    // The retired governors' signatures refuse a version; the new ones' carry it.
    publish_version(&run, &signed_by(version(3, rotated.clone()), &["governor-1", "governor-2"]), true);
    publish_version(&run, &by_new(version(3, rotated.clone()), &[1, 2]), false);
    in_force(3).await;
    let text = metrics.render();
    assert!(text.contains("concord_directory_refused_total{reason=\"retired_governor\"} 1"), "{text}");

    // Another topic model: refused by publish, alarmed when published anyway.
    let mut other = version(4, rotated);
    other.topic_model = 2;
    let path = run.dir.join("model-2.json");
    std::fs::write(&path, serde_json::to_string(&by_new(other.clone(), &[0, 2])).unwrap()).unwrap();
    let out = Command::new(binary("concord"))
        .current_dir(root())
        .args(["directory", "publish"])
        .arg(&path)
        .args(["--topic-suffix", &run.suffix])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("names topic model 2"), "{said}");
    publish_version(&run, &by_new(other, &[0, 2]), true);
    in_force(4).await;
    assert!(metrics.render().contains("concord_directory_other_topic_model_total 1"), "{}", metrics.render());
    shutdown.cancel();
    follower.await.unwrap();
}

/// The CLI's long-running commands follow the directory too: `concord tail`
/// refuses a record signed with a key that a version on the topic revoked
/// (with only the directory file it would accept it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concord_tail_checks_records_against_the_directory_topic() {
    let run = TestRun::new("dir-tail").await;
    let alerts = run.identity(ENFORCEMENT).topics.alerts();
    run.producer(ENFORCEMENT).publish(&alerts, b"t1", &valid(sample_alert())).await.unwrap();
    publish_version(&run, &signed_by(version(1, revoking(ENFORCEMENT)), &["governor-1", "governor-2"]), false);
    let out = Command::new(binary("concord"))
        .current_dir(root())
        .args(["tail", "--as", EXCHANGE, "--topic", "alerts", "--max", "1", "--topic-suffix", &run.suffix])
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{said}");
    assert!(said.contains("directory: version 1, the topic read to its end"), "{said}");
    assert!(said.contains("REJECTED key_revoked"), "{said}");
}
