//! Exactly-once publication of records that a service decided outside Kafka
//! (a reviewer's approval, committed to the holder's SQLite store with an
//! outbox row). The store numbers its outbox rows; the [`Outbox`] publishes
//! rows after its *cursor* in one Kafka transaction that also commits the new
//! cursor, as the committed offset of a consumer group of its own. The
//! records and the cursor are committed together or not at all, so a crash at
//! any point publishes every row once: after a restart the cursor says where
//! the last committed transaction ended.
//!
//! The cursor is an offset of partition 0 of a topic the service may read
//! (its inbox): a group of its own that never consumes, so the value means
//! nothing to the topic. Kafka forgets the offsets of a group without members
//! after `offsets.retention.minutes` (7 days by default), so the store keeps
//! a copy of the cursor too, written after each commit; the cursor in force
//! is the larger of the two.

use std::time::Duration;

use concord_protocol::RawRecord;
use futures::future::try_join_all;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::consumer::ConsumerError;
use crate::producer::send_record;
use crate::transactional::bounded;
use crate::KafkaSettings;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A transactional publisher whose position is a committed group offset.
pub struct Outbox {
    producer: FutureProducer,
    cursor: BaseConsumer,
    cursor_topic: String,
}

impl Outbox {
    /// An outbox producing as `transactional_id` (an earlier instance with the
    /// same id is fenced and its open transaction aborted), its cursor kept by
    /// group `group` on partition 0 of `cursor_topic`.
    pub fn new(settings: &KafkaSettings, transactional_id: &str, group: &str, cursor_topic: &str) -> Result<Self, ConsumerError> {
        let producer: FutureProducer =
            settings.client_config(&[("transactional.id", transactional_id), ("acks", "all"), ("enable.idempotence", "true")])?.create()?;
        tokio::task::block_in_place(|| producer.init_transactions(TIMEOUT))?;
        let cursor: BaseConsumer = settings
            .client_config(&[("group.id", group), ("enable.auto.commit", "false"), ("isolation.level", "read_committed")])?
            .create()?;
        Ok(Outbox { producer, cursor, cursor_topic: cursor_topic.to_owned() })
    }

    fn partition(&self, offset: Offset) -> Result<TopicPartitionList, KafkaError> {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&self.cursor_topic, 0, offset)?;
        Ok(list)
    }

    /// The cursor committed with the last published batch: 0 when none was.
    pub fn cursor(&self) -> Result<i64, ConsumerError> {
        let wanted = self.partition(Offset::Invalid)?;
        let committed = tokio::task::block_in_place(|| self.cursor.committed_offsets(wanted, TIMEOUT))?;
        Ok(match committed.find_partition(&self.cursor_topic, 0).map(|p| p.offset()) {
            Some(Offset::Offset(n)) => n,
            _ => 0,
        })
    }

    /// Whether the producer hit a fatal error (fenced: a transaction the
    /// coordinator timed out, or a newer instance): it can do nothing more,
    /// and only a new one (a new epoch) can publish.
    pub fn is_fatal(&self) -> bool {
        self.producer.client().fatal_error().is_some()
    }

    /// Publishes `records` and moves the cursor to `cursor`, in one transaction.
    pub async fn publish(&self, records: &[RawRecord], cursor: i64) -> Result<(), ConsumerError> {
        tokio::task::block_in_place(|| self.producer.begin_transaction())?;
        let sent = async {
            try_join_all(records.iter().map(|r| send_record(&self.producer, r))).await?;
            let offsets = self.partition(Offset::Offset(cursor))?;
            let metadata = self.cursor.group_metadata().ok_or(KafkaError::NoMessageReceived)?;
            let producer = self.producer.clone();
            bounded("committing the outbox transaction", TIMEOUT * 2 + Duration::from_secs(5), move || {
                producer.send_offsets_to_transaction(&offsets, &metadata, TIMEOUT)?;
                producer.commit_transaction(TIMEOUT)
            })
            .await
        };
        match sent.await {
            Ok(()) => Ok(()),
            Err(e @ ConsumerError::Stuck { .. }) => Err(e),
            Err(e) => {
                let _ = tokio::task::block_in_place(|| self.producer.abort_transaction(TIMEOUT));
                Err(e)
            }
        }
    }
}
