//! The exactly-once processor: consume → verify → act → produce in one Kafka
//! transaction per batch of records (one record when idle; what is already
//! fetched, up to [`MAX_BATCH`], under load). The records a processor returns
//! (confirmations) and the consumer offsets are committed together, or not at
//! all; a dead letter for a rejected record is part of the same transaction. Effects outside Kafka
//! (a ledger) must be idempotent per record: after a crash the record comes back
//! and the processor is told it is a redelivery.
//!
//! Delivery guarantee: exactly once for what is produced to Kafka (read with
//! `isolation.level=read_committed`), at least once into the processor, which
//! makes its own effects idempotent.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use concord_domain::AgencyId;
use concord_protocol::{Mode, RawRecord, VerifiedEvent, Verifier};
use futures::future::try_join_all;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::admit::{admit, release, AdmitError};
use crate::consumer::{next_record, ConsumerError, ConsumerStats, HandlerError, Intake, Opened};
use crate::dead_letter::DeadLetter;
use crate::producer::send_record;
use crate::seen::SeenEvents;
use crate::to_raw;

/// Runs a blocking transaction call on a thread of its own and gives up after
/// `limit`: `send_offsets_to_transaction` can block past its own timeout when
/// the group coordinator dies (confluentinc/librdkafka#5456, #5511). The thread
/// is detached, so a stuck call does not keep the process from exiting.
pub(crate) async fn bounded<T: Send + 'static>(
    what: &'static str,
    limit: Duration,
    call: impl FnOnce() -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, ConsumerError> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("concord-txn".into())
        .spawn(move || {
            let _ = done.send(call());
        })
        .map_err(|_| ConsumerError::Stuck { what, after: Duration::ZERO })?;
    match tokio::time::timeout(limit, result).await {
        Ok(Ok(outcome)) => Ok(outcome?),
        Ok(Err(_)) | Err(_) => {
            warn!(what, ?limit, "Kafka transaction call did not return; stopping the processor.");
            Err(ConsumerError::Stuck { what, after: limit })
        }
    }
}

/// What one verified event makes: the records to produce in its transaction.
pub trait Processor: Send + Sync {
    /// Processes `event`; `redelivery` is true when this exact record was
    /// processed (or started) before. Returned records must be fully formed
    /// (signed) and are produced in the record's transaction.
    fn process(&self, event: VerifiedEvent, redelivery: bool) -> impl Future<Output = Result<Vec<RawRecord>, HandlerError>> + Send;
}

/// Consumes, processes and produces exactly once per record.
pub struct TransactionalProcessor {
    consumer: StreamConsumer,
    producer: FutureProducer,
    verifier: Verifier,
    dead_letter: DeadLetter,
    seen: SeenEvents,
    agency: AgencyId,
    stats: Arc<ConsumerStats>,
}

const TIMEOUT: Duration = Duration::from_secs(30);

/// The most records one transaction carries.
pub const MAX_BATCH: usize = 500;

impl TransactionalProcessor {
    /// A processor as `intake` says, producing with `transactional_id`.
    pub fn new(intake: Intake<'_>, transactional_id: &str) -> Result<Self, ConsumerError> {
        let producer: FutureProducer = intake
            .settings
            .client_config(&[("transactional.id", transactional_id), ("acks", "all"), ("enable.idempotence", "true")])?
            .create()?;
        // Fences any earlier instance with this id and aborts its open transaction.
        tokio::task::block_in_place(|| producer.init_transactions(TIMEOUT))?;
        let options = [("enable.auto.commit", "false"), ("isolation.level", "read_committed"), ("auto.offset.reset", "earliest")];
        let Opened { consumer, verifier, dead_letter, seen, agency } = intake.open(&options, crate::RawProducer(producer.clone()))?;
        Ok(TransactionalProcessor { consumer, agency, dead_letter, producer, verifier, seen, stats: Arc::default() })
    }

    /// Bounds its dead letters per sender by `limits` instead of the defaults.
    pub fn with_flood_limits(mut self, limits: crate::FloodLimits) -> Self {
        self.dead_letter = self.dead_letter.with_limits(limits);
        self
    }

    /// The counters, shared.
    pub fn stats(&self) -> Arc<ConsumerStats> {
        Arc::clone(&self.stats)
    }

