//! The audit service. It reads every Concord topic (alerts, every inbox, the
//! dead-letter topic, checkpoints) with the auditor's read-only principal, and
//! appends every record — verified or rejected — to an RFC 9162 Merkle log in
//! SQLite, in a deterministic order (broker time, then topic, partition,
//! offset), so that rebuilding the log from offset 0 gives the same root.
//! At an interval it signs a checkpoint (size, root, time) with the auditor's
//! key and publishes it; checkpoints it reads are checked for a split view.
//!
//! Delivery guarantee: exactly once into the log — a leaf and its partition's
//! next offset are written in one SQLite transaction, and the consumer starts
//! from those offsets, so a crash neither loses nor duplicates a leaf.

pub mod config;
pub mod error;
pub mod evidence;
pub mod handler;
pub mod leaf;
pub mod replay;
pub mod store;
pub mod versions;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use concord_domain::LogCheckpoint;
use concord_kafka::{ReadOptions, Reader, SignedProducer};
use concord_protocol::statement::{hex, sign_checkpoint, verify_checkpoint};
use concord_protocol::{Limits, Payload, RawRecord, Verifier};
use concord_runtime::identity::Identity;
use concord_runtime::metrics::Labels;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub use config::AuditConfig;
pub use error::AuditError;
use leaf::Leaf;
use store::{AuditLog, CheckpointOutcome, StoreError};
use versions::InForce;

struct Partition {
    buffer: VecDeque<RawRecord>,
    /// The offset after the last record received.
    fetched_to: i64,
    /// The end of the partition when the auditor started: until it has read that
    /// far, unread records may precede everything buffered.
    high_watermark: i64,
    last_received: Instant,
}

impl Partition {
    /// Whether everything that existed at start was read. A partition whose end
    /// is a transaction marker (every holder's confirmations end with one) never
    /// delivers it; after `quiet` without a record it counts as caught up too.
    fn caught_up(&self, quiet: Duration) -> bool {
        self.fetched_to >= self.high_watermark || self.last_received.elapsed() > quiet
    }
}

/// The running auditor.
pub struct Auditor {
    identity: Identity,
    log: AuditLog,
    versions: InForce,
    verifier: Verifier,
    producer: SignedProducer,
    checkpoint_interval: Option<Duration>,
    grace: Duration,
    quiet: Duration,
    published_size: u64,
    appended: Arc<AtomicU64>,
    leaves: Family<Labels, Counter>,
}

/// Every audited partition by (topic, partition).
type Partitions = BTreeMap<(String, i32), Partition>;

impl Auditor {
    /// An auditor acting as `identity`, with its log at `config.service.database`.
    pub fn new(identity: Identity, config: &AuditConfig) -> Result<Self, AuditError> {
        if let Some(parent) = config.service.database.parent() {
            std::fs::create_dir_all(parent).ok();
        }
        let log = AuditLog::open(&config.service.database, identity.agency.id.as_str())?;
        // The versions the log holds, in its order: each record is judged
        // against the one in force at its time, here and in every bundle.
        let base = identity.hub.load_directory()?;
        let mut versions = InForce::new(Some(base), identity.hub.load_governors()?);
        for index in log.directory_indices()? {
            let leaf = Leaf::from_bytes(&log.leaf_bytes(index)?).map_err(|e| StoreError::Leaf { index, why: e.to_string() })?;
            versions.offer(leaf.record.value.as_deref().unwrap_or_default());
        }
        let limits = Limits { max_record_bytes: identity.hub.max_record_bytes, ..Limits::default() };
        let verifier = Verifier::new(versions.live(), Arc::clone(&identity.topics), identity.codec.clone(), limits);
        let producer = SignedProducer::new(&identity.kafka, identity.signer.clone(), identity.codec.clone())?;
        let published_size = log.latest_checkpoints()?.first().map_or(0, |c| c.0);
        Ok(Auditor {
            identity,
            log,
            versions,
            verifier,
            producer,
            checkpoint_interval: (config.checkpoint_interval_secs > 0).then(|| Duration::from_secs(config.checkpoint_interval_secs)),
            grace: Duration::from_millis(config.ordering_grace_ms),
            quiet: Duration::from_millis(config.catch_up_quiet_ms),
            published_size,
            appended: Arc::new(AtomicU64::new(0)),
            leaves: Family::default(),
        })
    }

    /// The log.
    pub fn log(&self) -> &AuditLog {
        &self.log
    }

    /// The log's size, kept current while [`Auditor::run`] appends.
    pub fn size_watch(&self) -> Arc<AtomicU64> {
        self.appended.store(self.log.size(), Ordering::SeqCst);
        Arc::clone(&self.appended)
    }

