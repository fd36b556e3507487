//! Reading topics without the verifying consumer's machinery: what the
//! directory follower (one partition from its first record, to its end), the
//! auditor and its replay (every partition from chosen offsets), `concord
//! tail` (a throw-away group), the readiness probe and the benchmark's raw
//! baseline need. rdkafka stays inside this crate: callers see records
//! ([`RawRecord`]), offsets and a [`ReadError`].

use std::sync::Arc;
use std::time::Duration;

use concord_protocol::RawRecord;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::producer::{send_record, PublishError, Published};
use crate::{to_raw, KafkaSettings, SettingsError};

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Bad settings.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// What librdkafka said.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
}

impl ReadError {
    /// The broker connection failed (it may come back): worth waiting for, not an answer.
    pub fn is_transport_failure(&self) -> bool {
        matches!(
            self,
            ReadError::Kafka(KafkaError::MessageConsumption(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown))
        )
    }
}

/// One partition's offsets when a reader was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRange {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Its low watermark (the first offset still held).
    pub low: i64,
    /// Its high watermark (the next offset to be written).
    pub high: i64,
}

/// How a reader reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// Only committed transactional records (`isolation.level=read_committed`).
    pub committed_only: bool,
    /// How long the broker may hold a fetch waiting for data, ms (librdkafka's default when `None`).
    pub fetch_wait_ms: Option<u32>,
}

/// A consumer that reads records and commits nothing.
pub struct Reader {
    consumer: StreamConsumer,
}

impl Reader {
    fn create(settings: &KafkaSettings, group: &str, options: ReadOptions, extra: &[(&str, &str)]) -> Result<StreamConsumer, ReadError> {
        let wait = options.fetch_wait_ms.map(|ms| ms.to_string());
        let mut config: Vec<(&str, &str)> =
            vec![("group.id", group), ("enable.auto.commit", "false"), ("enable.auto.offset.store", "false")];
        if options.committed_only {
            config.push(("isolation.level", "read_committed"));
        }
        if let Some(wait) = &wait {
            config.push(("fetch.wait.max.ms", wait));
        }
        config.extend_from_slice(extra);
        Ok(settings.client_config(&config)?.create()?)
    }

    /// Every partition of `topics`, each from the offset `start` chooses given
    /// its watermarks (`None`: not read). Returns the reader and the range of
    /// every partition found (read or not).
    pub fn assign(
        settings: &KafkaSettings,
        group: &str,
        topics: &[String],
        options: ReadOptions,
        mut start: impl FnMut(&PartitionRange) -> Option<i64>,
    ) -> Result<(Reader, Vec<PartitionRange>), ReadError> {
        let consumer = Self::create(settings, group, options, &[])?;
        let mut list = TopicPartitionList::new();
        let mut ranges = Vec::new();
        for topic in topics {
            let metadata = while_electing(|| consumer.fetch_metadata(Some(topic), Duration::from_secs(30)))?;
            for t in metadata.topics() {
                for p in t.partitions() {
                    let (low, high) = while_electing(|| consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(30)))?;
                    let range = PartitionRange { topic: topic.clone(), partition: p.id(), low, high };
                    if let Some(offset) = start(&range) {
                        list.add_partition_offset(topic, p.id(), Offset::Offset(offset))?;
                    }
                    ranges.push(range);
                }
            }
        }
        consumer.assign(&list)?;
        Ok((Reader { consumer }, ranges))
    }

    /// Partition `partition` of `topic` from its first record (the directory topic).
    pub fn from_beginning(
        settings: &KafkaSettings,
        group: &str,
        topic: &str,
        partition: i32,
        options: ReadOptions,
    ) -> Result<Reader, ReadError> {
        let consumer = Self::create(settings, group, options, &[])?;
        let reader = Reader { consumer };
        reader.rewind(topic, partition)?;
        Ok(reader)
    }

    /// Reads `topics` as a member of group `group` from the earliest offset when
    /// the group has none (a throw-away group reads everything).
    pub fn subscribe(settings: &KafkaSettings, group: &str, topics: &[&str], options: ReadOptions) -> Result<Reader, ReadError> {
        let consumer = Self::create(settings, group, options, &[("auto.offset.reset", "earliest")])?;
        consumer.subscribe(topics)?;
        Ok(Reader { consumer })
    }

    /// Reads `topic`'s `partition` from its first record again.
    pub fn rewind(&self, topic: &str, partition: i32) -> Result<(), ReadError> {
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
        Ok(self.consumer.assign(&assignment)?)
    }

    /// Whether the group has given this reader partitions yet.
    pub fn has_partitions(&self) -> bool {
        self.consumer.assignment().is_ok_and(|a| a.count() > 0)
    }

    /// The next record.
    pub async fn next(&self) -> Result<RawRecord, ReadError> {
        Ok(to_raw(&self.consumer.recv().await?))
    }

    /// The offset the next record of `topic`'s `partition` will get (its high
    /// watermark), asking for at most `timeout`.
    pub fn end_of(&self, topic: &str, partition: i32, timeout: Duration) -> Result<i64, ReadError> {
        Ok(self.consumer.fetch_watermarks(topic, partition, timeout)?.1)
    }
}

