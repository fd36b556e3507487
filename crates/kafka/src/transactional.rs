//! The exactly-once processor: consume → verify → act → produce in one Kafka
//! transaction per record. The records a processor returns (confirmations) and
//! the consumer offset are committed together, or not at all; a dead letter for
//! a rejected record is part of the same transaction. Effects outside Kafka
//! (a ledger) must be idempotent per record: after a crash the record comes back
//! and the processor is told it is a redelivery.
//!
//! Delivery guarantee: exactly once for what is produced to Kafka (read with
//! `isolation.level=read_committed`), at least once into the processor, which
//! makes its own effects idempotent.

use std::future::Future;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use concord_domain::AgencyId;
use concord_protocol::{Mode, RawRecord, RejectReason, VerifiedEvent, VerifyError, Verifier};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::consumer::{next_record, ConsumerError, ConsumerStats, HandlerError};
use crate::dead_letter::DeadLetter;
use crate::producer::send_record;
use crate::seen::{SeenEvents, SeenOutcome};
use crate::KafkaSettings;

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

impl TransactionalProcessor {
    /// A processor of `agency` in `group` over `topics`, producing with `transactional_id`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: &KafkaSettings,
        agency: AgencyId,
        group: &str,
        transactional_id: &str,
        topics: &[String],
        verifier: Verifier,
        dead_letter_topic: String,
        seen_path: &Path,
    ) -> Result<Self, ConsumerError> {
        let consumer: StreamConsumer = settings
            .client_config(&[
                ("group.id", group),
                ("enable.auto.commit", "false"),
                ("isolation.level", "read_committed"),
                ("auto.offset.reset", "earliest"),
            ])?
            .create()?;
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&names)?;
        let producer: FutureProducer = settings
            .client_config(&[("transactional.id", transactional_id), ("acks", "all"), ("enable.idempotence", "true")])?
            .create()?;
        // Fences any earlier instance with this id and aborts its open transaction.
        tokio::task::block_in_place(|| producer.init_transactions(TIMEOUT))?;
        Ok(TransactionalProcessor {
            consumer,
            dead_letter: DeadLetter::new(producer.clone(), dead_letter_topic, agency.to_string()),
            producer,
            verifier,
            seen: SeenEvents::open(seen_path)?,
            agency,
            stats: Arc::default(),
        })
    }

    /// The counters, shared.
    pub fn stats(&self) -> Arc<ConsumerStats> {
        Arc::clone(&self.stats)
    }

    /// Runs until `shutdown`. A Kafka error inside a transaction aborts it and
    /// stops the processor: its restart resumes from the last committed offset.
    pub async fn run<P: Processor>(self, processor: P, shutdown: CancellationToken) -> Result<(), ConsumerError> {
        info!(agency = %self.agency, "Transactional processor started.");
        while let Some(record) = next_record(&self.consumer, &self.stats, &shutdown).await {
            let mut delay = Duration::from_millis(100);
            loop {
                match self.transact(&record, &processor).await {
                    Ok(true) => break,
                    Ok(false) => {
                        // Transient: the transaction was aborted; try the same record again.
                        self.stats.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::select! {
                            () = shutdown.cancelled() => return Ok(()),
                            () = tokio::time::sleep(delay) => {}
                        }
                        delay = (delay * 2).min(Duration::from_secs(10));
                    }
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

    /// One record in one transaction. `Ok(false)`: transient failure, aborted.
    async fn transact<P: Processor>(&self, record: &RawRecord, processor: &P) -> Result<bool, ConsumerError> {
        tokio::task::block_in_place(|| self.producer.begin_transaction())?;
        let outcome = match self.verifier.verify(record, Mode::live()).await {
            Err(VerifyError::Rejected(r)) => Err((r.reason.code(), r.detail)),
            Err(VerifyError::Unavailable(e)) => {
                warn!(error = %e, "Registry unavailable; retrying.");
                tokio::task::block_in_place(|| self.producer.abort_transaction(TIMEOUT))?;
                return Ok(false);
            }
            Ok(event) => {
                let expires = event.expires_at.unix_timestamp();
                match self.seen.check(&event.id, &record.topic, record.partition, record.offset, expires) {
                    Ok(SeenOutcome::Replay { first }) => {
                        Err((RejectReason::Replayed.code(), format!("event {} was accepted at {first}", event.id)))
                    }
                    Ok(seen) => match processor.process(event, seen == SeenOutcome::Redelivery).await {
                        Ok(outputs) => Ok(outputs),
                        Err(HandlerError::Permanent { code, detail }) => Err((code, detail)),
                        Err(HandlerError::Transient(e)) => {
                            warn!(error = %e, "Processor failed transiently; retrying.");
                            tokio::task::block_in_place(|| self.producer.abort_transaction(TIMEOUT))?;
                            return Ok(false);
                        }
                    },
                    Err(e) => {
                        warn!(error = %e, "Replay guard failed; retrying.");
                        tokio::task::block_in_place(|| self.producer.abort_transaction(TIMEOUT))?;
                        return Ok(false);
                    }
                }
            }
        };
        match outcome {
            Ok(outputs) => {
                for out in &outputs {
                    send_record(&self.producer, out).await?;
                }
                self.stats.handled.fetch_add(1, Ordering::Relaxed);
            }
            Err((code, detail)) => {
                warn!(topic = %record.topic, offset = record.offset, reason = code, %detail, "Record rejected to the dead-letter topic.");
                self.dead_letter.send(record, code, &detail).await?;
                *self.stats.rejected.lock().expect("stats lock").entry(code.to_owned()).or_default() += 1;
            }
        }
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset(&record.topic, record.partition, Offset::Offset(record.offset + 1))?;
        let metadata = self.consumer.group_metadata().ok_or(KafkaError::NoMessageReceived)?;
        tokio::task::block_in_place(|| {
            self.producer.send_offsets_to_transaction(&offsets, &metadata, TIMEOUT)?;
            self.producer.commit_transaction(TIMEOUT)
        })?;
        Ok(true)
    }
}