    /// Every topic the auditor reads.
    pub fn topics(&self) -> Vec<String> {
        self.identity.topics.topics(&self.identity.directory.current()).into_iter().map(|t| t.name).collect()
    }

    /// Signs a checkpoint of the log as it is, records it and publishes it.
    pub async fn publish_checkpoint(&mut self) -> Result<LogCheckpoint, AuditError> {
        let size = self.log.size();
        let root = self.log.root(size)?;
        let now = OffsetDateTime::now_utc();
        let (claims, jws) = sign_checkpoint(&self.identity.signer, self.log.log_id(), size, &root, now);
        self.log.record_checkpoint(&claims, &jws)?;
        let checkpoint = LogCheckpoint {
            log_id: claims.log.clone(),
            tree_size: size as i64,
            root_hash: hex(&root),
            issued_at: concord_domain::UnixMillis(claims.iat * 1000),
            jws,
        };
        let topic = self.identity.topics.checkpoints();
        let checkpoint = concord_domain::Rules::parse(checkpoint).map_err(|e| AuditError::Invalid(e.to_string()))?;
        self.producer.publish(&topic, self.log.log_id().as_bytes(), &checkpoint).await?;
        self.published_size = size;
        info!(size, root = %checkpoint.root_hash, "Checkpoint published.");
        Ok(checkpoint.into_inner())
    }

    /// Reads and appends until `shutdown`; publishes checkpoints at the configured interval.
    pub async fn run(&mut self, shutdown: CancellationToken) -> Result<(), AuditError> {
        let group = self.identity.group("audit-log");
        let (consumer, mut partitions) = self.assign(&group)?;
        info!(partitions = partitions.len(), size = self.log.size(), "Auditor started.");
        let mut last_checkpoint = Instant::now();
        while !shutdown.is_cancelled() {
            // Take in whatever has arrived, for up to 50 ms.
            let until = Instant::now() + Duration::from_millis(50);
            while let Ok(received) = tokio::time::timeout(until.saturating_duration_since(Instant::now()), consumer.next()).await {
                match received {
                    Ok(record) => {
                        if let Some(p) = partitions.get_mut(&(record.topic.clone(), record.partition)) {
                            p.fetched_to = record.offset + 1;
                            p.last_received = Instant::now();
                            p.buffer.push_back(record);
                        }
                    }
                    Err(e) => warn!(error = %e, "Kafka error while auditing; continuing."),
                }
            }
            // Group commit: the leaves of one pass reach the disk in one
            // transaction; the size others see, and checkpoints, follow it.
            self.log.begin()?;
            let appended = self.append_ready(&mut partitions, &shutdown).await;
            if self.log.uncommitted() > 0 {
                concord_runtime::failpoint::hit("audit-group-appended");
            }
            self.log.commit()?;
            appended?;
            self.appended.store(self.log.size(), Ordering::SeqCst);
            if let Some(every) = self.checkpoint_interval {
                if last_checkpoint.elapsed() >= every && self.log.size() > self.published_size {
                    if let Err(e) = self.publish_checkpoint().await {
                        warn!(error = %e, "Checkpoint not published; will retry.");
                    }
                    last_checkpoint = Instant::now();
                }
            }
        }
        info!(size = self.log.size(), "Auditor stopped.");
        Ok(())
    }

    /// A reader of every partition of the audited topics, each from the log's
    /// position there (or the partition's start), and the partitions' state.
    fn assign(&self, group: &str) -> Result<(Reader, Partitions), AuditError> {
        let positions = self.log.positions()?;
        let mut partitions = BTreeMap::new();
        let options = ReadOptions { committed_only: true, fetch_wait_ms: Some(100) };
        let (reader, _) = Reader::assign(&self.identity.kafka, group, &self.topics(), options, |range| {
            let key = (range.topic.clone(), range.partition);
            let start = positions.get(&key).copied().unwrap_or(range.low).max(range.low);
            partitions.insert(
                key,
                Partition { buffer: VecDeque::new(), fetched_to: start, high_watermark: range.high, last_received: Instant::now() },
            );
            Some(start)
        })?;
        Ok((reader, partitions))
    }

