//! Following the directory topic (docs/protocol.md §12): every process whose
//! hub pins governors reads the topic's one partition from its first record,
//! checks each version against the chain of trust ([`Chain`]), and puts the
//! newest valid version in force in its [`LiveDirectory`] once its
//! `effective_at` has come. Every verifier reads that directory for each
//! record, so a revocation applies without a restart.
//!
//! At start, [`follow`] returns only once the topic has been read to its end:
//! a process never checks a record against an older directory than the one
//! the topic already holds. A refused version changes nothing; it is logged
//! with its reason and counted in `concord_directory_refused_total{reason}`.

use std::time::Duration;

use concord_kafka::KafkaSettings;
use concord_protocol::governance::{Chain, Governors, LiveDirectory, SignedVersion, VersionRefused};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::identity::Identity;
use crate::metrics::{Labels, Metrics};

/// Why the directory topic cannot be followed.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The governors file does not load.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The consumer cannot be made or assigned.
    #[error("directory topic {topic}: {source}")]
    Kafka {
        /// The topic.
        topic: String,
        /// What librdkafka said.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The consumer's settings are refused.
    #[error(transparent)]
    Settings(#[from] concord_kafka::SettingsError),
}

/// How long one attempt waits for the broker to tell the topic's end, or for a record before the end.
const START_TIMEOUT: Duration = Duration::from_secs(30);

struct Follower {
    consumer: StreamConsumer,
    chain: Chain,
    live: LiveDirectory,
    topic: String,
    version: Gauge,
    refused: Family<Labels, Counter>,
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

impl Follower {
    fn offer(&mut self, key: Option<&[u8]>, value: Option<&[u8]>, offset: i64) {
        match self.chain.offer(value.unwrap_or_default()) {
            Ok((version, effective_at)) => {
                info!(topic = %self.topic, offset, version, effective_at, "Directory version accepted.");
            }
            Err(refused) => {
                self.refused.get_or_create(&vec![("reason".to_owned(), refused.code().to_owned())]).inc();
                let key = key.map(String::from_utf8_lossy).unwrap_or_default();
                warn!(topic = %self.topic, offset, %key, reason = refused.code(), detail = %refused,
                    "Directory version refused; the version in force stays.");
            }
        }
    }

    fn apply_due(&mut self) {
        if let Some((version, directory)) = self.chain.due(now_ms()) {
            let agencies = directory.agencies().count();
            self.live.install(directory, version);
            self.version.set(version as i64);
            info!(version, agencies, "Directory version in force.");
        }
    }

    /// Until the next record or the next waiting version's time, whichever first.
    async fn step(&mut self, shutdown: &CancellationToken) -> bool {
        let wait = match self.chain.next_due() {
            Some(at) => Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            () = shutdown.cancelled() => return false,
            () = tokio::time::sleep(wait) => {}
            message = self.consumer.recv() => match message {
                Ok(m) => {
                    let (key, value, offset) = (m.key().map(<[u8]>::to_vec), m.payload().map(<[u8]>::to_vec), m.offset());
                    drop(m);
                    self.offer(key.as_deref(), value.as_deref(), offset);
                }
                Err(e) => warn!(topic = %self.topic, error = %e, "Directory consumer error; continuing."),
            },
        }
        self.apply_due();
        true
    }
}

/// A consumer of the directory topic's one partition from its first record:
/// no offsets are committed, every start replays the whole chain.
fn consumer(settings: &KafkaSettings, group: &str, topic: &str) -> Result<StreamConsumer, FollowError> {
    let kafka = |source| FollowError::Kafka { topic: topic.to_owned(), source };
    let consumer: StreamConsumer = settings
        .client_config(&[
            ("group.id", group),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("fetch.wait.max.ms", "100"),
        ])?
        .create()
        .map_err(kafka)?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning).map_err(kafka)?;
    consumer.assign(&assignment).map_err(kafka)?;
    Ok(consumer)
}

/// Hands every record up to the topic's end at the time of the call to
/// `each` (key, value, offset). `false` if `shutdown` came first.
async fn read_to_end(
    consumer: &StreamConsumer,
    topic: &str,
    shutdown: &CancellationToken,
    mut each: impl FnMut(Option<&[u8]>, Option<&[u8]>, i64),
) -> Result<bool, FollowError> {
    // Blocks this thread briefly before any work starts; a broker still
    // coming up (or slow under load) is waited for, as every consumer waits.
    let end = loop {
        match consumer.fetch_watermarks(topic, 0, START_TIMEOUT) {
            Ok((_, end)) => break end,
            Err(e) => warn!(topic, error = %e, "Cannot learn the directory topic's end yet; retrying."),
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(false),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    };
    let mut next = 0;
    while next < end {
        let message = tokio::select! {
            () = shutdown.cancelled() => return Ok(false),
            m = tokio::time::timeout(START_TIMEOUT, consumer.recv()) => m,
        };
        match message {
            Ok(Ok(m)) => {
                next = m.offset() + 1;
                each(m.key(), m.payload(), m.offset());
            }
            Ok(Err(e)) => warn!(topic, error = %e, "Directory consumer error; continuing."),
            Err(_) => warn!(topic, next, end, "Still reading the directory topic to its end."),
        }
    }
    Ok(true)
}

/// One record of the directory topic and what the chain made of it.
#[derive(Debug)]
pub struct Entry {
    /// Its offset.
    pub offset: i64,
    /// Its key.
    pub key: String,
    /// The signed version, if the value is one.
    pub signed: Option<SignedVersion>,
    /// Accepted (number, effective_at ms) or refused, in the order of the topic.
    pub verdict: Result<(u64, i64), VersionRefused>,
}

/// Every record on `topic` with its verdict, and the chain after them: what
/// `concord directory show` prints and `publish` checks a draft against.
pub async fn history(settings: &KafkaSettings, group: &str, topic: &str, pinned: Governors) -> Result<(Chain, Vec<Entry>), FollowError> {
    let consumer = consumer(settings, group, topic)?;
    let mut chain = Chain::new(pinned);
    let mut entries = Vec::new();
    read_to_end(&consumer, topic, &CancellationToken::new(), |key, value, offset| {
        let value = value.unwrap_or_default();
        entries.push(Entry {
            offset,
            key: key.map(String::from_utf8_lossy).unwrap_or_default().into_owned(),
            signed: serde_json::from_slice(value).ok(),
            verdict: chain.offer(value),
        });
    })
    .await?;
    Ok((chain, entries))
}

/// Every record value on `topic` up to its end, in order: what a replay
/// judges the history it reads against.
pub async fn values(settings: &KafkaSettings, group: &str, topic: &str) -> Result<Vec<Vec<u8>>, FollowError> {
    let consumer = consumer(settings, group, topic)?;
    let mut values = Vec::new();
    read_to_end(&consumer, topic, &CancellationToken::new(), |_, value, _| values.push(value.unwrap_or_default().to_vec())).await?;
    Ok(values)
}

/// Reads the directory topic to its end, applies what is in effect, and keeps
/// following it until `shutdown`. `None` when the hub pins no governors (the
/// directory file is all this process trusts).
pub async fn follow(identity: &Identity, metrics: &Metrics, shutdown: &CancellationToken) -> Result<Option<JoinHandle<()>>, FollowError> {
    let Some(governors) = identity.hub.load_governors()? else { return Ok(None) };
    let topic = identity.topics.directory();
    let mut follower = Follower {
        consumer: consumer(&identity.kafka, &identity.group("directory"), &topic)?,
        chain: Chain::new(governors),
        live: identity.directory.clone(),
        topic: topic.clone(),
        version: metrics.gauge("concord_directory_version", "The directory version in force (0: the directory file)."),
        refused: metrics.counters("concord_directory_refused", "Directory versions refused, by reason."),
    };
    let mut records = Vec::new();
    if !read_to_end(&follower.consumer, &topic, shutdown, |k, v, o| records.push((k.map(<[u8]>::to_vec), v.map(<[u8]>::to_vec), o))).await?
    {
        return Ok(None);
    }
    for (key, value, offset) in &records {
        follower.offer(key.as_deref(), value.as_deref(), *offset);
    }
    follower.apply_due();
    info!(topic = %topic, version = identity.directory.version(), records = records.len(), "Directory topic read to its end; following it.");
    let shutdown = shutdown.clone();
    Ok(Some(tokio::spawn(async move { while follower.step(&shutdown).await {} })))
}
