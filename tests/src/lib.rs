//! The integration-test harness. Every test makes a [`TestRun`]: its own copies
//! of Concord's topics (`<topic>.it-<name>-<id>`, covered by the same ACLs),
//! its own consumer groups and temp folder, on the real broker and registry that
//! `make up` started. Dropping the run deletes its topics, so tests run in
//! parallel and leave nothing behind.

pub mod evm;
pub mod gateway_client;
mod process;
mod review;

pub use process::{Holder, Patient};
pub use review::{desk_call, free_port, review_desk, Staffer};

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use concord_domain::{
    group_id, Directory, Indicator, IndicatorAlert, IndicatorKind, KeyAlgorithm, KeyRecord, ScamCategory, Tlp, UnixMillis,
};
use concord_kafka::{
    create_topics, delete_topics, dlq_header, to_raw, ConsumerStats, Handler, HandlerError, Intake, KafkaSettings, SignedProducer,
    VerifiedConsumer,
};
use concord_protocol::governance::{sign_version_pkcs8, DirectoryVersion, SignedVersion};
use concord_protocol::{header, CloudEvent, RawRecord, RejectReason, SigningKey, VerifiedEvent};
use concord_runtime::config::HubConfig;
use concord_runtime::identity::Identity;
use rdkafka::consumer::{Consumer, StreamConsumer};
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The partner gateway's principal.
pub const GATEWAY: &str = "gateway-hub";

/// The agency that publishes alerts in most tests.
pub const COMMITTEE: &str = "committee-ph";
/// The agency that consumes alerts in most tests.
pub const EXCHANGE: &str = "exchange-global";
/// Law enforcement.
pub const ENFORCEMENT: &str = "enforcement-us";
/// The stablecoin issuer.
pub const ISSUER: &str = "issuer-usdx";
/// The auditor: the only reader of the dead-letter topic.
pub const AUDITOR: &str = "audit-hub";

/// `message` parsed by the domain's rules (what every publisher sends); a test's
/// sample that does not parse is a mistake in the test.
pub fn valid<M: concord_domain::Rules + std::fmt::Debug>(message: M) -> concord_domain::Valid<M> {
    let shown = format!("{message:?}");
    message.parse().unwrap_or_else(|e| panic!("a test message breaks a rule ({e}): {shown}"))
}

/// The workspace root.
/// A binary of this workspace, built beside the test binaries
/// (`target/debug/deps/<test>-…` → `target/debug/<name>`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    exe.parent().and_then(|p| p.parent()).expect("tests run from target/<profile>/deps").join(name)
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ lives in the workspace").to_owned()
}

/// The hub configuration of the dev stack, paths made absolute.
pub fn hub() -> HubConfig {
    concord_protocol::ensure_crypto_provider();
    let root = root();
    let mut hub: HubConfig =
        concord_runtime::config::load(&root.join("config/concord.toml"), "CONCORD").expect("config/concord.toml loads");
    for path in [&mut hub.pki_dir, &mut hub.directory, &mut hub.topics, &mut hub.state_dir].into_iter().chain(hub.governors.as_mut()) {
        if path.is_relative() {
            *path = root.join(&*path);
        }
    }
    assert!(hub.directory.exists(), "{} is missing: run `make up` (make test does) before the integration tests", hub.directory.display());
    hub
}

/// One test's isolated world on the real stack.
pub struct TestRun {
    /// The topic suffix.
    pub suffix: String,
    /// The hub configuration.
    pub hub: HubConfig,
    /// A temp folder for SQLite files.
    pub dir: PathBuf,
    admin: KafkaSettings,
    topics: Mutex<Vec<String>>,
    consumers: Mutex<u32>,
}