    /// Appends, in (broker time, topic, partition, offset) order, every buffered
    /// record that no unread record can precede.
    async fn append_ready(
        &mut self,
        partitions: &mut BTreeMap<(String, i32), Partition>,
        shutdown: &CancellationToken,
    ) -> Result<(), AuditError> {
        loop {
            let mut best: Option<(i64, (String, i32))> = None;
            let mut any_caught_up_empty = false;
            for (key, p) in partitions.iter() {
                match p.buffer.front() {
                    Some(r) => {
                        let ts = r.timestamp_ms.unwrap_or(0);
                        if best.as_ref().is_none_or(|(bts, bkey)| (ts, key) < (*bts, bkey)) {
                            best = Some((ts, key.clone()));
                        }
                    }
                    // Records this partition has not delivered yet may come first.
                    None if !p.caught_up(self.quiet) => return Ok(()),
                    None => any_caught_up_empty = true,
                }
            }
            let Some((ts, key)) = best else { return Ok(()) };
            // A partition that is caught up can still receive a record stamped a
            // moment ago (delivery takes a fetch round, ~100 ms); wait out the
            // grace before overtaking it.
            let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
            if any_caught_up_empty && ts > now_ms - self.grace.as_millis() as i64 {
                return Ok(());
            }
            let record = partitions.get_mut(&key).and_then(|p| p.buffer.pop_front()).expect("best has a head");
            if !self.append_one(&record, shutdown).await? {
                return Ok(());
            }
        }
    }

    /// Audits and appends one record, retrying while the registry is unavailable.
    /// False if shutdown came first.
    async fn append_one(&mut self, record: &RawRecord, shutdown: &CancellationToken) -> Result<bool, AuditError> {
        let mut delay = Duration::from_millis(100);
        let audited = loop {
            match handler::audit_in(&mut self.versions, &self.verifier, record, &self.identity.topics).await {
                Ok(a) => break a,
                Err(e) => {
                    warn!(error = %e, topic = %record.topic, offset = record.offset, "Registry unavailable; retrying.");
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(false),
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        };
        let mut audited = audited;
        if let Some(letter) = &audited.letter {
            let c = &letter.claims;
            let held = self.log.held(&c.original_topic, c.original_partition, c.original_offset)?;
            audited.compare(|_, _, _| held);
        }
        self.log.append(&audited.leaf, &audited.meta)?;
        // "verified", "dead_letter", "dead_letter_unverified", "dead_letter_contradicted" or the rejection reason.
        let outcome = audited.leaf.outcome.split(':').next().unwrap_or_default().to_owned();
        self.leaves.get_or_create(&vec![("outcome".to_owned(), outcome)]).inc();
        if let Some(Payload::LogCheckpoint(cp)) = audited.event.map(|e| e.payload) {
            self.check_checkpoint(&cp)?;
        }
        Ok(true)
    }

    fn check_checkpoint(&self, cp: &LogCheckpoint) -> Result<(), AuditError> {
        match verify_checkpoint(&cp.jws, &self.identity.directory.current()) {
            Ok(claims) if claims.size as i64 == cp.tree_size && claims.root == cp.root_hash && claims.log == cp.log_id => {
                if let CheckpointOutcome::SplitView { other_root } = self.log.record_checkpoint(&claims, &cp.jws)? {
                    error!(log = %claims.log, size = claims.size, root = %claims.root, %other_root, "SPLIT VIEW detected.");
                }
            }
            Ok(_) => warn!(log = %cp.log_id, "Checkpoint event's fields differ from its signed statement; ignored."),
            Err(e) => warn!(log = %cp.log_id, error = %e, "Checkpoint statement does not verify; ignored."),
        }
        Ok(())
    }
}

/// The signed statements (JWS) of every checkpoint on the checkpoints topic,
/// read to its end as `identity`: what `log check` compares the local log
/// with, since whoever holds the log's file cannot rewrite the topic.
pub async fn published_checkpoints(identity: &Identity) -> Result<Vec<String>, AuditError> {
    let filter = replay::Filter { topics: vec![identity.topics.checkpoints()], ..Default::default() };
    let (entries, _) = replay::replay(identity, &filter, |_, _| {}).await?;
    Ok(entries.into_iter().filter(|e| e.outcome == "verified").filter_map(|e| e.message?.get("jws")?.as_str().map(str::to_owned)).collect())
}

/// Runs the audit service as configured until `shutdown`.
pub async fn run(config: AuditConfig, shutdown: CancellationToken) -> Result<(), AuditError> {
    let header = config.service.clone();
    let stop = shutdown.clone();
    concord_runtime::service::serve(&header, &shutdown, move |identity, metrics| async move {
        let mut auditor = Auditor::new(identity, &config)?;
        auditor.leaves = metrics.counters(
            "concord_audit_leaves",
            "Records appended to the audit log, by outcome (verified, dead_letter, or the rejection reason)",
        );
        auditor.run(stop.clone()).await
    })
    .await
}
