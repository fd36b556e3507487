//! The verifying consumer. Every record is verified before a handler sees it;
//! a record that fails goes to the dead-letter topic with its reason, and the
//! consumer moves on, so nothing is dropped silently and nothing blocks a
//! partition. Transient failures (registry, database, broker) are retried with
//! backoff while the offset stays put.
//!
//! Delivery guarantee: at least once — an offset is stored only after the
//! handler succeeded or the record is safely on the dead-letter topic, so a
//! crash redelivers, and handlers must be idempotent (they are told when a
//! record is a redelivery).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use concord_domain::AgencyId;
use concord_protocol::{Mode, RawRecord, Signer, VerifiedEvent, Verifier};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::admit::{admit, release, AdmitError};
use crate::dead_letter::{DeadLetter, FloodLimits, Lettered};
use crate::seen::{SeenEvents, StoreError};
use crate::{to_raw, KafkaSettings, RawProducer, SettingsError};

/// What a handler reports.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event can never be handled: dead-letter it with `code`.
    #[error("{code}: {detail}")]
    Permanent {
        /// A stable reason code.
        code: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// Try again later (database or downstream unavailable).
    #[error("transient: {0}")]
    Transient(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What one verified event does.
pub trait Handler: Send + Sync {
    /// Handles `event`; `redelivery` is true when this exact record was handled
    /// (or started) before, so the handler must not repeat its effects.
    fn handle(&self, event: VerifiedEvent, redelivery: bool) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// Why the consumer stopped.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// Bad settings.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// rdkafka failed to create or subscribe.
    #[error("kafka consumer: {0}")]
    Kafka(#[from] KafkaError),
    /// The replay guard failed to open.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A record could not be produced inside a transaction.
    #[error(transparent)]
    Publish(#[from] crate::PublishError),
    /// A transaction call did not return in time; the producer cannot be
    /// trusted any more and the processor stops so that it is restarted.
    #[error("kafka: {what} did not return within {after:?} (librdkafka can ignore its own timeout when a coordinator dies, confluentinc/librdkafka#5456); stopping so that a fresh producer takes over")]
    Stuck {
        /// The call.
        what: &'static str,
        /// How long it was given.
        after: std::time::Duration,
    },
}

/// Counters of what the consumer did, for metrics and tests.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Records read.
    pub consumed: AtomicU64,
    /// Records verified and handled.
    pub handled: AtomicU64,
    /// Records sent to the dead-letter topic, by reason code.
    pub rejected: Mutex<BTreeMap<String, u64>>,
    /// Transient failures retried.
    pub retries: AtomicU64,
    /// Rejections left without a letter of their own (a flood), by claimed sender.
    pub suppressed: Mutex<BTreeMap<String, u64>>,
}

impl ConsumerStats {
    /// Rejections so far with this code.
    pub fn rejected(&self, code: &str) -> u64 {
        self.rejected.lock().expect("stats lock").get(code).copied().unwrap_or(0)
    }

    /// Counts a rejection's letter: one left out counts for its sender.
    pub(crate) fn count_letter(&self, lettered: Lettered) {
        if let Lettered::Suppressed(sender) = lettered {
            *self.suppressed.lock().expect("stats lock").entry(sender).or_default() += 1;
        }
    }

    /// Rejections of `sender` left without a letter so far.
    pub fn suppressed(&self, sender: &str) -> u64 {
        self.suppressed.lock().expect("stats lock").get(sender).copied().unwrap_or(0)
    }

    /// Every record read so far was handled or rejected.
    pub fn settled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed) + self.rejected.lock().expect("stats lock").values().sum::<u64>()
    }
}

/// What a consumer of one agency reads and where its rejects and its replay
/// guard go: what [`VerifiedConsumer`] and the transactional processor are built from.
pub struct Intake<'a> {
    /// Client settings of the agency's listener.
    pub settings: &'a KafkaSettings,
    /// The consuming agency's signer: it signs the dead letters.
    pub signer: Signer,
    /// The consumer group (see `Identity::group`).
    pub group: &'a str,
    /// The topics read.
    pub topics: &'a [String],
    /// Verifies every record.
    pub verifier: Verifier,
    /// Where rejected records go.
    pub dead_letter_topic: String,
    /// The replay guard's SQLite file.
    pub seen_path: &'a Path,
}