    /// Runs until `shutdown`. A Kafka error inside a transaction aborts it and
    /// stops the processor: its restart resumes from the last committed offset.
    pub async fn run<P: Processor>(self, processor: P, shutdown: CancellationToken) -> Result<(), ConsumerError> {
        info!(agency = %self.agency, "Transactional processor started.");
        while let Some(batch) = self.next_batch(&shutdown).await {
            let mut delay = Duration::from_millis(100);
            loop {
                match self.transact(&batch, &processor).await {
                    Ok(true) => break,
                    Ok(false) => {
                        // Transient: the transaction was aborted; try the same records again.
                        self.stats.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::select! {
                            () = shutdown.cancelled() => return Ok(()),
                            () = tokio::time::sleep(delay) => {}
                        }
                        delay = (delay * 2).min(Duration::from_secs(10));
                    }
                    Err(e @ ConsumerError::Stuck { .. }) => return Err(e), // an abort would block behind it
                    Err(e) => {
                        let _ = tokio::task::block_in_place(|| self.producer.abort_transaction(TIMEOUT));
                        return Err(e);
                    }
                }
            }
        }
        info!(agency = %self.agency, "Transactional processor stopped.");
        Ok(())
    }

    /// The next record, and the records already fetched behind it (up to
    /// [`MAX_BATCH`]): under load one transaction carries many records, idle it
    /// carries one and adds no delay.
    async fn next_batch(&self, shutdown: &CancellationToken) -> Option<Vec<RawRecord>> {
        let first = next_record(&self.consumer, &self.stats, shutdown).await?;
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            // A zero timeout still polls once: only what is already here is taken.
            match tokio::time::timeout(Duration::ZERO, self.consumer.recv()).await {
                Ok(Ok(m)) => {
                    self.stats.consumed.fetch_add(1, Ordering::Relaxed);
                    batch.push(to_raw(&m));
                }
                Ok(Err(e)) => {
                    warn!(error = %e, "Kafka consumer error; continuing.");
                    break;
                }
                Err(_) => break,
            }
        }
        Some(batch)
    }

    /// Aborts the open transaction after a transient failure.
    fn abort(&self, what: &str, error: &dyn std::fmt::Display) -> Result<bool, ConsumerError> {
        warn!(%error, "{what}; retrying.");
        tokio::task::block_in_place(|| self.producer.abort_transaction(TIMEOUT))?;
        Ok(false)
    }

    /// One batch of records in one transaction. `Ok(false)`: transient failure, aborted.
    async fn transact<P: Processor>(&self, batch: &[RawRecord], processor: &P) -> Result<bool, ConsumerError> {
        tokio::task::block_in_place(|| self.producer.begin_transaction())?;
        let mut handled = 0;
        let mut rejected = Vec::new();
        let mut outputs = Vec::new();
        let mut next_offsets: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for record in batch {
            let outcome = match admit(&self.verifier, &self.seen, record, Mode::live()).await {
                Err(AdmitError::Rejected(r)) => Err((r.reason.code(), r.detail)),
                Err(AdmitError::Unavailable(why)) => return self.abort("Registry or replay guard unavailable", &why),
                Ok((event, redelivery)) => {
                    let claim = (event.sender.to_string(), event.id.clone());
                    match processor.process(event, redelivery).await {
                        Ok(outputs) => Ok(outputs),
                        // Refused by the processor: it claims no event id.
                        Err(HandlerError::Permanent { code, detail }) => match release(&self.seen, (&claim.0, &claim.1), record) {
                            Ok(()) => Err((code, detail)),
                            Err(e) => return self.abort("Replay guard unavailable", &e),
                        },
                        Err(HandlerError::Transient(e)) => return self.abort("Processor failed transiently", &e),
                    }
                }
            };
            match outcome {
                Ok(made) => {
                    outputs.extend(made);
                    handled += 1;
                }
                Err((code, detail)) => {
                    warn!(topic = %record.topic, offset = record.offset, reason = code, %detail, "Record rejected to the dead-letter topic.");
                    let lettered = self.dead_letter.send(record, code, &detail).await?;
                    rejected.push((code, lettered));
                }
            }
            next_offsets.insert((record.topic.as_str(), record.partition), record.offset + 1);
        }
        // Sent together, not one round trip each; all acknowledged before the commit.
        try_join_all(outputs.iter().map(|out| send_record(&self.producer, out))).await?;
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), next) in next_offsets {
            offsets.add_partition_offset(topic, partition, Offset::Offset(next))?;
        }
        let metadata = self.consumer.group_metadata().ok_or(KafkaError::NoMessageReceived)?;
        let producer = self.producer.clone();
        bounded("committing the offsets and the transaction", TIMEOUT * 2 + Duration::from_secs(5), move || {
            producer.send_offsets_to_transaction(&offsets, &metadata, TIMEOUT)?;
            producer.commit_transaction(TIMEOUT)
        })
        .await?;
        self.stats.handled.fetch_add(handled, Ordering::Relaxed);
        let mut counts = self.stats.rejected.lock().expect("stats lock");
        for (code, lettered) in rejected {
            *counts.entry(code.to_owned()).or_default() += 1;
            self.stats.count_letter(lettered);
        }
        Ok(true)
    }
}