impl TestRun {
    /// Creates the run's topics (2 partitions each, enough to exercise ordering per key).
    pub async fn new(name: &str) -> TestRun {
        let suffix = format!("it-{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let hub = hub();
        let id = Identity::load(&hub, AUDITOR).expect("auditor identity").with_topic_suffix(&suffix);
        let admin = id.admin_settings();
        let mut topics = id.topics.topics(&id.directory.current());
        let directory_topic = id.topics.directory();
        for t in topics.iter_mut().filter(|t| t.name != directory_topic) {
            t.partitions = 2;
        }
        create_topics(&admin, &topics).await.expect("creating the run's topics on the admin listener");
        let dir = std::env::temp_dir().join(format!("concord-{suffix}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TestRun { suffix, hub, dir, admin, topics: Mutex::new(topics.into_iter().map(|t| t.name).collect()), consumers: Mutex::new(0) }
    }

    /// Creates this run's copies of the topics that `directory` gives agency
    /// `id` (an agency onboarded during the test: its inbox, its restricted
    /// alerts); they go with the run's others.
    pub async fn create_agency_topics(&self, directory: &Directory, id: &str) {
        let model = self.identity(AUDITOR).topics;
        let theirs: Vec<_> = model.topics(directory).into_iter().filter(|t| t.name.contains(&format!(".{id}."))).collect();
        assert!(!theirs.is_empty(), "the model gives {id} topics of its own");
        create_topics(&self.admin, &theirs).await.expect("creating the agency's topics on the admin listener");
        self.topics.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(theirs.into_iter().map(|t| t.name));
    }

    /// Agency `id` acting on this run's topics.
    pub fn identity(&self, id: &str) -> Identity {
        Identity::load(&self.hub, id).unwrap_or_else(|e| panic!("identity {id}: {e}")).with_topic_suffix(&self.suffix)
    }

    /// A signed producer for agency `id`.
    pub fn producer(&self, id: &str) -> SignedProducer {
        let identity = self.identity(id);
        SignedProducer::new(&identity.kafka, identity.signer.clone(), identity.codec.clone()).expect("producer")
    }

    /// A valid, signed alert record from `id` to this run's alerts topic (not sent).
    pub async fn signed_alert(&self, id: &str) -> RawRecord {
        let producer = self.producer(id);
        let alert = valid(sample_alert());
        producer.prepare(&self.identity(id).topics.alerts(), alert.indicators[0].value.as_bytes(), &alert).await.expect("prepare")
    }

    /// Encodes and signs `message` as `id` for `topic` *without* the domain's
    /// rules, and sends it: what a faulty or hostile publisher sends, for tests
    /// of what consumers refuse (every real publisher takes a `Valid` message).
    pub async fn publish_unchecked<M: concord_domain::Message>(&self, id: &str, topic: &str, key: &[u8], message: &M) -> RawRecord {
        let identity = self.identity(id);
        let value = identity.codec.encode(message).await.expect("encodes");
        let record = identity.signer.sign_record(topic, M::TYPE, Some(key.to_vec()), value, OffsetDateTime::now_utc());
        self.send(id, std::slice::from_ref(&record)).await;
        record
    }

    /// Sends records exactly as given over `id`'s connection.
    pub async fn send(&self, id: &str, records: &[RawRecord]) {
        let producer = self.producer(id);
        for r in records {
            producer.send_raw(r).await.unwrap_or_else(|e| panic!("sending as {id}: {e}"));
        }
    }

    /// Starts a verifying consumer as `identity` over `topics`, in a new group.
    pub fn start_consumer(&self, identity: &Identity, topics: &[String]) -> Running {
        let n = {
            let mut n = self.consumers.lock().unwrap();
            *n += 1;
            *n
        };
        self.start_consumer_in(identity, topics, &format!("c{n}"), Recorder::default())
    }

    /// Starts a verifying consumer in group `name` with its replay guard at `<dir>/<name>.sqlite`,
    /// handing events to `recorder`: the same name after a stop is a restart.
    pub fn start_consumer_in(&self, identity: &Identity, topics: &[String], name: &str, recorder: Recorder) -> Running {
        let producer = SignedProducer::new(&identity.kafka, identity.signer.clone(), identity.codec.clone()).expect("dlq producer");
        let consumer = VerifiedConsumer::new(
            Intake {
                settings: &identity.kafka,
                signer: identity.signer.clone(),
                group: &group_id(&identity.agency.id, &format!("{}-{name}", self.suffix)),
                topics,
                verifier: identity.verifier(),
                dead_letter_topic: identity.topics.dead_letter(),
                seen_path: &self.dir.join(format!("{name}.sqlite")),
            },
            producer.raw(),
        )
        .expect("consumer");
        let stats = consumer.stats();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(consumer.run(recorder.clone(), shutdown.clone()));
        Running { stats, recorder, shutdown, task }
    }

    /// Reads the run's dead-letter topic as the auditor until `n` records arrived (or 60 s passed).
    pub async fn dead_letters(&self, n: usize) -> Vec<RawRecord> {
        let auditor = self.identity(AUDITOR);
        read_topic(&auditor, &auditor.topics.dead_letter(), n, Duration::from_secs(60)).await
    }

    /// Sends `bad` as `sender`, then one valid alert, and consumes the alerts topic
    /// as the exchange. Asserts that the handler saw only the valid alert and that
    /// each bad record is on the dead-letter topic with `reason`, its original
    /// key, value and headers. Returns the dead letters.
    pub async fn assert_alerts_rejected(&self, sender: &str, bad: &[RawRecord], reason: RejectReason) -> Vec<RawRecord> {
        self.assert_rejected_by(&self.identity(EXCHANGE), sender, bad, reason).await
    }

    /// [`TestRun::assert_alerts_rejected`] with a chosen consumer identity (for example one
    /// trusting a modified directory).
    pub async fn assert_rejected_by(&self, consumer: &Identity, sender: &str, bad: &[RawRecord], reason: RejectReason) -> Vec<RawRecord> {
        self.send(sender, bad).await;
        let good = self.signed_alert(COMMITTEE).await;
        self.send(COMMITTEE, std::slice::from_ref(&good)).await;
        let running = self.start_consumer(consumer, &[consumer.topics.alerts()]);
        running.wait_settled(bad.len() as u64 + 1).await;
        assert_eq!(running.stats.rejected(reason.code()), bad.len() as u64, "rejections counted under {reason}");
        let seen = running.stop().await;
        assert_eq!(
            seen.iter().map(|(e, _)| e.id.clone()).collect::<Vec<_>>(),
            vec![event_id(&good)],
            "the handler must see the valid alert and nothing else"
        );
        let dead = self.dead_letters(bad.len()).await;
        assert_eq!(dead.len(), bad.len(), "every bad record reaches the dead-letter topic");
        for original in bad {
            let letter = dead
                .iter()
                .find(|d| d.value == original.value && d.key == original.key && d.headers.starts_with(&original.headers))
                .unwrap_or_else(|| panic!("no dead letter keeps the original bytes and headers of {}", event_id(original)));
            assert_eq!(header_text(letter, dlq_header::REASON), reason.code(), "reason of {}", event_id(original));
            assert_eq!(header_text(letter, dlq_header::TOPIC), consumer.topics.alerts());
            assert_eq!(header_text(letter, dlq_header::CONSUMER), consumer.agency.id.as_str());
            assert!(!header_text(letter, dlq_header::DETAIL).is_empty());
        }
        dead
    }
}

impl Drop for TestRun {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let topics = std::mem::take(self.topics.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner));
        let dir = self.dir.clone();
        // Drop may run inside a runtime; clean up on a thread of our own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let _ = rt.block_on(delete_topics(&admin, &topics));
            let _ = std::fs::remove_dir_all(dir);
        })
        .join();
    }
}