/// What a consumer is made of once its intake is open: subscribed, with its
/// verifier, dead-letter writer and replay guard. Both the at-least-once
/// consumer and the exactly-once processor start here.
pub(crate) struct Opened {
    pub(crate) consumer: StreamConsumer,
    pub(crate) verifier: Verifier,
    pub(crate) dead_letter: DeadLetter,
    pub(crate) seen: SeenEvents,
    pub(crate) agency: AgencyId,
}

impl Intake<'_> {
    /// Subscribes with the consumer `options` (plus the group) and writes dead
    /// letters through `producer`.
    pub(crate) fn open(self, options: &[(&str, &str)], producer: RawProducer) -> Result<Opened, ConsumerError> {
        let mut managed = options.to_vec();
        managed.push(("group.id", self.group));
        let consumer: StreamConsumer = self.settings.client_config(&managed)?.create()?;
        let names: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&names)?;
        Ok(Opened {
            consumer,
            verifier: self.verifier,
            agency: self.signer.key().agency().clone(),
            dead_letter: DeadLetter::new(producer, self.dead_letter_topic, self.signer),
            seen: SeenEvents::open(self.seen_path)?,
        })
    }
}

/// Reads topics as one agency, verifies every record, and hands verified events to a handler.
pub struct VerifiedConsumer {
    consumer: StreamConsumer,
    verifier: Verifier,
    dead_letter: DeadLetter,
    seen: SeenEvents,
    agency: AgencyId,
    stats: Arc<ConsumerStats>,
}

impl VerifiedConsumer {
    /// The consumer options behind the delivery guarantee.
    pub const AT_LEAST_ONCE: [(&'static str, &'static str); 4] = [
        ("enable.auto.commit", "true"),
        ("enable.auto.offset.store", "false"),
        ("isolation.level", "read_committed"),
        ("auto.offset.reset", "earliest"),
    ];

    /// A consumer as `intake` says, writing its dead letters through `producer`.
    pub fn new(intake: Intake<'_>, producer: RawProducer) -> Result<Self, ConsumerError> {
        let Opened { consumer, verifier, dead_letter, seen, agency } = intake.open(&Self::AT_LEAST_ONCE, producer)?;
        Ok(VerifiedConsumer { consumer, verifier, dead_letter, seen, agency, stats: Arc::default() })
    }

    /// Bounds its dead letters per sender by `limits` instead of the defaults.
    pub fn with_flood_limits(mut self, limits: FloodLimits) -> Self {
        self.dead_letter = self.dead_letter.with_limits(limits);
        self
    }

    /// Counts into `stats` (those of a consumer this one replaces) instead of its own.
    pub fn counting_into(mut self, stats: Arc<ConsumerStats>) -> Self {
        self.stats = stats;
        self
    }

    /// The counters, shared.
    pub fn stats(&self) -> Arc<ConsumerStats> {
        Arc::clone(&self.stats)
    }