/// Whether the brokers answer: how many a metadata request lists, over one
/// kept connection (the readiness probe).
#[derive(Clone)]
pub struct MetadataProbe(Arc<BaseConsumer>);

impl MetadataProbe {
    /// A probe connecting with `settings`.
    pub fn new(settings: &KafkaSettings) -> Result<Self, ReadError> {
        Ok(MetadataProbe(Arc::new(settings.client_config(&[])?.create()?)))
    }

    /// The brokers the cluster's metadata lists, asking for at most `timeout` (blocks: call from a blocking task).
    pub fn brokers(&self, timeout: Duration) -> Result<usize, ReadError> {
        Ok(self.0.fetch_metadata(None, timeout)?.brokers().len())
    }
}

/// A producer that sends records exactly as given (already signed, a dead
/// letter, a directory version), with acks from all in-sync replicas.
#[derive(Clone)]
pub struct RawProducer(pub(crate) FutureProducer);

impl RawProducer {
    /// A producer for `settings` with `options` beside the durable ones.
    pub fn new(settings: &KafkaSettings, options: &[(&str, &str)]) -> Result<Self, PublishError> {
        let mut all = crate::SignedProducer::DURABLE.to_vec();
        all.extend_from_slice(options);
        Ok(RawProducer(settings.client_config(&all)?.create().map_err(PublishError::Create)?))
    }

    /// Sends `record` and waits until the broker has it.
    pub async fn send(&self, record: &RawRecord) -> Result<Published, PublishError> {
        send_record(&self.0, record).await
    }

    /// Sends `record` to partition `partition` of its topic (a compacted topic of one partition).
    pub async fn send_to(&self, record: &RawRecord, partition: i32) -> Result<Published, PublishError> {
        crate::producer::send_record_to(&self.0, record, Some(partition)).await
    }
}

/// `call`, tried again for up to 15 s while the broker answers that a
/// partition has no leader yet (a topic just created, a leader being
/// elected): such an answer is a moment of the cluster, not a failure.
fn while_electing<T>(mut call: impl FnMut() -> Result<T, rdkafka::error::KafkaError>) -> Result<T, rdkafka::error::KafkaError> {
    use rdkafka::types::RDKafkaErrorCode::{LeaderNotAvailable, NotLeaderForPartition, UnknownTopicOrPartition};
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        match call() {
            Err(e)
                if matches!(e.rdkafka_error_code(), Some(NotLeaderForPartition | LeaderNotAvailable | UnknownTopicOrPartition))
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(250));
            }
            other => return other,
        }
    }
}
