//! The signed producer: encode through the registry, sign, send with
//! `acks=all` and idempotence, and wait for the broker's acknowledgement.

use std::time::Duration;

use concord_domain::{Message, Valid};
use concord_protocol::{header, AvroCodec, CodecError, RawRecord, Signer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use time::OffsetDateTime;

use crate::{KafkaSettings, SettingsError};

/// Why a message was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The producer could not be configured.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// rdkafka could not create the producer.
    #[error("creating the producer: {0}")]
    Create(#[source] KafkaError),
    /// Encoding through the registry failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The broker did not take the record (authorization, timeout, size, ...).
    #[error("sending to {topic}: {source}")]
    Send {
        /// The topic.
        topic: String,
        /// What rdkafka said.
        #[source]
        source: KafkaError,
    },
}

/// Where a published event landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Its `ce_id`.
    pub id: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
}

/// Publishes signed events as one agency.
#[derive(Clone)]
pub struct SignedProducer {
    producer: FutureProducer,
    signer: Signer,
    codec: AvroCodec,
}

impl SignedProducer {
    /// The librdkafka options that make every send durable and never duplicated
    /// by a producer retry.
    pub const DURABLE: [(&'static str, &'static str); 3] = [("acks", "all"), ("enable.idempotence", "true"), ("compression.type", "lz4")];

    /// A producer for `settings` that signs with `signer` and encodes with `codec`.
    pub fn new(settings: &KafkaSettings, signer: Signer, codec: AvroCodec) -> Result<Self, PublishError> {
        let producer = settings.client_config(&Self::DURABLE)?.create().map_err(PublishError::Create)?;
        Ok(SignedProducer { producer, signer, codec })
    }

    /// The same producer, sending records as given (shared with a dead-letter writer).
    pub fn raw(&self) -> crate::RawProducer {
        crate::RawProducer(self.producer.clone())
    }

    /// The signer.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The encoded and signed record for `message`, not yet sent. Only a
    /// [`Valid`] message is signed: what every consumer checks (§5a) is
    /// checked here first, by type.
    pub async fn prepare<M: Message>(&self, topic: &str, key: &[u8], message: &Valid<M>) -> Result<RawRecord, PublishError> {
        let value = self.codec.encode(&**message).await?;
        Ok(self.signer.sign_record(topic, M::TYPE, Some(key.to_vec()), value, OffsetDateTime::now_utc()))
    }

    /// Encodes, signs and sends `message` to `topic` under `key`; returns once the broker has it.
    pub async fn publish<M: Message>(&self, topic: &str, key: &[u8], message: &Valid<M>) -> Result<Published, PublishError> {
        let record = self.prepare(topic, key, message).await?;
        self.send_raw(&record).await
    }

    /// [`Self::publish`] under the event id `id` (a deterministic id: the same
    /// message sent again is the same event, which a consumer's replay guard refuses).
    pub async fn publish_with_id<M: Message>(
        &self,
        topic: &str,
        id: &str,
        key: &[u8],
        message: &Valid<M>,
    ) -> Result<Published, PublishError> {
        let value = self.codec.encode(&**message).await?;
        let record = self.signer.sign_record_with_id(id, topic, M::TYPE, Some(key.to_vec()), value, OffsetDateTime::now_utc());
        self.send_raw(&record).await
    }

    /// Sends a record exactly as given (already signed, or deliberately not).
    pub async fn send_raw(&self, record: &RawRecord) -> Result<Published, PublishError> {
        send_record(&self.producer, record).await
    }
}

/// Sends `record` exactly as given with `producer` and waits for the acknowledgement.
pub(crate) async fn send_record(producer: &FutureProducer, record: &RawRecord) -> Result<Published, PublishError> {
    send_record_to(producer, record, None).await
}

/// [`send_record`] to `partition` when given, else to the partition the key's hash picks.
pub(crate) async fn send_record_to(
    producer: &FutureProducer,
    record: &RawRecord,
    partition: Option<i32>,
) -> Result<Published, PublishError> {
    let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
    for (key, value) in &record.headers {
        headers = headers.insert(Header { key, value: value.as_deref() });
    }
    let mut out: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&record.topic).headers(headers);
    if let Some(key) = &record.key {
        out = out.key(key);
    }
    if let Some(value) = &record.value {
        out = out.payload(value);
    }
    if let Some(partition) = partition {
        out = out.partition(partition);
    }
    let delivery = producer
        .send(out, Duration::from_secs(30))
        .await
        .map_err(|(source, _)| PublishError::Send { topic: record.topic.clone(), source })?;
    let id = record.header_values(header::ID).next().flatten().map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
    Ok(Published { id, partition: delivery.partition, offset: delivery.offset })
}