/// A handler that records what it is given.
#[derive(Clone, Default)]
pub struct Recorder {
    /// Events with their redelivery flag, in order.
    pub events: Arc<Mutex<Vec<(VerifiedEvent, bool)>>>,
    /// While set, the handler fails transiently (a database outage), so offsets stay put.
    pub failing: Arc<std::sync::atomic::AtomicBool>,
}

impl Handler for Recorder {
    async fn handle(&self, event: VerifiedEvent, redelivery: bool) -> Result<(), HandlerError> {
        self.events.lock().unwrap().push((event, redelivery));
        if self.failing.load(Ordering::SeqCst) {
            return Err(HandlerError::Transient("simulated outage".into()));
        }
        Ok(())
    }
}

/// A consumer running in the background.
pub struct Running {
    /// Its counters.
    pub stats: Arc<ConsumerStats>,
    /// What its handler saw.
    pub recorder: Recorder,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), concord_kafka::ConsumerError>>,
}

impl Running {
    /// Waits until `n` records are handled or rejected; panics after 60 s.
    pub async fn wait_settled(&self, n: u64) {
        let start = Instant::now();
        while self.stats.settled() < n {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "only {} of {n} records settled in 60 s (rejected: {:?})",
                self.stats.settled(),
                self.stats.rejected.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the handler was called `n` times; panics after 60 s.
    pub async fn wait_handled_calls(&self, n: usize) {
        let start = Instant::now();
        while self.recorder.events.lock().unwrap().len() < n {
            assert!(start.elapsed() < Duration::from_secs(60), "handler not called {n} times in 60 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the consumer (committing stored offsets) and returns what the handler saw.
    pub async fn stop(self) -> Vec<(VerifiedEvent, bool)> {
        self.shutdown.cancel();
        self.task.await.expect("consumer task").expect("consumer ran cleanly");
        let events = self.recorder.events.lock().unwrap().clone();
        events
    }
}

/// Reads `topic` from the start as `identity` until `n` records or `limit` elapsed.
pub async fn read_topic(identity: &Identity, topic: &str, n: usize, limit: Duration) -> Vec<RawRecord> {
    let group = group_id(&identity.agency.id, &format!("read-{}", uuid::Uuid::new_v4().simple()));
    let consumer: StreamConsumer = identity
        .kafka
        .client_config(&[("group.id", &group), ("auto.offset.reset", "earliest"), ("enable.auto.commit", "false")])
        .expect("config")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let start = Instant::now();
    let mut out = Vec::new();
    while out.len() < n && start.elapsed() < limit {
        match tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            Ok(Ok(m)) => out.push(to_raw(&m)),
            // A broker that went away (the cluster test kills one) is an event, not an end.
            Ok(Err(rdkafka::error::KafkaError::MessageConsumption(rdkafka::types::RDKafkaErrorCode::BrokerTransportFailure))) => {}
            Ok(Err(e)) => panic!("reading {topic} as {}: {e}", identity.agency.id),
            Err(_) => {}
        }
    }
    out
}

/// A realistic alert.
pub fn sample_alert() -> IndicatorAlert {
    IndicatorAlert {
        alert_id: uuid::Uuid::new_v4().to_string(),
        indicators: vec![Indicator {
            kind: IndicatorKind::CryptoAddress,
            value: "TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9n".into(),
            chain: Some("TRON".into()),
            asset: Some("USDT".into()),
            platform: None,
        }],
        category: ScamCategory::RomanceScam,
        confidence: 95,
        tlp: Tlp::Amber,
        first_seen: UnixMillis::now(),
        valid_until: Some(UnixMillis(UnixMillis::now().0 + 90 * 86_400_000)),
        description: "Deposit wallet of a pig-butchering platform".into(),
        evidence_refs: vec!["case/US-2026-0419/exhibit-12".into()],
        related_alert_ids: vec![],
    }
}

/// A realistic freeze request of `case` for one TRON wallet.
pub fn sample_freeze_request(case: &str) -> concord_domain::FreezeRequest {
    use concord_domain::*;
    FreezeRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        case_ref: case.into(),
        targets: vec![FreezeTarget {
            target_id: "t1".into(),
            action: TargetAction::FreezeWallet,
            indicator: sample_alert().indicators.remove(0),
            freeze: None,
            release_reason: None,
            destination: None,
        }],
        legal_basis: LegalBasis {
            kind: LegalBasisKind::CourtOrder,
            reference: "1:26-mj-00419".into(),
            jurisdiction: "US".into(),
            document_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
            court: None,
        },
        deadline: UnixMillis(UnixMillis::now().0 + 3_600_000),
        urgency: Urgency::Immediate,
        embargo: true,
        escalation: 0,
        notes: "Funds are moving through a bridge; freeze before the next hop.".into(),
        requested_by: Some(concord_domain::Officer {
            id: "agent-0419".into(),
            name: "Special Agent Dana Reyes".into(),
            contact: Some("dreyes@cyber.example.gov".into()),
        }),
    }
}

/// A header's value as text ("" if absent).
pub fn header_text(record: &RawRecord, name: &str) -> String {
    record.header_values(name).next().flatten().map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default()
}

/// The record's `ce_id`.
pub fn event_id(record: &RawRecord) -> String {
    header_text(record, header::ID)
}

/// The CloudEvents attributes of a record.
pub fn event_of(record: &RawRecord) -> CloudEvent {
    CloudEvent {
        id: header_text(record, header::ID),
        source: header_text(record, header::SOURCE),
        ty: header_text(record, header::TYPE),
        time: header_text(record, header::TIME),
        content_type: header_text(record, header::CONTENT_TYPE),
    }
}

/// A fresh Ed25519 signing key for `agency` with key id `kid`, and its directory record.
pub fn extra_key(agency: &str, kid: &str, revoked_at: Option<OffsetDateTime>) -> (SigningKey, KeyRecord) {
    let seed: [u8; 32] = *uuid::Uuid::new_v4().as_bytes().repeat(2).first_chunk().expect("32 bytes");
    let key = SigningKey::from_seed(agency.parse().expect("agency id"), kid, &seed).expect("key");
    let record = KeyRecord {
        kid: kid.to_owned(),
        alg: KeyAlgorithm::EdDSA,
        public_key: concord_protocol::b64(&key.public_key()),
        not_before: None,
        not_after: None,
        revoked_at,
        delegated: false,
    };
    (key, record)
}

/// `directory` with `key` added to `agency` (before its current keys).
pub fn with_key(directory: &Directory, agency: &str, key: KeyRecord) -> Arc<Directory> {
    let agencies = directory
        .agencies()
        .cloned()
        .map(|mut a| {
            if a.id.as_str() == agency {
                a.keys.insert(0, key.clone());
            }
            a
        })
        .collect();
    Arc::new(Directory::new(agencies).expect("valid directory"))
}

/// The config header of a service under test acting as `agency`: the repository's
/// hub file, its state in `database`, no admin port, the shared topics.
pub fn service_header(agency: &str, database: PathBuf) -> concord_runtime::service::ServiceHeader {
    concord_runtime::service::ServiceHeader {
        hub: root().join("config/concord.toml"),
        ..concord_runtime::service::ServiceHeader::new(agency, database)
    }
}

/// A holder's policy honouring law enforcement on `legal_bases`: nothing proactive, no tiers.
pub fn enforcement_policy(legal_bases: Vec<concord_domain::LegalBasisKind>) -> concord_holder::RequestPolicy {
    concord_holder::RequestPolicy {
        requesters: vec![ENFORCEMENT.into()],
        legal_bases,
        accept_delegated: false,
        proactive: None,
        rules: Vec::new(),
        revalidation: None,
    }
}

/// The test configuration of the issuer: honours law enforcement on a court
/// order, MLAT or emergency basis; USDT on TRON and Ethereum; no proactive freezes.
pub fn issuer_config(run: &TestRun) -> concord_issuer::IssuerConfig {
    issuer_config_in(&run.dir)
}

/// [`issuer_config`] with its ledger in `dir`.
pub fn issuer_config_in(dir: &Path) -> concord_issuer::IssuerConfig {
    use concord_domain::LegalBasisKind::*;
    concord_issuer::IssuerConfig {
        service: service_header(ISSUER, dir.join("issuer-ledger.sqlite")),
        policy: enforcement_policy(vec![CourtOrder, Mlat, Emergency]),
        holdings: concord_issuer::config::Holdings { chains: vec!["TRON".into(), "ETHEREUM".into()], assets: vec!["USDT".into()] },
        ledger_seed: None,
        review: None,
        book: Default::default(),
        chain: None,
    }
}

/// The test configuration of the exchange, with the sample accounts and a deposits folder in the run's folder.
pub fn exchange_config(run: &TestRun) -> concord_exchange::ExchangeConfig {
    use concord_domain::LegalBasisKind::*;
    concord_exchange::ExchangeConfig {
        service: service_header(EXCHANGE, run.dir.join("exchange-ledger.sqlite")),
        policy: enforcement_policy(vec![CourtOrder, Mlat, Emergency]),
        screening: concord_exchange::config::Screening {
            deposits_dir: run.dir.join("deposits"),
            min_confidence: 50,
            poll_interval_ms: 100,
            chain: Vec::new(),
        },
        accounts_seed: Some(root().join("config/samples/exchange-accounts.csv")),
        review: None,
    }
}

/// The test configuration of the committee (country code 63), reading `reports`.
pub fn committee_config(run: &TestRun, reports: &Path) -> concord_committee::CommitteeConfig {
    use concord_domain::LegalBasisKind::*;
    concord_committee::CommitteeConfig {
        service: service_header(COMMITTEE, run.dir.join("committee.sqlite")),
        reports_dir: reports.to_owned(),
        country_code: "63".into(),
        poll_interval_ms: 100,
        policy: enforcement_policy(vec![CourtOrder, Mlat, Emergency, Administrative]),
        review: None,
    }
}

/// Waits until `done()` or panics after `limit`, saying `what`.
pub async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not reached in {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The confirmations among `records`, verified as `identity` would.
pub async fn confirmations_of(identity: &Identity, records: &[RawRecord]) -> Vec<concord_domain::TakedownConfirmation> {
    let verifier = identity.verifier();
    let mut out = Vec::new();
    for r in records {
        match verifier.verify(r, concord_protocol::Mode::live()).await.expect("confirmations verify").payload {
            concord_protocol::Payload::TakedownConfirmation(c) => out.push(c.into_inner()),
            other => panic!("expected a confirmation, got {other:?}"),
        }
    }
    out
}

/// A partner gateway running in-process on this run's topics.
pub struct RunningGateway {
    /// Where it listens (HTTPS).
    pub addr: std::net::SocketAddr,
    /// A client trusting the dev CA.
    pub client: gateway_client::GatewayClient,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), concord_gateway::GatewayError>>,
}

impl RunningGateway {
    /// Stops it (SSE streams end, connections drain) and checks it stopped cleanly.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("gateway task").expect("gateway stops cleanly");
    }
}

impl TestRun {
    /// The gateway's configuration for this run: any free port, state in the run's folder.
    pub fn gateway_config(&self) -> concord_gateway::GatewayConfig {
        serde_json::from_value(serde_json::json!({
            "agency": "gateway-hub",
            "listen": "127.0.0.1:0",
            "admin_listen": "",
            "database": self.dir.join(format!("gateway-{}.sqlite", uuid::Uuid::new_v4().simple())),
            "topic_suffix": self.suffix,
        }))
        .expect("gateway config")
    }

    /// Starts a gateway with `config` acting as `identity` (normally `self.identity(GATEWAY)`).
    pub async fn start_gateway_as(&self, identity: Identity, config: concord_gateway::GatewayConfig) -> RunningGateway {
        let shutdown = CancellationToken::new();
        let gateway = concord_gateway::Gateway::bind(identity, config, concord_runtime::metrics::Metrics::new(), shutdown.clone())
            .await
            .expect("gateway binds");
        let addr = gateway.local_addr();
        let task = tokio::spawn(gateway.run(shutdown.clone()));
        let client = gateway_client::GatewayClient::new(addr, &self.hub.pki_dir.join("ca.pem"), None).expect("client");
        RunningGateway { addr, client, shutdown, task }
    }

    /// Starts a gateway with the default configuration.
    pub async fn start_gateway(&self) -> RunningGateway {
        self.start_gateway_as(self.identity(GATEWAY), self.gateway_config()).await
    }
}

/// A bearer token for `agency` signed with its own dev key, for `audience`
/// "concord-gateway", granting `scopes`, valid for five minutes.
pub fn token_for(agency: &str, scopes: &[&str]) -> String {
    token_with(agency, concord_gateway::auth::claims(agency, "concord-gateway", scopes, 300))
}

/// A token of `agency`'s own dev key over exactly `claims`.
pub fn token_with(agency: &str, claims: serde_json::Value) -> String {
    let pem =
        std::fs::read_to_string(concord_runtime::pki::AgencyFiles::new(&hub().pki_dir, agency).signing_key()).expect("dev signing key");
    concord_gateway::auth::mint(&pem, &format!("{agency}/dev-1"), &claims).expect("token")
}

// Directory versions (docs/protocol.md §12), signed with the dev stack's governors.

pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// A directory version `version` signed by the dev stack's governors `by` (keys made by `make up`).
pub fn signed_by(version: DirectoryVersion, by: &[&str]) -> SignedVersion {
    let pki = hub().pki_dir;
    let signatures = by
        .iter()
        .map(|g| {
            let pem = std::fs::read_to_string(pki.join(format!("governors/{g}.key"))).expect("governor key (make up writes it)");
            let der = concord_protocol::pem_to_der(&pem, "PRIVATE KEY").unwrap();
            sign_version_pkcs8(&version, g, &der).unwrap()
        })
        .collect();
    SignedVersion { version, signatures }
}

/// Directory version `n` listing `agencies`, in effect now.
pub fn version(n: u64, agencies: Vec<concord_domain::Agency>) -> DirectoryVersion {
    DirectoryVersion { version: n, effective_at: now_ms(), topic_model: 1, agencies, governors: None }
}

/// A directory follower running for a test (`concord_runtime::directory::follow`).
pub struct Following {
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Following {
    /// Follows the run's directory topic as `identity`, once it is read to its end.
    pub async fn start(identity: &Identity) -> Following {
        use concord_runtime::directory::{follow, Status};
        let shutdown = CancellationToken::new();
        let task = follow(identity, &concord_runtime::metrics::Metrics::new(), &shutdown, None, &Status::default())
            .await
            .expect("following the directory topic")
            .expect("governors pinned: following");
        Following { shutdown, task }
    }

    /// Stops following.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("the follower does not panic");
    }
}

/// `concord directory publish` of `signed` on the run's directory topic, as the hub operator runs it.
pub fn publish_version(run: &TestRun, signed: &SignedVersion, unchecked: bool) -> String {
    let path = run.dir.join(format!("version-{}-{}.json", signed.version.version, uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, serde_json::to_string_pretty(signed).unwrap()).unwrap();
    let mut command = std::process::Command::new(binary("concord"));
    command.current_dir(root()).args(["directory", "publish"]).arg(&path).args(["--topic-suffix", &run.suffix]);
    if unchecked {
        command.arg("--unchecked");
    }
    let out = command.output().expect("concord runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "concord directory publish failed: {text}");
    text
}

/// With `CONCORD_TEST_LOG` set, the in-process services of a test log to
/// stderr (filtered by `RUST_LOG`), once per test binary.
pub fn test_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if std::env::var_os("CONCORD_TEST_LOG").is_some() {
        ONCE.call_once(|| concord_runtime::telemetry::init(false));
    }
}
