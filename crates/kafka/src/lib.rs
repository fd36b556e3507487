//! Kafka plumbing for Concord on rdkafka: typed client settings translated in
//! one place, the [`SignedProducer`], the [`VerifiedConsumer`] with its
//! dead-letter topic, the replay guard, and topic administration for tests and
//! tools.

mod admin;
mod admit;
mod consumer;
mod dead_letter;
mod outbox;
mod producer;
mod reader;
mod seen;
mod settings;
mod transactional;

pub use admin::{create_topics, delete_topics, AdminError};
pub use admit::{admit, release, AdmitError};
pub use consumer::{ConsumerError, ConsumerStats, Handler, HandlerError, Intake, VerifiedConsumer};
pub use dead_letter::{dlq_header, DeadLetter, FloodLimits, Lettered};
pub use outbox::Outbox;
pub use producer::{PublishError, Published, SignedProducer};
pub use reader::{MetadataProbe, PartitionRange, RawProducer, ReadError, ReadOptions, Reader};
pub use seen::{SeenEvents, SeenOutcome, StoreError};
pub use settings::{KafkaSettings, SettingsError, TlsFiles};
pub use transactional::{Processor, TransactionalProcessor, MAX_BATCH};

use concord_protocol::RawRecord;
use rdkafka::message::{Headers, Message};

/// The protocol's view of a record read by rdkafka.
pub fn to_raw(message: &impl Message) -> RawRecord {
    let headers =
        message.headers().map(|h| h.iter().map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec))).collect()).unwrap_or_default();
    RawRecord {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp_ms: message.timestamp().to_millis(),
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().map(<[u8]>::to_vec),
        headers,
    }
}