    /// Consumes until `shutdown` is cancelled, then commits the stored offsets.
    pub async fn run<H: Handler>(self, handler: H, shutdown: CancellationToken) -> Result<(), ConsumerError> {
        info!(agency = %self.agency, "Consumer started.");
        while let Some(record) = next_record(&self.consumer, &self.stats, &shutdown).await {
            if self.process(&record, &handler, &shutdown).await {
                if let Err(e) = self.consumer.store_offset(&record.topic, record.partition, record.offset) {
                    // The partition was revoked meanwhile: its new owner gets the record again,
                    // which the replay guard treats as a redelivery.
                    warn!(topic = %record.topic, partition = record.partition, offset = record.offset, error = %e, "Offset not stored.");
                }
            }
        }
        if let Err(e) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            // Nothing consumed yet is not a failure; the offsets are stored anyway.
            debug!(error = %e, "Final commit skipped.");
        }
        info!(agency = %self.agency, "Consumer stopped.");
        Ok(())
    }

    /// Settles one record; false if shutdown interrupted it (offset not stored).
    async fn process<H: Handler>(&self, record: &RawRecord, handler: &H, shutdown: &CancellationToken) -> bool {
        let mut backoff = Backoff::default();
        loop {
            let outcome = self.attempt(record, handler).await;
            let (code, detail) = match outcome {
                Attempt::Done => return true,
                Attempt::Reject(code, detail) => (code, detail),
                Attempt::Retry(why) => {
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    warn!(topic = %record.topic, partition = record.partition, offset = record.offset, %why, "Transient failure; retrying.");
                    if !backoff.wait(shutdown).await {
                        return false;
                    }
                    continue;
                }
            };
            warn!(topic = %record.topic, partition = record.partition, offset = record.offset, reason = code, %detail, "Record rejected to the dead-letter topic.");
            loop {
                match self.dead_letter.send(record, code, &detail).await {
                    Ok(lettered) => {
                        *self.stats.rejected.lock().expect("stats lock").entry(code.to_owned()).or_default() += 1;
                        self.stats.count_letter(lettered);
                        return true;
                    }
                    Err(e) => {
                        warn!(error = %e, topic = self.dead_letter.topic(), "Dead-letter write failed; retrying.");
                        if !backoff.wait(shutdown).await {
                            return false;
                        }
                    }
                }
            }
        }
    }

    async fn attempt<H: Handler>(&self, record: &RawRecord, handler: &H) -> Attempt {
        let (event, redelivery) = match admit(&self.verifier, &self.seen, record, Mode::live()).await {
            Ok(admitted) => admitted,
            Err(AdmitError::Rejected(r)) => return Attempt::Reject(r.reason.code(), r.detail),
            Err(AdmitError::Unavailable(why)) => return Attempt::Retry(why),
        };
        let claim = (event.sender.to_string(), event.id.clone());
        match handler.handle(event, redelivery).await {
            Ok(()) => {
                self.stats.handled.fetch_add(1, Ordering::Relaxed);
                debug!(event_id = %claim.1, sender = %claim.0, redelivery, "Event handled.");
                Attempt::Done
            }
            // Refused by the handler: it claims no event id, so the guard's entry goes.
            Err(HandlerError::Permanent { code, detail }) => match release(&self.seen, (&claim.0, &claim.1), record) {
                Ok(()) => Attempt::Reject(code, detail),
                Err(e) => Attempt::Retry(e.to_string()),
            },
            Err(HandlerError::Transient(e)) => Attempt::Retry(e.to_string()),
        }
    }
}

/// The next record, counted as consumed; `None` once `shutdown` is cancelled.
/// Consumer errors (a broker going away, a rebalance) are logged and skipped:
/// librdkafka recovers from them by itself.
pub(crate) async fn next_record(consumer: &StreamConsumer, stats: &ConsumerStats, shutdown: &CancellationToken) -> Option<RawRecord> {
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => return None,
            m = consumer.recv() => m,
        };
        match message {
            Ok(m) => {
                stats.consumed.fetch_add(1, Ordering::Relaxed);
                return Some(to_raw(&m));
            }
            Err(e) => warn!(error = %e, "Kafka consumer error; continuing."),
        }
    }
}

enum Attempt {
    Done,
    Reject(&'static str, String),
    Retry(String),
}

/// Exponential backoff from 100 ms to 10 s.
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(Duration::from_millis(100))
    }
}

impl Backoff {
    /// Sleeps, unless shutdown comes first (then false).
    async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let delay = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(10));
        tokio::select! {
            () = shutdown.cancelled() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }
}
